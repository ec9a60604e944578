"""The journal reads the entry it sends next into compat.scratch() (Journal._read_j2), not with
readline: on a fragmented heap the line-sized blocks of readline and its copies were
the first allocations to fail. These tests hold the buffered read to the readline reading
(`_parse`) it replaces, over the whole class of inputs: every line damaged at every byte, in
several ways, and cut at every byte. Either both readings agree, or the buffered one declines
(None) and the caller falls back to readline and `_parse`, which decide as before."""

import os

import pytest
from test_journal import T0, CentralSystem, drain, mv

from firmware.transactions import journal as jmod
from firmware.transactions.journal import Journal


def _journal(d):
    """A log with a Start, three MeterValues of growing size and a Stop, none delivered."""
    j = Journal(d)
    j.start(1, "TAG", 1000, T0)
    for i in range(3):
        j.meter_values(1, mv(1100 + i) * (1 + 3 * i), T0 + 60 * (i + 1), wh=1100 + i)
    j.stop(1, 1400, T0 + 300, reason="Local")
    with open(os.path.join(d, "journal", "q.log"), "rb") as f:
        return j, f.read()


def _both(j, path, off):
    """(buffered reading, readline reading) of the line at `off`."""
    with open(path, "rb") as f:
        f.seek(off)
        fast = j._read_j2(f)
        f.seek(off)
        raw = f.readline()
    e = jmod._parse(raw)
    return fast, (None if e is None else (e, len(raw)))


def _lines(data):
    out, off = [], 0
    for raw in data.splitlines(keepends=True):
        out.append((off, raw))
        off += len(raw)
    return out


def test_a_whole_line_is_read_through_the_buffer_exactly_as_readline_reads_it(tmp_path):
    d = str(tmp_path)
    j, data = _journal(d)
    path = os.path.join(d, "journal", "q.log")
    lines = _lines(data)
    assert len(lines) == 5
    for off, _ in lines:
        fast, slow = _both(j, path, off)
        assert slow is not None
        assert fast == slow


@pytest.mark.parametrize("byte", [b"\n", b" ", b"x", b"0", b"}", b"\xff"])
def test_a_damaged_byte_anywhere_gives_the_readline_answer_or_none(tmp_path, byte):
    d = str(tmp_path)
    j, data = _journal(d)
    path = os.path.join(d, "journal", "q.log")
    off, raw = _lines(data)[2]  # a MeterValues in the middle of the log
    for i in range(len(raw)):
        bad = data[: off + i] + byte + data[off + i + 1 :]
        with open(path, "wb") as f:
            f.write(bad)
        fast, slow = _both(j, path, off)
        assert fast is None or fast == slow, (i, byte)
        if bad[off : off + len(raw)] == raw:  # the byte was already there: still whole
            assert fast == slow


def test_a_line_cut_at_any_byte_is_never_read_through_the_buffer(tmp_path):
    d = str(tmp_path)
    j, data = _journal(d)
    path = os.path.join(d, "journal", "q.log")
    off, raw = _lines(data)[-1]
    for keep in range(len(raw)):
        with open(path, "wb") as f:
            f.write(data[: off + keep])
        fast, slow = _both(j, path, off)
        assert fast is None and slow is None, keep


def test_a_line_longer_than_the_scratch_buffer_is_read_whole(tmp_path):
    from compat import scratch

    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "TAG", 1000, T0)
    j.meter_values(1, mv(1100) * 20, T0 + 60, wh=1100)  # one line of ~3 KB
    path = os.path.join(d, "journal", "q.log")
    with open(path, "rb") as f:
        data = f.read()
    off, raw = _lines(data)[1]
    assert len(raw) > len(scratch())
    fast, slow = _both(j, path, off)
    assert fast is not None and fast == slow
    assert len(fast[0][3]["meterValue"]) == 20


def test_entries_delivered_through_the_buffer_are_those_journaled(tmp_path):
    d = str(tmp_path)
    j, _ = _journal(d)
    cs = CentralSystem()
    drain(Journal(d), cs)  # after a reboot too: the first read makes the buffer
    values = [p["meterValue"][0]["sampledValue"][0]["value"]
              for a, p in cs.got if a == "MeterValues"]
    assert values == ["1100", "1101", "1102"]
    assert cs.got[-1][1]["meterStop"] == 1400
