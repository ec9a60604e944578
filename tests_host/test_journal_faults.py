"""Transaction journal: the error paths, the full-journal policy and the single copies found
by the data-safety review (items 1, 3, 4, 5, 7, 8, 9 of /tmp/reviews/journal.md).
Flash errors are injected by replacing fs.write_atomic / os.rename / fs.free_bytes for one
call: the journal must raise and leave its state as it was, so a retry succeeds."""

import json
import os

import pytest
from conftest import check_ocpp
from test_journal import CentralSystem, drain, mv, session

import fs
import log
from firmware.transactions.journal import Journal

T0 = 1_700_000_000


def _enospc(*args):
    raise OSError(28, "ENOSPC")


@pytest.fixture
def errors():
    got = []

    def sink(level, tag, text):
        if level == "E":
            got.append(tag + ": " + text)

    log.add_sink(sink)
    yield got
    log._sinks.remove(sink)


def _send(j, cs, now=None):
    e = j.peek(now)
    check_ocpp(e["action"], e["payload"])
    return e, cs.answer(e["action"], e["payload"])


# ---- item 1: full() is not sticky


def test_full_clears_once_delivered_entries_leave_room(tmp_path):
    j = Journal(str(tmp_path), max_bytes=1000)
    for k in range(10):  # offline: short sessions, only Start/Stop, beyond the budget
        j.start(1, "T%d" % k, k, T0)
        j.stop(1, k + 1, T0 + 1)
    assert j.full()
    cs = CentralSystem()
    while j.full():  # the link is back: the backlog goes out
        e, conf = _send(j, cs)
        j.ack(e["seq"], conf)
    assert j.live_bytes() + 256 <= 1000 < j.live_bytes() + 256 + 250
    drain(j, cs)
    assert not j.full()
    j.start(1, "NEW", 100, T0 + 9)  # a new session is accepted and fits
    assert not j.full()
    assert not Journal(str(tmp_path), max_bytes=1000).full()


# ---- item 3: a flash error in ack/peek/failed changes nothing


def test_failed_meta_write_in_ack_leaves_the_state_unchanged(tmp_path, monkeypatch):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "A", 1000, T0)
    j.stop(1, 1200, T0 + 120, reason="Local")
    j.start(1, "B", 1200, T0 + 200)
    cs = CentralSystem()
    e, conf = _send(j, cs)
    j.ack(e["seq"], conf)  # Start A acked: transactionId 100
    e, conf = _send(j, cs)
    assert e["action"] == "StopTransaction" and e["payload"]["transactionId"] == 100
    monkeypatch.setattr(fs, "write_atomic", _enospc)
    with pytest.raises(OSError):
        j.ack(e["seq"], conf)
    monkeypatch.undo()
    # RAM unchanged: the same Stop, with its transactionId, is the head again
    again = j.peek()
    assert again["seq"] == e["seq"] and again["payload"]["transactionId"] == 100
    assert j.dropped == 0 and len(j) == 2
    assert j.ack(again["seq"], conf)
    e, conf = _send(j, cs)
    assert e["action"] == "StartTransaction" and e["payload"]["idTag"] == "B"
    assert not os.path.exists(str(tmp_path / "journal" / "bad.log"))


def test_failed_meta_write_of_a_start_ack_keeps_the_start_unacknowledged(tmp_path,
                                                                         monkeypatch):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "A", 1000, T0)  # still charging
    j.meter_values(1, mv(1100), T0 + 60, wh=1100)
    cs = CentralSystem()
    e, conf = _send(j, cs)
    monkeypatch.setattr(fs, "write_atomic", _enospc)
    with pytest.raises(OSError):
        j.ack(e["seq"], conf)
    assert j.transaction_id(1) is None and j.peek()["action"] == "StartTransaction"
    monkeypatch.undo()
    j.ack(e["seq"], conf)
    for j2 in (j, Journal(d)):
        assert j2.peek()["payload"]["transactionId"] == 100


def test_failed_meta_write_when_giving_up_leaves_the_head(tmp_path, monkeypatch):
    j = Journal(str(tmp_path))
    j.attempts = 1
    session(j, n=1)
    cs = CentralSystem()
    e, conf = _send(j, cs, T0)
    j.ack(e["seq"], conf)
    e = j.peek(T0)
    assert e["action"] == "MeterValues"
    monkeypatch.setattr(fs, "write_atomic", _enospc)
    with pytest.raises(OSError):
        j.failed(e["seq"], T0)  # giving the MeterValues up cannot be persisted
    monkeypatch.undo()
    assert j.peek(T0)["seq"] == e["seq"] and j.dropped == 0 and len(j) == 2
    assert j.failed(e["seq"], T0) == (False, T0)
    assert j.dropped == 1 and j.peek(T0)["action"] == "StopTransaction"


def test_append_refused_when_the_filesystem_is_short_of_space(tmp_path, monkeypatch, errors):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "A", 1000, T0)
    size = os.path.getsize(str(tmp_path / "journal" / "q.log"))
    monkeypatch.setattr(fs, "free_bytes", lambda path: 8000)  # less than 8 KiB + the entry
    with pytest.raises(OSError) as ex:
        j.meter_values(1, mv(1100), T0 + 60, wh=1100)
    assert ex.value.args[0] == 28 and "journal" in str(ex.value)
    assert any("flash full" in x for x in errors)
    assert os.path.getsize(str(tmp_path / "journal" / "q.log")) == size  # nothing written
    assert len(j) == 1
    monkeypatch.setattr(fs, "free_bytes", lambda path: None)  # port without statvfs
    j.meter_values(1, mv(1100), T0 + 60, wh=1100)
    assert len(j) == 2


def test_failed_rename_of_a_rewrite_changes_nothing(tmp_path, monkeypatch):
    j = Journal(str(tmp_path), max_bytes=3000)
    j.start(1, "A", 0, T0)
    for i in range(1, 14):
        j.meter_values(1, mv(i), T0 + 60 * i, wh=i)
    live, n = j.live_bytes(), len(j)
    assert live + 250 > 3000  # the next append must thin
    monkeypatch.setattr(os, "rename", _enospc)
    with pytest.raises(OSError):
        j.meter_values(1, mv(14), T0 + 60 * 14, wh=14)
    monkeypatch.undo()
    assert (j.live_bytes(), len(j), j.dropped) == (live, n, 0)
    j.meter_values(1, mv(14), T0 + 60 * 14, wh=14)
    assert j.dropped > 0 and j.live_bytes() <= 3000


# ---- item 4: thinning with hysteresis, one rewrite per batch


def test_offline_short_sessions_thin_in_batches_not_per_append(tmp_path):
    j = Journal(str(tmp_path), max_bytes=16384)
    t = T0
    wh = 0
    appends = 0
    k = 0
    while not j.full():  # offline 3-min sessions, 2 MeterValues each, until txn refuses
        assert k < 500
        j.start(1, "T%d" % k, wh, t)
        k += 1
        for _ in range(2):
            t += 60
            wh += 100
            j.meter_values(1, mv(wh), t, wh=wh)
        j.stop(1, wh, t + 1, reason="Local")
        appends += 4
        assert j.live_bytes() <= 16384 + 256 * 3
    print("\n%d sessions, %d appends: %d rewrites, %d dropped, live %d B"
          % (k, appends, j.rewrites, j.dropped, j.live_bytes()))
    assert j.dropped > 0 and k * 242 > 16384 * 3 // 4  # mostly Start/Stop left
    assert j.rewrites <= appends // 16  # a batch per ~max_bytes / 8, not one per append
    cs = CentralSystem()
    drain(j, cs)
    starts = [p["idTag"] for a, p in cs.got if a == "StartTransaction"]
    assert starts == ["T%d" % i for i in range(k)]  # never a Start or a Stop lost
    assert sum(1 for a, _ in cs.got if a == "StopTransaction") == k
    mvs = [p["transactionId"] for a, p in cs.got if a == "MeterValues"]
    assert mvs and min(mvs) > 100  # the oldest transactions gave their MeterValues first


def test_long_offline_session_thins_down_to_three_quarters_in_one_rewrite(tmp_path):
    j = Journal(str(tmp_path), max_bytes=8192)
    j.start(1, "LONG", 0, T0)
    n = 0
    rewrites = []
    while j.rewrites == 0:
        n += 1
        j.meter_values(1, mv(n), T0 + 60 * n, wh=n)
    rewrites.append(n)
    assert j.live_bytes() <= 8192 * 3 // 4 + 300  # down to ~3/4 in that single rewrite
    for _ in range(200):
        n += 1
        j.meter_values(1, mv(n), T0 + 60 * n, wh=n)
        assert j.live_bytes() <= 8192
    assert j.rewrites <= 1 + 200 // 8  # each frees >= max_bytes / 8 (~9 appends)
    cs = CentralSystem()
    drain(j, cs)
    vals = [int(p["meterValue"][0]["sampledValue"][0]["value"]) for a, p in cs.got
            if a == "MeterValues"]
    assert vals[0] == 1 and vals[-1] == n and vals == sorted(vals)  # first and last kept
    assert not j.full()


def test_begin_and_end_samples_and_the_head_are_never_thinned(tmp_path):
    j = Journal(str(tmp_path), max_bytes=4000)
    j.start(1, "A", 0, T0)
    begin = mv(0)
    begin[0]["sampledValue"][0]["context"] = "Transaction.Begin"
    j.meter_values(1, begin, T0, wh=0)
    cs = CentralSystem()
    head = j.peek()  # in flight while the journal thins
    for i in range(1, 60):
        j.meter_values(1, mv(i), T0 + 60 * i, wh=i)
    end = mv(60)
    end[0]["sampledValue"][0]["context"] = "Transaction.End"
    j.meter_values(1, end, T0 + 3600, wh=60)
    j.stop(1, 60, T0 + 3601)
    assert j.dropped > 0
    assert j.ack(head["seq"], cs.answer(head["action"], head["payload"]))
    drain(j, cs)
    ctx = [p["meterValue"][0]["sampledValue"][0]["context"] for a, p in cs.got
           if a == "MeterValues"]
    assert ctx[0] == "Transaction.Begin" and ctx[-1] == "Transaction.End"
    assert [a for a, _ in cs.got][-1] == "StopTransaction"


# ---- item 5, revised by issue 14 item 10: a timeout is an attempt, the interval applies


def test_timeouts_count_as_attempts_and_wait_the_retry_interval(tmp_path, errors):
    j = Journal(str(tmp_path))
    j.attempts, j.retry_interval = 3, 60
    session(j, n=1)
    cs = CentralSystem()
    e, conf = _send(j, cs, T0)
    j.ack(e["seq"], conf)
    e = j.peek(T0)
    assert e["action"] == "MeterValues"
    assert j.failed(e["seq"], T0, timeout=True) == (True, T0 + 60)
    assert j.peek(T0 + 59) is None  # the interval applies after a timeout too
    assert j.failed(e["seq"], T0 + 90, timeout=True) == (True, T0 + 90 + 120)
    assert j.failed(e["seq"], T0 + 240) == (False, T0 + 240)  # third attempt: given up
    e = j.peek(T0 + 240)
    assert e["action"] == "StopTransaction"
    for _ in range(1, 40):  # a Stop never answered: retried on the schedule, never dropped
        assert j.failed(e["seq"], T0, timeout=True)[0]
    assert j.peek(T0 + 10 ** 6)["seq"] == e["seq"]
    assert any("after 3 attempts" in x for x in errors)


# ---- item 7: a failed Start append leaves the connector usable


def test_failed_start_append_leaves_no_open_transaction(tmp_path, monkeypatch):
    d = str(tmp_path)
    j = Journal(d)
    monkeypatch.setattr(fs, "free_bytes", lambda path: 0)
    with pytest.raises(OSError):
        j.start(1, "A", 0, T0)
    monkeypatch.undo()
    assert j.open_transaction(1) is None
    assert not os.path.exists(str(tmp_path / "journal" / "o1.json"))
    ref = j.start(1, "B", 5, T0 + 1)
    assert j.open_transaction(1)["r"] == ref and len(j) == 1
    assert Journal(d).recover(T0 + 9)[0]["meterStop"] == 5


# ---- item 8: single copies


def test_corrupt_newest_meta_falls_back_to_the_previous_one(tmp_path, errors):
    d = str(tmp_path)
    j = Journal(d)
    session(j, n=2)
    cs = CentralSystem()
    for _ in range(3):  # Start, 2 MeterValues: three meta writes, alternately
        e, conf = _send(j, cs)
        j.ack(e["seq"], conf)
    jd = tmp_path / "journal"
    metas = {n: json.loads((jd / n).read_text()) for n in ("meta.json", "meta2.json")}
    newest = max(metas, key=lambda n: metas[n]["n"])
    (jd / newest).write_bytes(b"{\"v\": 2, \"n\": 9")  # flash damage
    j = Journal(d)
    assert any("unreadable" in x for x in errors)
    e = j.peek()  # the previous state: the second MeterValues is sent again, with its id
    assert e["action"] == "MeterValues" and e["payload"]["transactionId"] == 100
    assert e["payload"] == cs.got[2][1] | {"transactionId": 100}
    drain(j, cs)
    assert [a for a, _ in cs.got][-2:] == ["MeterValues", "StopTransaction"]


def test_lost_open_record_of_an_acknowledged_start_is_still_stopped(tmp_path, errors):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "A", 1000, T0)
    cs = CentralSystem()
    e, conf = _send(j, cs)
    j.ack(e["seq"], conf)
    for i in range(1, 4):
        j.meter_values(1, mv(1000 + 100 * i), T0 + 60 * i, wh=1000 + 100 * i)
    (tmp_path / "journal" / "o1.json").write_bytes(b"\xff\xfe garbage")
    j = Journal(d)
    assert j.open_transaction(1) is None
    stops = j.recover(T0 + 999)
    assert stops == [{"meterStop": 1300, "timestamp": "2023-11-14T22:16:20Z",
                      "reason": "PowerLoss"}]
    assert Journal(d).recover(T0 + 1000) == []  # once
    drain(j, cs)
    assert [a for a, _ in cs.got] == ["StartTransaction"] + ["MeterValues"] * 3 + [
        "StopTransaction"]
    assert cs.got[-1][1]["transactionId"] == 100


def test_lost_open_record_after_the_segment_rolled_over_uses_the_meta(tmp_path):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "A", 1000, T0)
    cs = CentralSystem()
    drain(j, cs)
    n = 0
    while os.path.exists(str(tmp_path / "journal" / "q.log")) or n < 3:
        n += 1
        j.meter_values(1, mv(1000 + n), T0 + 60 * n, wh=1000 + n)
        drain(j, cs)  # online: acked at once; the segment is removed at 4 KiB
    j.meter(1, 2000, T0 + 60 * n + 1)  # RAM only, not persisted
    os.remove(str(tmp_path / "journal" / "o1.json"))
    stops = Journal(d).recover(T0 + 99999)
    assert len(stops) == 1 and stops[0]["meterStop"] == 1000 + n


# ---- item 9 and leftovers


def test_meter_values_of_a_start_quarantined_at_runtime_never_go_without_an_id(tmp_path,
                                                                              errors):
    d = str(tmp_path)
    j = Journal(d)
    session(j, tag="A", n=2)
    session(j, tag="B", n=0)
    path = str(tmp_path / "journal" / "q.log")
    with open(path, "r+b") as f:  # the Start of A is damaged on flash after the load
        f.seek(20)
        f.write(b"\x00\x00")
    cs = CentralSystem()
    drain(j, cs)
    assert [(a, p.get("idTag")) for a, p in cs.got] == [
        ("StartTransaction", "B"), ("StopTransaction", None)]
    assert all("transactionId" in p for a, p in cs.got if a != "StartTransaction")
    assert sum("quarantine" in x for x in errors) >= 3


def test_a_leftover_rewrite_file_is_removed_at_load(tmp_path):
    d = str(tmp_path)
    Journal(d).start(1, "A", 0, T0)
    left = tmp_path / "journal" / "q.log.new"
    left.write_bytes(b"J2 1 S 1 0 0 2 {}\n")  # a rewrite cut before its rename
    j = Journal(d)
    assert not left.exists() and len(j) == 1
