"""Wall clock for OCPP timestamps.

The ESP32 port counts time() from 2000-01-01, the unix port and CPython from 1970: read
the offset once (compat.epoch_offset) and work in Unix seconds everywhere. The clock is set
from BootNotification.conf currentTime and Heartbeat.conf; until then is_set() is False and
timestamps still come out (from whatever the RTC says) so nothing blocks on the network.

What is refused (ValueError; the callers keep the clock and log it):
- parse(): anything but a real instant in RFC 3339 form: day beyond its month (2026-02-30,
  2026-02-29, 2100-02-29), hour 24, minute or second 60 (no leap seconds: the platforms
  central systems run on never produce one), offsets beyond 23:59, non-ASCII digits, a `.`
  without fraction digits, years of more than 4 digits. 9999-12-31T23:59:59Z itself parses
  (central systems use it as "valid for ever" in validTo).
- set(): times before 1970 or from 9999-01-01 on: a clock set to 9999-12-31T23:59:59Z would
  write 10000-01-01T... a second later, which is not RFC 3339; one year of headroom is kept.
"""

import time

from compat import const, epoch_offset, ticks_diff, ticks_ms

_EPOCH = epoch_offset()
_MAX = const(253370764800)  # 9999-01-01T00:00:00Z: set() keeps a year before RFC 3339 ends
_MONTH_DAYS = b"\x1f\x1c\x1f\x1e\x1f\x1e\x1f\x1f\x1e\x1f\x1e\x1f"
_DIGITS = "0123456789"
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
    """Adopt `unix` (seconds since 1970) as the current time; ValueError (clock unchanged)
    before 1970 or from the year 9999 on."""
    global _offset, _set, _set_ticks
    if not 0 <= unix < _MAX:
        raise ValueError("time out of range: %r" % (unix,))
    _offset = int(unix) - _rtc()
    _set = True
    _set_ticks = ticks_ms()


def is_set():
    return _set


def now_or_0():
    """now() once the clock is set, else 0 (the flash log's time: lib/logfile.py)."""
    return now() if _set else 0


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


def _num(s, i, n, hi):
    """The n ASCII digits at s[i:], at most hi."""
    v = 0
    for k in range(i, i + n):
        c = s[k : k + 1]
        if not c or c not in _DIGITS:
            raise ValueError("bad timestamp: " + s)
        v = v * 10 + ord(c) - 48
    if v > hi:
        raise ValueError("bad timestamp: " + s)
    return v


def month_days(y, m):
    if m == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
        return 29
    return _MONTH_DAYS[m - 1]


def parse_or_none(s):
    """parse(s), or None for None or anything that is not a timestamp: an optional bound
    of a request (GetDiagnostics startTime, GetLog oldestTimestamp), ignored when bad."""
    if s is None:
        return None
    try:
        return parse(s)
    except ValueError:
        return None


def parse(s):
    """RFC 3339 / ISO 8601 date-time → Unix seconds (fractions dropped).

    Accepts `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` offsets, a `T` or space separator and any
    number of fraction digits; a missing offset is taken as UTC (lenient, as central
    systems in the wild send both). Only real instants: see the module docstring.
    """
    if not isinstance(s, str) or len(s) < 19:
        raise ValueError("bad timestamp: %r" % (s,))
    if s[4] != "-" or s[7] != "-" or s[10] not in "Tt " or s[13] != ":" or s[16] != ":":
        raise ValueError("bad timestamp: " + s)
    y = _num(s, 0, 4, 9999)
    mo = _num(s, 5, 2, 12)
    d = _num(s, 8, 2, 31)
    if mo < 1 or d < 1 or d > month_days(y, mo):
        raise ValueError("bad timestamp: " + s)
    h = _num(s, 11, 2, 23)
    mi = _num(s, 14, 2, 59)
    sec = _num(s, 17, 2, 59)
    i = 19
    if i < len(s) and s[i] == ".":
        i += 1
        if i >= len(s) or s[i] not in _DIGITS:
            raise ValueError("bad timestamp: " + s)
        while i < len(s) and s[i] in _DIGITS:
            i += 1
    off = 0
    rest = s[i:]
    if rest in ("", "Z", "z"):
        pass
    elif rest[0] in "+-" and (len(rest) == 5 or (len(rest) == 6 and rest[3] == ":")):
        oh = _num(rest, 1, 2, 23)
        om = _num(rest, len(rest) - 2, 2, 59)
        off = (oh * 60 + om) * 60
        if rest[0] == "-":
            off = -off
    else:
        raise ValueError("bad timestamp: " + s)
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off
