"""Control pilot and proximity arithmetic (IEC 61851-1 / SAE J1772), pure functions.

Duty is in permille (0..1000 of +12 V at 1 kHz). Formulas (IEC 61851-1 Annex A):
6 A <= I <= 51 A: duty % = I / 0.6; 51 A < I <= 80 A: duty % = I / 2.5 + 64.
Rounding: always down to the next permille, so the current the car reads back from the
duty never exceeds the current meant (16 A -> 266 permille -> 15.96 A). Below 6 A no
charging is offered (1000 = steady +12 V); above 80 A the duty for 80 A (960) is used.
"""

from compat import const

DUTY_OFF = const(1000)  # steady +12 V: no charging allowed
DUTY_MIN = const(100)  # 6 A
DUTY_MAX = const(960)  # 80 A
MIN_AMPS = const(6)
MAX_AMPS = const(80)

# Pilot high level boundaries between neighbouring states (nominal 12/9/6/3/0 V), mV,
# and the hysteresis an established state keeps across a boundary.
_B_AC = const(10500)
_B_BC = const(7500)
_B_CD = const(4500)
_B_DE = const(1500)
_HYST = const(400)
_MAX_MV = const(13500)  # above: not a pilot level (A is 11.4..12.6 V)
_MIN_MV = const(-1500)  # a positive half below this: output stuck low
# A good diode clamps the negative half to about -12 V (range -11.4..-12.6 V). Without the
# diode the car's resistor divides it: B -8.8 V, C -5.6 V, D -2.4 V.
_DIODE_MV = const(-10500)

_ORDER = "ABCDE"
_BOUNDS = (_B_AC, _B_BC, _B_CD, _B_DE)


def duty_for_current(amps):
    """Permille for a maximum current in A (int or float). 1000 below 6 A."""
    if amps is None or amps < MIN_AMPS:
        return DUTY_OFF
    if amps > MAX_AMPS:
        amps = MAX_AMPS
    if amps <= 51:
        return int(amps * 50 // 3)  # I / 0.6 %, in permille: I * 1000 / 60
    return int(amps * 4 + 640)  # (I / 2.5 + 64) %


def current_for_duty(permille):
    """The current (A) a car may draw for a duty; 0 when the duty allows no charging."""
    if permille < DUTY_MIN or permille > DUTY_MAX:
        return 0
    if permille <= 850:
        return permille * 0.06
    return (permille - 640) / 4


def is_legal_duty(permille):
    """True for 1000 (off) or a duty that some current of 6..80 A produces."""
    return permille == DUTY_OFF or DUTY_MIN <= permille <= DUTY_MAX


def classify(high_v, prev=None):
    """State letter "A".."E" for the pilot high level (V), or "X" for an invalid level.

    `prev` is the state accepted so far: it keeps its range _HYST mV beyond each boundary,
    so a level near a boundary does not flicker between two states."""
    if not -100 < high_v < 100:  # NaN or a broken reading: invalid (never raises)
        return "X"
    mv = int(high_v * 1000)
    if mv > _MAX_MV or mv < _MIN_MV:
        return "X"
    i = 0
    while i < 4 and mv < _BOUNDS[i]:
        i += 1
    if prev is not None and prev != "X" and prev != "F" and prev != _ORDER[i]:
        p = _ORDER.find(prev)
        if p >= 0:
            # The upper boundary of prev is _BOUNDS[p-1], the lower is _BOUNDS[p].
            hi = _BOUNDS[p - 1] + _HYST if p > 0 else _MAX_MV
            lo = _BOUNDS[p] - _HYST if p < 4 else _MIN_MV
            if lo <= mv < hi:
                return prev
    return _ORDER[i]


def diode_ok(low_v):
    """True when the negative half of the pilot shows the car's diode (about -12 V)."""
    if not -100 < low_v < 100:  # NaN or a broken reading: no diode seen
        return False
    return int(low_v * 1000) <= _DIODE_MV


def pp_amps(ohms):
    """Cable rating from the PP resistor (IEC 61851-1 Table B.2 ranges): 13, 20, 32 or 63 A;
    0 when no cable is inserted (above 4 kOhm); -1 for an invalid coding."""
    if ohms is None:
        return -1
    if ohms > 4000:
        return 0
    if 1100 <= ohms <= 2460:
        return 13
    if 400 <= ohms <= 936:
        return 20
    if 164 <= ohms <= 308:
        return 32
    if 75 <= ohms <= 140:
        return 63
    return -1
