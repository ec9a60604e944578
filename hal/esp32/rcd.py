"""Residual current monitor (6 mA DC module, IEC 62955) with test and reset inputs.

The module opens the contactor by itself on a trip; the firmware reads the latched trip
output and runs the self-test (a current through the test winding must trip it).
"""

from machine import Pin

from compat import sleep_ms, ticks_diff, ticks_ms


class Rcd:
    def __init__(self, trip_pin, test_pin, reset_pin=None, trip_active=1, test_ms=60,
                 pulse_ms=20):  # fmt: skip
        self._trip = Pin(trip_pin, Pin.IN)
        self._active = trip_active
        self._test = Pin(test_pin, Pin.OUT, value=0)
        self._reset = None if reset_pin is None else Pin(reset_pin, Pin.OUT, value=0)
        self._test_ms = test_ms
        self._pulse_ms = pulse_ms
        self.last_test_ms = None  # trip delay measured by the last passed self-test

    def tripped(self):
        return self._trip.value() == self._active

    def reset(self):
        if self._reset is not None:
            self._reset.value(1)
            sleep_ms(self._pulse_ms)
            self._reset.value(0)
            sleep_ms(2)
        return not self.tripped()

    def self_test(self):
        """Pulse the test winding; passed when the trip shows within test_ms and the reset
        clears it. Bounded: at most test_ms + 2 * pulse_ms + a few ms. Already tripped: failed,
        and the latch stays (a real trip is cleared only by reset(), a deliberate action)."""
        if self.tripped():
            return False
        t0 = ticks_ms()
        seen = False
        self._test.value(1)
        try:
            while ticks_diff(ticks_ms(), t0) <= self._test_ms:
                if self.tripped():
                    seen = True
                    break
                sleep_ms(1)
        finally:
            self._test.value(0)
        if not seen:
            return False
        self.last_test_ms = ticks_diff(ticks_ms(), t0)
        return self.reset()
