"""Socket cable lock: a DC motor on an H-bridge (pins a/b) and an end-position switch.

`drive()` starts one motor pulse and returns; a one-shot timer stops the motor after
`pulse_ms`, and `state()` stops it too if the timer is late. Pulses towards the same
position are bounded: after `max_pulses` that did not reach it, `drive()` refuses (returns
False) until the other direction is asked for or the position is reached, so a jammed lock
cannot burn the motor.
"""

from machine import Pin, Timer

from compat import ticks_add, ticks_diff, ticks_ms


class Lock:
    present = True

    def __init__(self, a_pin, b_pin, locked_pin, locked_level=0, unlocked_pin=None,
                 pulse_ms=300, max_pulses=3, timer=0):  # fmt: skip
        self._a = Pin(a_pin, Pin.OUT, value=0)
        self._b = Pin(b_pin, Pin.OUT, value=0)
        self._locked = Pin(locked_pin, Pin.IN, Pin.PULL_UP)
        self._unlocked = None if unlocked_pin is None else Pin(unlocked_pin, Pin.IN, Pin.PULL_UP)
        self._level = locked_level
        self._pulse_ms = pulse_ms
        self._max = max_pulses
        self._timer = Timer(timer)
        self._until = None
        self._target = None
        self.pulses = 0  # pulses towards _target that did not reach it yet

    def _stop(self, _t=None):
        self._a.value(0)
        self._b.value(0)
        self._until = None

    def _running(self):
        if self._until is not None and ticks_diff(ticks_ms(), self._until) >= 0:
            self._stop()
        return self._until is not None

    def drive(self, locked):
        locked = bool(locked)
        if self._running():
            return False
        want = "locked" if locked else "unlocked"
        if self._target != locked or self.state() == want:
            self._target = locked
            self.pulses = 0
            if self.state() == want:
                return True
        if self.pulses >= self._max:
            return False  # bounded retries: the lock is jammed
        self.pulses += 1
        self._until = ticks_add(ticks_ms(), self._pulse_ms)
        (self._a if locked else self._b).value(1)
        self._timer.init(mode=Timer.ONE_SHOT, period=self._pulse_ms, callback=self._stop)
        return True

    def state(self):
        if self._running():
            return "unknown"
        is_locked = self._locked.value() == self._level
        if self._unlocked is not None:
            is_unlocked = self._unlocked.value() == self._level
            if is_locked == is_unlocked:
                return "unknown"  # both or neither end switch: between positions or broken
        return "locked" if is_locked else "unlocked"
