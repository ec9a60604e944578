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
