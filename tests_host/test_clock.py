"""Clock: RFC 3339 formatting and parsing agree with CPython's datetime, on both runtimes."""

import datetime

from hypothesis import given
from hypothesis import strategies as st

from firmware import clock

UTC = datetime.timezone.utc


@given(st.integers(min_value=0, max_value=4102444800))
def test_rfc3339_matches_datetime(t):
    expected = datetime.datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert clock.rfc3339(t) == expected
    assert clock.parse(expected) == t


@given(st.integers(min_value=0, max_value=4102444800))
def test_weekday_matches_datetime(t):
    assert clock.weekday(t) == datetime.datetime.fromtimestamp(t, UTC).weekday()


def test_parse_offsets_and_fractions():
    assert clock.parse("2026-11-24T10:00:00.123Z") == clock.parse("2026-11-24T10:00:00Z")
    assert clock.parse("2026-11-24T11:00:00+01:00") == clock.parse("2026-11-24T10:00:00Z")
    assert clock.parse("2026-11-24T09:30:00-0030") == clock.parse("2026-11-24T10:00:00Z")
    assert clock.parse("2026-11-24T10:00:00") == 1795514400


def test_parse_rejects_garbage():
    for bad in ("", "2026-11-24", "2026-13-01T00:00:00Z", "2026-11-24T10:00:00+1", None, 5,
                "2026-11-24T10:00:00Zjunk", "abcd-ef-ghTij:kl:mnZ"):
        try:
            clock.parse(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (bad,))


def test_set_moves_now():
    clock.set(1795514400)
    assert abs(clock.now() - 1795514400) <= 1
    assert clock.is_set()


def test_clock_on_micropython(micropython):
    r = micropython(
        "from firmware import clock\n"
        "print(clock.rfc3339(1795514400), clock.parse('2026-11-24T11:00:00+01:00'))\n"
        "clock.set(1795514400); print(abs(clock.now() - 1795514400) <= 1)\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2026-11-24T10:00:00Z", "1795514400", "True"]


# ---- issue 14 item 8: impossible dates and times past 9999 are refused, the clock kept

MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days(y, m):
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return 29 if m == 2 and leap else MONTH_DAYS[m - 1]


@given(st.integers(0, 9999), st.integers(1, 12), st.integers(1, 31),
       st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_parse_accepts_exactly_the_real_dates(y, mo, d, h, mi, s):
    text = "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo, d, h, mi, s)
    if d > _days(y, mo):
        try:
            clock.parse(text)
        except ValueError:
            return
        raise AssertionError("accepted the impossible date " + text)
    t = clock.parse(text)
    if y >= 1:
        assert t == int(datetime.datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp())


def test_parse_refuses_impossible_dates_and_times():
    for bad in ("2026-02-30T00:00:00Z", "2026-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
                "2026-04-31T00:00:00Z", "2026-06-31T00:00:00Z", "2026-00-10T00:00:00Z",
                "2026-01-00T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z",
                "2026-01-01T00:00:61Z", "2026-01-01T00:00:60Z", "2026-01-01T00:00:00.Z",
                "2026-01-01T00:00:00+24:00",
                "2026-01-01T00:00:00+01:60", "2026-01-01T00:00:00+01x00",
                "2026-01-01T00:00:00+0100Z", "\uff12026-01-01T00:00:00Z",
                "2026-01-01T00:00:0\u0661Z", "+2026-01-01T00:00:00Z", "10000-01-01T00:00:00Z",
                "2026-1-01T00:00:00Z", " 2026-01-01T00:00:00Z"):
        try:
            clock.parse(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (bad,))
    assert clock.parse("2024-02-29T00:00:00Z") == 1709164800  # a leap day is real
    assert clock.parse("2000-02-29T12:00:00Z") == 951825600
    assert clock.parse("9999-12-31T23:59:59Z") == 253402300799  # validTo "for ever"


@given(st.one_of(st.text(max_size=40),
                 st.text(alphabet="0123456789-:.+TZ \u0661\uff12", min_size=15, max_size=30)))
def test_parse_never_fails_otherwise_than_with_value_error(text):
    try:
        t = clock.parse(text)
    except ValueError:
        return
    assert isinstance(t, int)
    # Whatever it accepts is a real instant: datetime agrees on the date and time.
    base = text[:10] + "T" + text[11:19]
    assert datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").year == int(text[:4])


def test_set_refuses_times_past_9999_and_before_1970_and_keeps_the_clock():
    clock.set(1795514400)
    for bad in (clock.parse("9999-12-31T23:59:59Z"), clock.parse("9999-01-01T00:00:00Z"),
                10**12, -1, clock.parse("1969-12-31T23:59:59Z")):
        try:
            clock.set(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("adopted %r" % bad)
        assert abs(clock.now() - 1795514400) <= 1
    clock.set(clock.parse("9998-12-31T23:59:59Z"))  # a year left before RFC 3339 ends
    assert clock.rfc3339().startswith("9998-12-31T23:59:5") or clock.rfc3339()[:4] == "9999"
    clock.set(1795514400)


def test_heartbeat_with_a_time_past_9999_keeps_the_clock_and_logs(monkeypatch):
    import asyncio

    import log
    from firmware.ops import heartbeat

    lines = []
    monkeypatch.setattr(log, "_sinks", [lambda lv, tag, text: lines.append((lv, text))])
    clock.set(1795514400)

    class Rpc:
        def __init__(self, t):
            self.t = t

        async def call(self, action, payload):
            return {"currentTime": self.t}

    for t in ("9999-12-31T23:59:59Z", "2026-02-30T10:00:00Z", "10000-01-01T00:00:00Z"):
        asyncio.run(heartbeat.send(None, Rpc(t)))
        assert abs(clock.now() - 1795514400) <= 1, t
        assert clock.rfc3339()[:4] == "2026"
        assert any(lv == "W" and t in text for lv, text in lines), t


def test_impossible_dates_refused_on_micropython(micropython):
    r = micropython(
        "from firmware import clock\n"
        "for s in ('2026-02-30T00:00:00Z', '2026-01-01T00:00:00+24:00', '9999-12-31T23:59:59Z'):\n"
        "    try:\n"
        "        clock.set(clock.parse(s)); print('adopted', s)\n"
        "    except ValueError:\n"
        "        print('refused')\n"
        "print(clock.parse('2024-02-29T00:00:00Z'))\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["refused", "refused", "refused", "1709164800"]
