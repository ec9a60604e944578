"""Main contactor driver (and the optional 1/3-phase switch contactor)."""

from machine import Pin


class Relay:
    """`pin` drives the contactor coil (via a transistor), high = closed. Created driven low
    so that the contactor is open from the first instruction after a reset."""

    def __init__(self, pin, feedback_pin=None, feedback_active=1):
        self._pin = Pin(pin, Pin.OUT, value=0)
        self._fb = None if feedback_pin is None else Pin(feedback_pin, Pin.IN)
        self._fb_active = feedback_active
        self.closed = False

    def close(self):
        self._pin.value(1)
        self.closed = True

    def open(self):
        self._pin.value(0)
        self.closed = False

    def feedback(self):
        if self._fb is None:
            return None
        return self._fb.value() == self._fb_active


class PhaseSwitch:
    """Contactor that adds L2/L3: high = three phases. Starts on one phase (off)."""

    def __init__(self, pin):
        self._pin = Pin(pin, Pin.OUT, value=0)
        self.phases = 1

    def set(self, phases):
        if phases not in (1, 3):
            raise ValueError("phases must be 1 or 3")
        self._pin.value(1 if phases == 3 else 0)
        self.phases = phases
