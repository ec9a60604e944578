"""Control pilot and proximity arithmetic (IEC 61851-1 / SAE J1772), pure functions.

Duty is in permille (0..1000 of +12 V at 1 kHz). Formulas (IEC 61851-1 Annex A):
6 A <= I <= 51 A: duty % = I / 0.6; 51 A < I <= 80 A: duty % = I / 2.5 + 64.
Rounding: always down to the next permille, so the current the car reads back from the
duty never exceeds the current meant (16 A -> 266 permille -> 15.96 A). Below 6 A no
charging is offered (1000 = steady +12 V); above 80 A the duty for 80 A (960) is used.

The charger's 20 ms tick calls classify(), diode_ok(), pp_amps() and amps_for_duty(): they
compare readings with constant tables and do integer arithmetic only, so they allocate
nothing on the MicroPython VM (float arithmetic would make a heap object each time).
"""

from compat import const

DUTY_OFF = const(1000)  # steady +12 V: no charging allowed
DUTY_MIN = const(100)  # 6 A
DUTY_MAX = const(960)  # 80 A
MIN_AMPS = const(6)
MAX_AMPS = const(80)

# Pilot high level boundaries between neighbouring states (nominal 12/9/6/3/0 V), volts:
# A|B 10.5, B|C 7.5, C|D 4.5, D|E 1.5. An established state keeps its range 0.4 V beyond
# each of its boundaries (hysteresis): state n holds while _KEEP_LO[n] <= V < _KEEP_HI[n].
_ORDER = "ABCDE"
_BOUNDS = (10.5, 7.5, 4.5, 1.5)
_KEEP_HI = (13.5, 10.9, 7.9, 4.9, 1.9)
_KEEP_LO = (10.1, 7.1, 4.1, 1.1, -1.5)
_MAX_V = 13.5  # above: not a pilot level (A is 11.4..12.6 V)
_MIN_V = -1.5  # a positive half below this: output stuck low
# A good diode clamps the negative half to about -12 V (range -11.4..-12.6 V). Without the
# diode the car's resistor divides it: B -8.8 V, C -5.6 V, D -2.4 V.
_DIODE_V = -10.5


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


def amps_for_duty(permille):
    """current_for_duty() rounded to whole amps (half up), in integer arithmetic: the amps a
    duty was set for (8 A is 133 permille, which a car reads as 7.98 A)."""
    if permille < DUTY_MIN or permille > DUTY_MAX:
        return 0
    if permille <= 850:
        return (permille * 6 + 50) // 100
    return (permille - 638) // 4


def is_legal_duty(permille):
    """True for 1000 (off) or a duty that some current of 6..80 A produces."""
    return permille == DUTY_OFF or DUTY_MIN <= permille <= DUTY_MAX


def classify(high_v, prev=None):
    """State letter "A".."E" for the pilot high level (V), or "X" for an invalid level.

    `prev` is the state accepted so far: it keeps its range _HYST mV beyond each boundary,
    so a level near a boundary does not flicker between two states."""
    if not _MIN_V <= high_v <= _MAX_V:  # NaN or a broken reading: invalid (never raises)
        return "X"
    i = 0
    while i < 4 and high_v < _BOUNDS[i]:
        i += 1
    if prev is not None and prev != "X" and prev != "F" and prev != _ORDER[i]:
        p = _ORDER.find(prev)
        if p >= 0 and _KEEP_LO[p] <= high_v < _KEEP_HI[p]:
            return prev
    return _ORDER[i]


def diode_ok(low_v):
    """True when the negative half of the pilot shows the car's diode (about -12 V)."""
    if not -100 < low_v < 100:  # NaN or a broken reading: no diode seen
        return False
    return low_v <= _DIODE_V


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
