"""StartTransaction (firmware/ops/start_transaction.py): journaled frozen, answer applied."""

from txnkit import drain, events, fast_retries, make, run

from firmware.ops import start_transaction


def test_start_is_frozen_and_resent_identically(tmp_path, monkeypatch):
    fast_retries(monkeypatch)  # a timeout waits TransactionMessageRetryInterval
    cp, txn = make(tmp_path)
    cp.session.handler = lambda a, p: None if a == "StartTransaction" else {}
    run(events(txn, "plugged"))
    txn._start("A", {"status": "Accepted"}, 1)
    cp.charger.energy_wh = 5000.0
    run(drain(txn, limit_s=0.2))
    cp.session.handler = cp.session.default
    run(drain(txn))
    starts = cp.session.sent("StartTransaction")
    assert len(starts) >= 2 and all(s == starts[0] for s in starts)
    assert starts[0]["meterStart"] == 1000


def test_on_conf_sets_id_cache_and_hands_the_profile_to_smart_charging(tmp_path):
    cp, txn = make(tmp_path)
    got = []

    class Smart:
        def set_profile(self, conn, prof, tx=None, now=None):
            got.append((conn, prof["chargingProfileId"], tx.transaction_id))
            return "Accepted"

    cp.smart = Smart()
    run(events(txn, "plugged"))
    tx = txn._start("A", {"status": "Accepted"}, 1, profile={"chargingProfileId": 7})
    entry = txn.journal.peek()
    start_transaction.on_conf(cp, entry, {"transactionId": 42, "idTagInfo": {
        "status": "Accepted", "parentIdTag": "P"}})
    assert tx.transaction_id == 42 and tx.parent_id_tag == "P"
    assert got == [(1, 7, 42)] and tx.profile is None
    assert txn.auth.cache.get("A", 0)["parentIdTag"] == "P"


def test_on_conf_for_a_finished_transaction_only_caches(tmp_path):
    cp, txn = make(tmp_path)
    run(events(txn, "plugged"))
    txn._start("A", {"status": "Accepted"}, 1)
    entry = txn.journal.peek()
    txn.stop(1, "Local")
    start_transaction.on_conf(cp, entry, {"transactionId": 5, "idTagInfo": {"status": "Invalid"}})
    assert cp.tx is None and txn.auth.cache.get("A", 0)["status"] == "Invalid"
