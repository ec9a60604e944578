"""A power cut that tears the journal's last line, at every byte of it, followed by a boot that
journals more: the torn entry alone is lost (it was never accepted: its append had not
returned), everything before it and everything journaled after the boot is delivered in
order, and nothing new is glued onto the fragment. On CPython and on the MicroPython VM."""

import json
import os

import pytest
from conftest import mp_run
from test_journal import T0, CentralSystem, drain, mv

from firmware.transactions.journal import Journal


def _journal_then_tear(d, keep):
    """Start, two MeterValues (one delivered), then a third MeterValues torn after `keep`
    bytes of its line. Returns the entries that were complete before the cut."""
    j = Journal(d)
    cs = CentralSystem()
    j.start(1, "TAG", 1000, T0)
    e = j.peek()
    j.ack(e["seq"], cs.answer(e["action"], e["payload"]))  # the Start is delivered
    j.meter_values(1, mv(1100), T0 + 60, wh=1100)
    path = os.path.join(d, "journal", "q.log")
    size = os.path.getsize(path)
    j.meter_values(1, mv(1200), T0 + 120, wh=1200)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: size + keep])  # the cut: the last line is cut after `keep` bytes
    return len(data) - size


def _line_length(tmp_path):
    d = str(tmp_path / "probe")
    return _journal_then_tear(d, 10**6)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_every_tear_of_the_last_line_loses_only_that_line(tmp_path, where):
    n = _line_length(tmp_path)
    # Every byte position of the torn line (the class of inputs), in three slices so a
    # failure names the region.
    third = n // 3
    keeps = {"start": range(0, third), "middle": range(third, 2 * third),
             "end": range(2 * third, n)}[where]
    for keep in keeps:
        d = str(tmp_path / ("k%d" % keep))
        _journal_then_tear(d, keep)
        j = Journal(d)  # power back: the torn line must not swallow what comes next
        j.meter_values(1, mv(1300), T0 + 180, wh=1300)
        j.stop(1, 1350, T0 + 200, reason="Local")
        j = Journal(d)  # and once more
        cs = CentralSystem()
        drain(j, cs)
        got = [(a, p.get("meterValue", [{}])[0].get("sampledValue", [{}])[0].get("value"))
               for a, p in cs.got]
        assert got == [("MeterValues", "1100"), ("MeterValues", "1300"),
                       ("StopTransaction", None)], (keep, got)
        assert cs.got[-1][1]["meterStop"] == 1350


_MP = """
import os
from firmware.transactions.journal import Journal
d = %r
MV = lambda wh: [{"timestamp": "2023-11-14T22:13:20Z", "sampledValue": [{"value": str(wh),
      "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]
out = []
for keep in %r:
    dd = d + "/k%%d" %% keep
    j = Journal(dd)
    j.start(1, "TAG", 1000, 1700000000)
    e = j.peek()
    j.ack(e["seq"], {"transactionId": 7, "idTagInfo": {"status": "Accepted"}})
    j.meter_values(1, MV(1100), 1700000060, wh=1100)
    p = dd + "/journal/q.log"
    size = os.stat(p)[6]
    j.meter_values(1, MV(1200), 1700000120, wh=1200)
    f = open(p, "rb"); data = f.read(); f.close()
    f = open(p, "wb"); f.write(data[:size + keep]); f.close()
    j = Journal(dd)
    j.meter_values(1, MV(1300), 1700000180, wh=1300)
    j.stop(1, 1350, 1700000200, reason="Local")
    j = Journal(dd)
    got = []
    while True:
        e = j.peek()
        if e is None:
            break
        got.append(e["action"])
        j.ack(e["seq"], {"idTagInfo": {"status": "Accepted"}} if e["action"] != "MeterValues"
              else {})
    out.append(",".join(got))
print("|".join(out))
"""


def test_torn_tail_on_micropython(tmp_path):
    keeps = (0, 1, 5, 30, 60, 100, 150)
    r = mp_run(_MP % (str(tmp_path), keeps))
    assert r.returncode == 0, r.stdout + r.stderr
    rows = r.stdout.strip().splitlines()[-1].split("|")
    assert rows == ["MeterValues,MeterValues,StopTransaction"] * len(keeps), rows


class _HalfJson:
    """json for the streamed append on CPython: writes the body to the binary file; with
    `fail` set, half of it and then a MemoryError (the heap ran out in the middle)."""

    def __init__(self):
        self.fail = False

    def dump(self, obj, f, separators=None):
        import json

        body = json.dumps(obj, separators=separators).encode()
        if self.fail:
            f.write(body[: len(body) // 2])
            raise MemoryError("memory allocation failed")
        f.write(body)

    def __getattr__(self, name):
        import json

        return getattr(json, name)


def test_a_line_that_fails_half_way_is_cut_and_the_next_one_stands_alone(tmp_path, monkeypatch):
    from firmware.transactions import journal as jmod

    fake = _HalfJson()
    monkeypatch.setattr(jmod, "MICROPYTHON", True)  # the streamed path, as on the board
    monkeypatch.setattr(jmod, "json", fake)
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "TAG", 1000, T0)
    j.meter_values(1, mv(1100), T0 + 60, wh=1100)
    fake.fail = True
    with pytest.raises(MemoryError):
        j.meter_values(1, mv(1200), T0 + 120, wh=1200)
    fake.fail = False
    j.meter_values(1, mv(1300), T0 + 180, wh=1300)
    j.stop(1, 1350, T0 + 200, reason="Local")
    monkeypatch.setattr(jmod, "json", __import__("json"))
    cs = CentralSystem()
    drain(Journal(d), cs)  # after a reboot too
    vals = [p["meterValue"][0]["sampledValue"][0]["value"]
            for a, p in cs.got if a == "MeterValues"]
    assert [a for a, _ in cs.got] == ["StartTransaction", "MeterValues", "MeterValues",
                                      "StopTransaction"]
    assert vals == ["1100", "1300"]


_MP_STREAM = """
from firmware.transactions import journal as jm
from firmware.transactions.journal import Journal
d = %r
MV = lambda wh: [{"timestamp": "2023-11-14T22:13:20Z", "sampledValue": [{"value": str(wh),
      "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
      "unit": "Wh"}]}]
j = Journal(d)
j.start(1, "T\\u00e9G", 1000, 1700000000)
j.meter_values(1, MV(1100), 1700000060, wh=1100)
j.stop(1, 1150, 1700000100, reason="Local")
f = open(d + "/journal/q.log", "rb")
print(f.read())
f.close()
"""


def test_streamed_lines_on_micropython_are_the_lines_cpython_writes(tmp_path):
    r = mp_run(_MP_STREAM % str(tmp_path / "mp"))
    assert r.returncode == 0, r.stdout + r.stderr
    got = eval(r.stdout.strip().splitlines()[-1])  # the bytes repr MicroPython printed
    j = Journal(str(tmp_path / "py"))
    j.start(1, "T\u00e9G", 1000, T0)
    j.meter_values(1, mv(1100), T0 + 60, wh=1100)
    j.stop(1, 1150, T0 + 100, reason="Local")
    with open(str(tmp_path / "py" / "journal" / "q.log"), "rb") as f:
        want = f.read()
    norm = [line.split(b" ", 7) for line in got.split(b"\n")]
    wantl = [line.split(b" ", 7) for line in want.split(b"\n")]
    assert len(norm) == len(wantl)
    for a, b in zip(norm, wantl, strict=True):
        # The same fields and body; the streamed length is zero-padded (and MicroPython's
        # json writes UTF-8 where CPython's escapes, so the lengths are each body's own).
        if len(a) == 8:
            assert int(a[6]) == len(a[7]) and json.loads(a[7]) == json.loads(b[7])
        assert a[:6] == b[:6]
    # Each line is read back by the CPython loader, which is the board's loader.
    j2 = Journal(str(tmp_path / "mp"))
    assert len(j2) == 3


def test_no_room_to_read_an_entry_never_quarantines_it(tmp_path, monkeypatch):
    # Found on the 32-bit frozen build at 78 KiB: a MemoryError while parsing the head entry
    # was taken for a damaged line, and every MeterValues went to bad.log.
    from firmware.transactions import journal as jmod

    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "TAG", 1000, T0)
    j.meter_values(1, mv(1100), T0 + 60, wh=1100)
    real = __import__("json")

    class Tight:
        fail = 2

        def loads(self, s):
            if self.fail:
                self.fail -= 1
                raise MemoryError("memory allocation failed")
            return real.loads(s)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(jmod, "json", Tight())
    for _ in range(2):
        with pytest.raises(MemoryError):
            j.peek()
    monkeypatch.setattr(jmod, "json", real)
    cs = CentralSystem()
    drain(j, cs)
    assert [a for a, _ in cs.got] == ["StartTransaction", "MeterValues"]
    assert not os.path.exists(os.path.join(d, "journal", "bad.log"))
