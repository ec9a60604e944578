"""A power cut that tears the journal's last line, at every byte of it, followed by a boot that
journals more: the torn entry alone is lost (it was never accepted: its append had not
returned), everything before it and everything journaled after the boot is delivered in
order, and nothing new is glued onto the fragment. On CPython and on the MicroPython VM."""

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
