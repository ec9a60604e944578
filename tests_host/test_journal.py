"""Transaction journal (firmware/transactions/journal.py): write-before-send, FIFO, transactionId
resolution, retries, thinning when full, corruption, PowerLoss recovery, format versions."""

import json
import os

import pytest
from conftest import check_ocpp, mp_run

import log
from firmware.transactions.journal import Journal, retry_wait

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def mv(wh):
    """One sampled meter value as the metering module builds it."""
    return [
        {
            "timestamp": "2023-11-14T22:13:20Z",
            "sampledValue": [
                {"value": str(wh), "context": "Sample.Periodic",
                 "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
            ],
        }
    ]


class CentralSystem:
    """Answers like a central system: a transactionId per distinct StartTransaction."""

    def __init__(self):
        self.got = []
        self.ids = {}

    def answer(self, action, payload):
        self.got.append((action, json.loads(json.dumps(payload))))
        if action == "StartTransaction":
            key = json.dumps(payload, sort_keys=True)
            if key not in self.ids:
                self.ids[key] = 100 + len(self.ids)
            return {"transactionId": self.ids[key], "idTagInfo": {"status": "Accepted"}}
        if action == "StopTransaction":
            return {"idTagInfo": {"status": "Accepted"}}
        return {}


def drain(j, cs, now=None, limit=1000):
    for _ in range(limit):
        e = j.peek(now)
        if e is None:
            return
        check_ocpp(e["action"], e["payload"])
        j.ack(e["seq"], cs.answer(e["action"], e["payload"]))
    raise AssertionError("journal did not drain")


@pytest.fixture
def errors():
    got = []

    def sink(level, tag, text):
        if level == "E":
            got.append(tag + ": " + text)

    log.add_sink(sink)
    yield got
    log._sinks.remove(sink)


def session(j, connector=1, tag="TAG1", n=3, start=1000, t=T0):
    ref = j.start(connector, tag, start, t)
    for i in range(n):
        wh = start + 100 * (i + 1)
        j.meter_values(connector, mv(wh), t + 60 * (i + 1), wh=wh)
    j.stop(connector, start + 100 * n + 50, t + 60 * n + 30, reason="EVDisconnected")
    return ref


def test_offline_session_is_delivered_in_order_with_the_transaction_id_filled_in(tmp_path):
    j = Journal(str(tmp_path))
    session(j, n=3)
    assert len(j) == 5
    cs = CentralSystem()
    drain(j, cs)
    actions = [a for a, _ in cs.got]
    assert actions == ["StartTransaction"] + ["MeterValues"] * 3 + ["StopTransaction"]
    assert all(p["transactionId"] == 100 for _, p in cs.got[1:])
    values = [int(p["meterValue"][0]["sampledValue"][0]["value"]) for a, p in cs.got[1:4]]
    assert values == [1100, 1200, 1300]
    assert cs.got[-1][1]["meterStop"] == 1350
    assert len(j) == 0 and j.peek() is None


def test_queue_survives_reboots_and_acked_entries_never_come_back(tmp_path):
    d = str(tmp_path)
    j = Journal(d)
    session(j, tag="A", n=2)
    session(j, tag="B", n=2)
    cs = CentralSystem()
    for _ in range(3):  # Start A, 2 MeterValues
        e = j.peek()
        j.ack(e["seq"], cs.answer(e["action"], e["payload"]))
    j = Journal(d)  # power back
    assert len(j) == 5
    drain(j, cs)
    assert [a for a, _ in cs.got].count("StartTransaction") == 2
    assert [p.get("idTag") for a, p in cs.got if a == "StartTransaction"] == ["A", "B"]
    stops = [p["transactionId"] for a, p in cs.got if a == "StopTransaction"]
    assert stops == [100, 101]
    assert len(cs.got) == 8


def test_start_resent_after_a_cut_before_the_ack_is_identical(tmp_path):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "CARD", 4242, T0, reservation_id=7)
    first = j.peek()["payload"]
    # the central system answered, the power went before ack(): sent again after reboot
    again = Journal(d).peek()["payload"]
    assert again == first
    assert (again["connectorId"], again["idTag"], again["timestamp"], again["meterStart"]) == (
        1, "CARD", "2023-11-14T22:13:20Z", 4242)
    check_ocpp("StartTransaction", again)


def test_meter_values_outside_a_transaction_are_not_journaled(tmp_path):
    j = Journal(str(tmp_path))
    with pytest.raises(ValueError):
        j.meter_values(1, mv(5), T0)
    with pytest.raises(ValueError):
        j.stop(1, 5, T0)
    assert len(j) == 0 and not os.path.exists(str(tmp_path / "journal" / "q.log"))


def test_meter_values_given_up_after_attempts_counted_on_flash(tmp_path, errors):
    d = str(tmp_path)
    j = Journal(d)
    j.attempts, j.retry_interval = 3, 60
    session(j, tag="A", n=1)
    cs = CentralSystem()
    e = j.peek(T0)
    j.ack(e["seq"], cs.answer(e["action"], e["payload"]))
    e = j.peek(T0)
    assert e["action"] == "MeterValues"
    assert j.failed(e["seq"], T0) == (True, T0 + 60)  # OCPP 1.6 §4.7: n x the interval
    assert j.failures() == 1
    assert j.peek(T0 + 59) is None
    assert j.peek(T0 + 60)["seq"] == e["seq"]
    assert j.failed(e["seq"], T0 + 60) == (True, T0 + 60 + 120)
    assert j.peek(T0 + 179) is None
    assert j.failed(e["seq"], T0 + 180) == (False, T0 + 180)  # third failure: given up
    assert j.dropped == 1 and j.failures() == 0
    nxt = j.peek(T0 + 180)
    assert nxt["action"] == "StopTransaction" and nxt["payload"]["transactionId"] == 100
    assert any("after 3 attempts" in x for x in errors)
    assert Journal(d).dropped == 1  # the count is on flash with the decision


def test_retry_counter_resets_after_a_success(tmp_path):
    j = Journal(str(tmp_path))
    j.attempts, j.retry_interval = 2, 10
    session(j, n=2)
    cs = CentralSystem()
    e = j.peek(T0)
    assert j.failed(e["seq"], T0) == (True, T0 + 10)
    j.ack(e["seq"], cs.answer(e["action"], e["payload"]))
    e = j.peek(T0 + 10)
    assert j.failed(e["seq"], T0 + 10) == (True, T0 + 20)  # first failure of this entry


@pytest.mark.parametrize("attempts,interval,waits", [
    (3, 60, [60, 120, 180, 360, 720, 1440, 2880, 3600, 3600, 3600]),
    (1, 60, [60, 120, 240, 480, 960, 1920, 3600, 3600]),
    (5, 10, [10, 20, 30, 40, 50, 100, 200, 400, 800, 1600, 3200, 3600, 3600]),
    (10, 3600, [3600 * k for k in range(1, 10)] + [36000, 36000]),
    (3, 1, [1, 2, 3, 6, 12, 24, 48, 96, 192, 384, 768, 1536, 3072, 3600]),
])
def test_retry_schedule_linear_for_the_attempts_then_doubling_capped(attempts, interval,
                                                                     waits):
    """OCPP 1.6 §4.7 within TransactionMessageAttempts (interval x failures so far); after
    them a Start or Stop is never given up: the wait doubles, capped at an hour (or at the
    last wait of the spec's schedule when that is longer)."""
    got = [retry_wait(n, attempts, interval) for n in range(1, len(waits) + 1)]
    assert got == waits
    assert retry_wait(10 ** 6, attempts, interval) == waits[-1]  # no overflow, still capped


@pytest.mark.parametrize("refused", ["StartTransaction", "StopTransaction"])
def test_start_and_stop_are_never_given_up(tmp_path, errors, refused):
    """Issue 14 item 2: a Start refused three times took its MeterValues and Stop with it.
    Now it is retried on the schedule until the central system takes it, then the rest of
    the session follows, in order, under its transactionId."""
    d = str(tmp_path)
    j = Journal(d)
    j.attempts, j.retry_interval = 3, 60
    session(j, tag="A", n=2)
    session(j, tag="B", n=0)
    cs = CentralSystem()
    now = T0
    while j.peek(now)["action"] != refused:
        e, now = j.peek(now), now + 1
        j.ack(e["seq"], cs.answer(e["action"], e["payload"]))
    head = j.peek(now)["seq"]
    for n in range(1, 21):  # 20 CALLERRORs, timeouts and malformed answers, in any mix
        e = j.peek(now)
        assert e["seq"] == head and e["action"] == refused
        retry, at = j.failed(e["seq"], now, timeout=n % 2 == 0)
        assert retry and at == now + retry_wait(n, 3, 60)
        assert j.peek(at - 1) is None and j.failures() == n
        now = at
        if n == 10:
            j = Journal(d)  # a reboot: the head is kept, its count starts again
            j.attempts, j.retry_interval = 3, 60
            assert j.peek(now)["seq"] == head and j.failures() == 0
            j._tries = (head, n)  # carry on with the schedule as before the reboot
    drain(j, cs, now)
    assert [a for a, _ in cs.got] == (["StartTransaction"] + ["MeterValues"] * 2
                                      + ["StopTransaction", "StartTransaction",
                                         "StopTransaction"])
    assert [p["transactionId"] for a, p in cs.got if a != "StartTransaction"] == [100] * 3 + [
        101]
    assert j.dropped == 0 and Journal(d).dropped == 0
    assert not any("drop" in x for x in errors)


def test_malformed_start_answer_counts_as_a_failure_and_is_retried(tmp_path):
    j = Journal(str(tmp_path))
    j.attempts, j.retry_interval = 1, 5
    session(j, n=1)
    e = j.peek(T0)
    assert j.ack(e["seq"], {"transactionId": "7", "idTagInfo": {"status": "Accepted"}}) is False
    for n in range(1, 6):
        assert j.failed(e["seq"], T0) == (True, T0 + retry_wait(n, 1, 5))
    assert j.peek(T0 + 10 ** 6)["seq"] == e["seq"]  # still there, never dropped


def test_clock_set_back_does_not_hold_the_retry(tmp_path):
    j = Journal(str(tmp_path))
    j.attempts, j.retry_interval = 3, 60
    session(j, n=0)
    e = j.peek(T0)
    assert j.failed(e["seq"], T0) == (True, T0 + 60)
    assert j.peek(T0 + 30) is None
    # The central system set the clock a day back: the wait is never longer than scheduled.
    assert j.peek(T0 - 86400)["seq"] == e["seq"]


def test_legacy_dropped_start_still_takes_its_messages_along(tmp_path, errors):
    """A journal from before: an older firmware gave a Start up (transactionId null in the
    meta). Its MeterValues and Stop cannot be sent without an id: dropped and counted."""
    d = str(tmp_path)
    j = Journal(d)
    session(j, tag="LOST", n=2)
    session(j, tag="OK", n=1)
    e = j.peek(T0)
    j._advance(e["seq"], "S", e["ref"], True, None)  # what the old failed() did
    j = Journal(d)
    cs = CentralSystem()
    drain(j, cs)
    assert [a for a, _ in cs.got] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert cs.got[0][1]["idTag"] == "OK"
    assert sum("of a Start given up" in x for x in errors) == 3
    assert j.dropped == 3 and Journal(d).dropped == 3


def test_start_answer_without_transaction_id_is_not_an_ack(tmp_path):
    j = Journal(str(tmp_path))
    j.start(1, "A", 0, T0)
    e = j.peek()
    assert j.ack(e["seq"], {"idTagInfo": {"status": "Accepted"}}) is False
    assert j.peek()["seq"] == e["seq"]
    assert j.ack(e["seq"] + 1, {"transactionId": 1}) is False  # not the head


def test_transaction_id_of_the_open_transaction(tmp_path):
    j = Journal(str(tmp_path))
    j.start(2, "A", 0, T0)
    assert j.transaction_id(2) is None
    e = j.peek()
    j.ack(e["seq"], {"transactionId": 77, "idTagInfo": {"status": "Accepted"}})
    assert Journal(str(tmp_path)).transaction_id(2) == 77


def test_full_journal_thins_oldest_meter_values_and_never_drops_start_or_stop(tmp_path):
    j = Journal(str(tmp_path), max_bytes=6000)
    n = 0
    for k in range(3):
        j.start(1, "T%d" % k, 0, T0)
        for _ in range(40):
            n += 1
            j.meter_values(1, mv(n * 10), T0 + n, wh=n * 10)
            assert j.live_bytes() <= 6000
        j.stop(1, n * 10 + 5, T0 + n)
    assert j.dropped > 0 and not j.full()
    cs = CentralSystem()
    drain(j, cs)
    got = cs.got
    assert [p["idTag"] for a, p in got if a == "StartTransaction"] == ["T0", "T1", "T2"]
    assert len([a for a, _ in got if a == "StopTransaction"]) == 3
    per_tx = {}
    for a, p in got:
        if a == "MeterValues":
            per_tx.setdefault(p["transactionId"], []).append(
                int(p["meterValue"][0]["sampledValue"][0]["value"]))
    for vals in per_tx.values():
        assert vals == sorted(vals)
    # the oldest transaction is thinned hardest; first and last readings kept
    assert len(per_tx[100]) <= len(per_tx[101]) < len(per_tx[102])
    assert per_tx[100][0] == 10 and per_tx[100][-1] == 400
    assert per_tx[102][-1] == 1200


def test_the_rewrites_are_lent_only_when_one_is_due(tmp_path, monkeypatch):
    """firmware/transactions/journal_compact.py (the rewrites and the thinning) is imported
    only for an entry that finds the journal over its budget or its acknowledged prefix
    over half of it, and is out of sys.modules again after each: a charger holds none of it
    between two rewrites."""
    import sys

    import compat
    from firmware.transactions import journal as jmod

    lent = []
    real = compat.lend

    def spy(name):
        lent.append(name)
        return real(name)

    monkeypatch.setattr(jmod, "lend", spy)
    j = Journal(str(tmp_path), max_bytes=6000)
    lent.clear()
    j.start(1, "T0", 0, T0)
    for n in range(1, 4):
        j.meter_values(1, mv(n * 10), T0 + n, wh=n * 10)
    assert lent == []  # room within the budget: nothing loaded
    for n in range(4, 60):
        j.meter_values(1, mv(n * 10), T0 + n, wh=n * 10)
        assert "firmware.transactions.journal_compact" not in sys.modules
    assert set(lent) == {jmod._REWRITES} and j.rewrites >= 1 and j.dropped > 0


def test_only_start_and_stop_left_are_kept_beyond_the_budget(tmp_path, errors):
    j = Journal(str(tmp_path), max_bytes=1000)
    for k in range(10):
        j.start(1, "T%d" % k, k, T0)
        j.stop(1, k + 1, T0 + 1)
    assert j.full() and j.dropped == 0 and len(j) == 20
    assert any("full" in x for x in errors)
    cs = CentralSystem()
    drain(j, cs)
    assert len(cs.got) == 20


def test_corrupt_and_torn_lines_are_quarantined_and_the_rest_delivered(tmp_path, errors):
    d = str(tmp_path)
    j = Journal(d)
    session(j, n=3)
    path = str(tmp_path / "journal" / "q.log")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    lines[2] = lines[2][:20] + b"\x00garbage" + lines[2][28:]  # second MeterValues
    data = b"\n".join(lines)[:-10]  # and the Stop torn by a cut
    with open(path, "wb") as f:
        f.write(data)
    j = Journal(d)
    cs = CentralSystem()
    drain(j, cs)
    assert [a for a, _ in cs.got] == ["StartTransaction", "MeterValues", "MeterValues"]
    assert len(errors) >= 2
    with open(str(tmp_path / "journal" / "bad.log"), "rb") as f:
        assert len(f.read().split(b"\n")) >= 3
    assert Journal(d).peek() is None  # stays repaired


def test_corrupt_meta_and_open_record_never_stop_the_boot(tmp_path, errors):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "A", 0, T0)
    j.start(2, "B", 0, T0)
    jd = tmp_path / "journal"
    (jd / "meta.json").write_bytes(b"{\"ack\": 3, \"tx\"")
    (jd / "o1.json").write_bytes(b"\xff\xfe")
    j = Journal(d)
    assert (jd / "meta.bad").exists() and (jd / "o1.json.bad").exists()
    assert len(errors) == 2
    assert j.open_transaction(1) is None and j.open_transaction(2)["i"] == "B"
    cs = CentralSystem()
    drain(j, cs)
    assert [p["idTag"] for _, p in cs.got] == ["A", "B"]  # nothing lost


def test_recover_ends_the_open_transaction_with_powerloss_and_the_last_meter(tmp_path):
    d = str(tmp_path)
    j = Journal(d, open_every_s=60)
    j.start(1, "CARD", 1000, T0)
    cs = CentralSystem()
    e = j.peek()
    j.ack(e["seq"], cs.answer(e["action"], e["payload"]))
    j.meter_values(1, mv(1500), T0 + 60, wh=1500)  # the line holds 1500
    j.meter(1, 1550, T0 + 70)  # within 60 + 5 s of the last persisted reading: RAM only
    j.meter(1, 1600, T0 + 125)  # persisted
    j.meter(1, 1610, T0 + 130)  # lost with the power
    # power cut
    j = Journal(d)
    stops = j.recover(T0 + 3600)
    assert stops == [{"meterStop": 1600, "timestamp": "2023-11-14T22:15:25Z",
                      "reason": "PowerLoss"}]
    assert j.open_transaction(1) is None
    assert Journal(d).recover(T0 + 3601) == []
    j = Journal(d)
    drain(j, cs)
    assert [a for a, _ in cs.got] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert cs.got[-1][1] == {"transactionId": 100, "meterStop": 1600,
                             "timestamp": "2023-11-14T22:15:25Z", "reason": "PowerLoss"}


def test_recover_after_a_cut_between_stop_and_record_removal_stops_once(tmp_path):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "A", 0, T0)
    rec = (tmp_path / "journal" / "o1.json").read_bytes()
    j.stop(1, 10, T0 + 5, reason="Local")
    (tmp_path / "journal" / "o1.json").write_bytes(rec)  # the removal never happened
    j = Journal(d)
    assert j.recover(T0 + 9) == []
    cs = CentralSystem()
    drain(j, cs)
    assert [a for a, _ in cs.got] == ["StartTransaction", "StopTransaction"]


def test_recover_drops_a_record_whose_start_was_never_journaled(tmp_path):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "A", 0, T0)
    os.remove(str(tmp_path / "journal" / "q.log"))  # cut between record and Start append
    j = Journal(d)
    assert j.recover(T0) == [] and j.open_transaction(1) is None and len(j) == 0


def test_sequence_numbers_never_repeat_after_the_journal_empties(tmp_path):
    d = str(tmp_path)
    j = Journal(d)
    cs = CentralSystem()
    seqs = []
    for k in range(40):  # enough to roll the segment file (removed when fully acked)
        session(j, tag="T%d" % k, n=0)
        e = j.peek()
        seqs.append(e["seq"])
        drain(j, cs)
        j = Journal(d)
    assert seqs == sorted(set(seqs))


def test_older_and_unknown_formats_are_migrated_or_quarantined_never_wiped(tmp_path, errors):
    # A journal written by the previous firmware: J1 lines, meta v1 (no "n", no "o").
    d = str(tmp_path)
    jd = tmp_path / "journal"
    jd.mkdir()
    lines = []
    for seq, code, ref, p in (
        (1, "S", 1, {"connectorId": 1, "idTag": "A", "meterStart": 1000,
                     "timestamp": "2023-11-14T22:13:20Z"}),
        (2, "M", 1, {"connectorId": 1, "meterValue": mv(1100)}),
        (3, "T", 1, {"meterStop": 1150, "timestamp": "2023-11-14T22:15:20Z", "reason": "Local"}),
    ):
        body = json.dumps(p, separators=(",", ":")).encode()
        lines.append(b"J1 %d %s %d %d " % (seq, code.encode(), ref, len(body)) + body + b"\n")
    lines.append(b"J9 99 X 1 2 {}\n")  # an entry from a future format
    (jd / "q.log").write_bytes(b"".join(lines))
    (jd / "meta.json").write_text(json.dumps({"v": 1, "ack": 1, "tx": {"1": 5}}))
    j = Journal(d)
    assert len(j) == 2 and j.recover(T0) == []
    cs = CentralSystem()
    drain(j, cs)
    assert [(a, p["transactionId"]) for a, p in cs.got] == [
        ("MeterValues", 5), ("StopTransaction", 5)]
    assert cs.got[1][1]["meterStop"] == 1150
    assert b"J9 99" in (jd / "bad.log").read_bytes()
    metas = [json.loads((jd / n).read_text()) for n in ("meta.json", "meta2.json")]
    assert max(metas, key=lambda m: m.get("n", -1))["v"] == 2  # written in the new format
    j = Journal(d)
    assert len(j) == 0 and j.peek() is None
    session(j, tag="B", n=1)  # and the migrated journal goes on in the new format
    drain(j, cs)
    assert [a for a, _ in cs.got[2:]] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert (jd / "q.log").read_bytes().count(b"J2 ") == 3


def _one_hour_session(j, cs, mv_first):
    """1 h online: meter() every second (txn.meter_tick), MeterValues every 60 s, each
    delivered at once. mv_first: the MeterValues runs before the tick of the same second."""
    w0 = j.writes
    wh = 123456
    j.start(1, "ABCDEF0123456789", wh, T0)
    drain(j, cs)
    for s in range(1, 3601):
        wh += 3
        t = T0 + s
        due = s % 60 == 0
        if due and mv_first:
            j.meter_values(1, mv(wh), t, wh=wh)
            drain(j, cs)
        j.meter(1, wh, t)
        if due and not mv_first:
            j.meter_values(1, mv(wh), t, wh=wh)
            drain(j, cs)
    j.stop(1, wh, T0 + 3601, reason="Local")
    drain(j, cs)
    return j.writes - w0


def test_writes_per_session_and_capacity(tmp_path):
    cs = CentralSystem()
    tick_first = _one_hour_session(Journal(str(tmp_path / "a")), cs, False)
    mv_first = _one_hour_session(Journal(str(tmp_path / "b")), cs, True)
    # Start: record + append + ack; each MeterValues: append + ack (the line carries the
    # reading, so meter() never rewrites the record while MeterValues come every 60 s);
    # Stop: append + record removal + ack; + a segment removal every 4 KiB acknowledged.
    assert tick_first == mv_first
    assert 3 + 2 * 60 + 3 <= tick_first <= 3 + 2 * 60 + 3 + 4
    sizes = {}
    j2 = Journal(str(tmp_path / "cap"))
    for action, fn in (
        ("StartTransaction", lambda: j2.start(1, "ABCDEF0123456789", 123456, T0)),
        ("MeterValues", lambda: j2.meter_values(1, mv(123456), T0, wh=123456)),
        ("StopTransaction", lambda: j2.stop(1, 134256, T0, reason="EVDisconnected")),
    ):
        b = j2.live_bytes()
        fn()
        sizes[action] = j2.live_bytes() - b
    tx = j2.max_bytes // (sizes["StartTransaction"] + sizes["StopTransaction"])
    hours = j2.max_bytes / sizes["MeterValues"] / 60
    print("\njournal writes per 1 h session (meter() every s, 60 MeterValues):", tick_first)
    print("journal entry bytes:", sizes)
    print("journal capacity at %d B: %d transactions, %.1f h of MeterValues at 60 s"
          % (j2.max_bytes, tx, hours))
    assert tx >= 250 and hours >= 4


def test_meter_persists_the_reading_when_no_meter_values_come(tmp_path):
    d = str(tmp_path)
    j = Journal(d)
    j.start(1, "A", 1000, T0)
    w0 = j.writes
    for s in range(1, 601):  # 10 min, MeterValues disabled (MeterValueSampleInterval 0)
        j.meter(1, 1000 + s, T0 + s)
    assert j.writes - w0 == 600 // 65  # every open_every_s + 5 s
    assert Journal(d).recover(T0 + 700)[0]["meterStop"] == 1000 + 65 * 9


_LFS_BENCH = r"""
import vfs, os, sys
class RAMBlock:
    def __init__(self, n, size=4096):
        self.size = size
        self.data = bytearray(n * size)
        self.n = n
        self.erases = 0
        self.progs = 0
    def readblocks(self, b, buf, off=0):
        a = b * self.size + off
        buf[:] = self.data[a:a + len(buf)]
    def writeblocks(self, b, buf, off=None):
        if off is None:
            off = 0
            self.erases += 1
        a = b * self.size + off
        self.data[a:a + len(buf)] = buf
        self.progs += len(buf)
    def ioctl(self, op, arg):
        if op == 4: return self.n
        if op == 5: return self.size
        if op == 6:
            self.erases += 1
            return 0
bdev = RAMBlock(128)
vfs.VfsLfs2.mkfs(bdev)
vfs.mount(vfs.VfsLfs2(bdev), "/flash")
from firmware.transactions.journal import Journal, retry_wait
j = Journal("/flash")
mv = [{"timestamp": "2023-11-14T22:13:20Z", "sampledValue": [{"value": "1", "context":
      "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]
def drain():
    while True:
        e = j.peek()
        if e is None: return
        j.ack(e["seq"], {"transactionId": 9, "idTagInfo": {"status": "Accepted"}})
e0 = bdev.erases
j.start(1, "ABCDEF0123456789", 1, 0); drain()
for i in range(60):
    j.meter_values(1, mv, 60 * i, wh=i + 2); drain()
j.stop(1, 100, 3600); drain()
print("online", j.writes, bdev.erases - e0)
e0 = bdev.erases
j.start(1, "ABCDEF0123456789", 1, 0)
for i in range(60):
    j.meter_values(1, mv, 60 * i, wh=i + 2)
j.stop(1, 100, 3600)
print("offline", len(j), bdev.erases - e0)
j2 = Journal("/flash")
print("reboot", len(j2), j2.peek()["action"])
"""


def test_journal_on_littlefs_under_micropython():
    r = mp_run(_LFS_BENCH, heap="2m")
    assert r.returncode == 0, r.stdout + r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.strip().splitlines()
               if line.split(" ", 1)[0] in ("online", "offline", "reboot"))
    print("\nlittlefs 1 h session (writes, block erases):", out)
    assert out["reboot"] == "62 StartTransaction"
