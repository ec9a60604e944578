"""Wall clock for OCPP timestamps.

The ESP32 port counts time() from 2000-01-01, the unix port and CPython from 1970: read
the offset once (compat.epoch_offset) and work in Unix seconds everywhere. The clock is set
from BootNotification.conf currentTime and Heartbeat.conf; until then is_set() is False and
timestamps still come out (from whatever the RTC says) so nothing blocks on the network.
"""

import time

from compat import epoch_offset, ticks_diff, ticks_ms

_EPOCH = epoch_offset()
# Offset added to the local time() when the central system told us the time.
_offset = 0
_set = False
_set_ticks = None


def _rtc():
    return int(time.time()) + _EPOCH


def now():
    """Unix seconds (1970 epoch) as an int."""
    return _rtc() + _offset


def set(unix):
    """Adopt `unix` (seconds since 1970) as the current time."""
    global _offset, _set, _set_ticks
    _offset = int(unix) - _rtc()
    _set = True
    _set_ticks = ticks_ms()


def is_set():
    return _set


def since_set_ms():
    return None if _set_ticks is None else ticks_diff(ticks_ms(), _set_ticks)


# Days from 1970-01-01 to y-m-d (proleptic Gregorian), Howard Hinnant's algorithm: no
# tables, no time.mktime (whose epoch and timezone differ between ports).
def _days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def rfc3339(t=None):
    """RFC 3339 UTC timestamp with Z, whole seconds: 2026-11-24T10:00:00Z."""
    if t is None:
        t = now()
    t = int(t)
    days, rem = divmod(t, 86400)
    y, m, d = _civil_from_days(days)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, m, d, rem // 3600, rem // 60 % 60, rem % 60)


def weekday(t):
    """0 = Monday … 6 = Sunday, for Unix seconds t (1970-01-01 was a Thursday)."""
    return (int(t) // 86400 + 3) % 7


def _num(s, i, n):
    part = s[i : i + n]
    if len(part) != n or not part.isdigit():
        raise ValueError("bad timestamp: " + s)
    return int(part)


def parse(s):
    """RFC 3339 / ISO 8601 date-time → Unix seconds (fractions dropped).

    Accepts `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` offsets, a `T` or space separator and any
    number of fraction digits; a missing offset is taken as UTC (lenient, as central
    systems in the wild send both).
    """
    if not isinstance(s, str) or len(s) < 19:
        raise ValueError("bad timestamp: %r" % (s,))
    y = _num(s, 0, 4)
    mo = _num(s, 5, 2)
    d = _num(s, 8, 2)
    if s[4] != "-" or s[7] != "-" or s[10] not in "Tt " or s[13] != ":" or s[16] != ":":
        raise ValueError("bad timestamp: " + s)
    h = _num(s, 11, 2)
    mi = _num(s, 14, 2)
    sec = _num(s, 17, 2)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and sec <= 60):
        raise ValueError("bad timestamp: " + s)
    i = 19
    if i < len(s) and s[i] == ".":
        i += 1
        while i < len(s) and s[i].isdigit():
            i += 1
    off = 0
    rest = s[i:]
    if rest in ("", "Z", "z"):
        pass
    elif rest[0] in "+-" and len(rest) in (5, 6):
        oh = _num(rest, 1, 2)
        om = _num(rest, len(rest) - 2, 2)
        off = (oh * 60 + om) * 60
        if rest[0] == "-":
            off = -off
    else:
        raise ValueError("bad timestamp: " + s)
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off
