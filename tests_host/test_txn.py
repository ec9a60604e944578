"""The transaction service (firmware/transactions/service.py) on CPython with the real journal,
config,
charger and authorization parts, against a loopback central system (txnkit.LoopSession)."""

from txnkit import drain, events, fast_retries, make, run

from firmware.transactions.journal import Journal
from firmware.transactions.service import TxnKeys


def test_card_then_plug_journals_start_before_sending_then_fills_in_the_id(tmp_path):
    cp, txn = make(tmp_path)
    seen = []
    txn.subscribe(lambda ev, tx: seen.append((ev, tx.local_ref)))

    async def go():
        await events(txn, ("card", "A1"))
        assert cp.tx is None  # authorized, but no car yet
        cp.charger.energy_wh = 1234.7
        await events(txn, "plugged")
        tx = cp.tx
        assert tx is not None and txn.active(1) is tx
        assert tx.transaction_id is None and tx.id_tag == "A1" and tx.connector_id == 1
        assert tx.meter_start == 1234 and isinstance(tx.start_time, int)
        # Written before sent: in the journal, not yet at the central system.
        assert txn.pending() == 1 and cp.session.sent("StartTransaction") == []
        assert cp.charger.authorized
        await drain(txn)
        assert tx.transaction_id == 101 and txn.pending() == 0
        start = cp.session.sent("StartTransaction")[0]
        assert start["meterStart"] == 1234 and start["idTag"] == "A1"
        cp.charger.energy_wh = 1300.2
        await events(txn, "unplugged")
        assert cp.tx is None and not cp.charger.authorized
        await drain(txn)
        stop = cp.session.sent("StopTransaction")[0]
        assert stop == {"transactionId": 101, "meterStop": 1300, "reason": "EVDisconnected",
                        "timestamp": stop["timestamp"]}
        assert txn.last_writes and txn.last_writes > 0

    run(go())
    assert cp.session.actions() == ["Authorize", "StartTransaction", "StopTransaction"]
    assert seen == [("started", 1), ("stopped", 1)]


def test_unplug_keeps_the_transaction_when_stop_on_ev_side_disconnect_is_off(tmp_path):
    cp, txn = make(tmp_path, StopTransactionOnEVSideDisconnect="false")

    async def go():
        await events(txn, "plugged", ("card", "A1"), "unplugged")
        assert cp.tx is not None
        await events(txn, "plugged")
        assert cp.charger.authorized  # back in: energy may flow again

    run(go())


def test_same_card_stops_other_card_does_not_parent_tag_does(tmp_path):
    cp, txn = make(tmp_path)
    cp.session.cards = {"A1": {"status": "Accepted", "parentIdTag": "FLEET"},
                        "B2": {"status": "Accepted", "parentIdTag": "FLEET"}}

    async def go():
        await events(txn, "plugged", ("card", "A1"), ("card", "X9"))
        assert cp.tx is not None  # no common parent: may not stop
        await events(txn, ("card", "B2"))
        assert cp.tx is None
        await drain(txn)

    run(go())
    stop = cp.session.sent("StopTransaction")[0]
    assert stop["reason"] == "Local" and stop["idTag"] == "B2"


def test_refused_card_starts_nothing(tmp_path):
    cp, txn = make(tmp_path)
    cp.session.cards = {"BAD": {"status": "Blocked"}}
    run(events(txn, "plugged", ("card", "BAD")))
    assert cp.tx is None and txn.pending() == 0


def test_authorization_without_a_car_expires_after_connection_timeout(tmp_path):
    cp, txn = make(tmp_path, ConnectionTimeOut="5")

    async def go():
        await events(txn, ("card", "A1"))
        txn._timers()
        assert txn._pending is not None
        txn._pending[2] -= 5000  # five seconds later
        txn._timers()
        assert txn._pending is None
        await events(txn, "plugged")
        assert cp.tx is None

    run(go())


def test_dummy_card_when_no_card_within_connection_timeout(tmp_path):
    cp, txn = make(tmp_path, ocppd="FREE", ConnectionTimeOut="5")

    async def go():
        await events(txn, "plugged")
        txn._timers()
        assert txn._events == []
        txn._plug_ms -= 5000
        txn._timers()
        assert txn._events == [("card", "FREE")]
        await events(txn, txn._events.pop(0))
        assert cp.tx is not None and cp.tx.id_tag == "FREE"

    run(go())


def test_charging_without_a_card_uses_the_dummy_card(tmp_path):
    cp, txn = make(tmp_path, ocppd="FREE")
    run(events(txn, "plugged", "charging"))
    assert cp.tx.id_tag == "FREE"


def test_frc_off_stops_with_reason_local(tmp_path):
    cp, txn = make(tmp_path)

    async def go():
        await events(txn, "plugged", ("card", "A1"))
        assert cp.config.update({"frc": 1}, "api") == {}
        assert cp.tx is None
        await drain(txn)

    run(go())
    assert cp.session.sent("StopTransaction")[0]["reason"] == "Local"


def test_stop_by_another_service_and_events(tmp_path):
    cp, txn = make(tmp_path)
    seen = []
    txn.subscribe(lambda ev, tx: seen.append(ev))
    assert txn.stop(1, "SoftReset") is False  # nothing runs
    run(events(txn, "plugged", ("card", "A1")))
    assert txn.stop(1, "UnlockCommand") is True
    run(drain(txn))
    assert cp.session.sent("StopTransaction")[0]["reason"] == "UnlockCommand"
    assert seen == ["started", "stopped"]


def test_invalid_start_answer_stops_with_deauthorized(tmp_path):
    cp, txn = make(tmp_path)
    cp.session.cards = {"A1": {"status": "Accepted"}}

    async def go():
        await events(txn, "plugged", ("card", "A1"))
        cp.session.cards = {"A1": {"status": "Invalid"}}
        await drain(txn)

    run(go())
    assert cp.tx is None
    assert [p["reason"] for p in cp.session.sent("StopTransaction")] == ["DeAuthorized"]
    # The cache learnt it from the StartTransaction answer.
    assert txn.auth.cache.get("A1", 0)["status"] == "Invalid"


def test_invalid_start_answer_suspends_after_max_energy_when_not_stopping(tmp_path):
    cp, txn = make(tmp_path, StopTransactionOnInvalidId="false", MaxEnergyOnInvalidId="50")

    async def go():
        await events(txn, "plugged", ("card", "A1"))
        cp.session.cards = {"A1": {"status": "Invalid"}}
        await drain(txn)
        tx = cp.tx
        assert tx is not None and cp.charger.authorized
        cp.charger.energy_wh += 49
        txn.meter_tick(tx)
        assert cp.charger.authorized
        cp.charger.energy_wh += 1
        txn.meter_tick(tx)
        assert not cp.charger.authorized and cp.tx is tx

    run(go())


def test_callerror_retries_per_config_and_keeps_order(tmp_path, monkeypatch):
    # The retry waits pass at once (FastClock): the configured values reach the journal
    # (asserted here), their waits are retry_wait's (test_journal).
    fast_retries(monkeypatch)
    cp, txn = make(tmp_path, TransactionMessageAttempts="2", TransactionMessageRetryInterval="1")
    assert txn.journal.attempts == 2 and txn.journal.retry_interval == 1
    cp.config.ocpp_set("TransactionMessageAttempts", "4")
    assert txn.journal.attempts == 4
    from firmware.ocpp.rpc import CallError

    fails = [2]

    def flaky(action, payload):
        if action == "StartTransaction" and fails[0]:
            fails[0] -= 1
            raise CallError("InternalError", "busy")
        return cp.session.default(action, payload)

    cp.session.handler = flaky

    async def go():
        await events(txn, "plugged", ("card", "A1"))
        txn.stop(1, "Local")
        await drain(txn, limit_s=5)

    run(go())
    assert cp.session.actions() == ["Authorize"] + ["StartTransaction"] * 3 + ["StopTransaction"]


def test_timeout_and_offline_leave_the_head_for_later(tmp_path, monkeypatch):
    # The fake session times out at once (a real one after the call timeout); a timeout is
    # an attempt, and a Start is never given up: it is there when the central system answers.
    fast_retries(monkeypatch)
    cp, txn = make(tmp_path, TransactionMessageAttempts="1")
    cp.session.handler = lambda a, p: None if a == "StartTransaction" else cp.session.default(a, p)

    async def go():
        await events(txn, "plugged", ("card", "A1"))
        await drain(txn, limit_s=0.3)
        assert txn.pending() == 1 and len(cp.session.sent("StartTransaction")) > 1
        cp.session.handler = cp.session.default
        await drain(txn)
        assert txn.pending() == 0

    run(go())
    starts = cp.session.sent("StartTransaction")
    assert all(s == starts[0] for s in starts)


def test_power_cut_ends_the_transaction_with_power_loss_at_the_next_boot(tmp_path):
    cp, txn = make(tmp_path)

    async def go():
        await events(txn, "plugged", ("card", "A1"))
        await drain(txn)
        cp.charger.energy_wh = 1500.0
        txn.meter_tick(cp.tx)
        txn.journal_meter_values(cp.tx, {"timestamp": "2026-01-01T00:00:00Z",
                                         "sampledValue": [{"value": "1500"}]})

    run(go())
    # Power cut: nothing more runs. Next boot on the same data.
    cp2, txn2 = make(tmp_path)
    assert cp2.tx is None
    assert [p["reason"] for p in txn2.recovered] == ["PowerLoss"]
    run(drain(txn2))
    stop = cp2.session.sent("StopTransaction")[0]
    assert stop["transactionId"] == 101 and stop["meterStop"] == 1500
    assert cp2.session.sent("MeterValues")[0]["transactionId"] == 101
    assert len(Journal(str(tmp_path))) == 0


def test_auth_required_follows_ocppe_then_acs(tmp_path):
    cp, txn = make(tmp_path)
    assert cp.charger.auth_required is True
    cp.config.update({"ocppe": False}, "api")
    assert cp.charger.auth_required is False
    cp.config.update({"acs": 1}, "api")
    assert cp.charger.auth_required is True


def test_status_keys(tmp_path):
    cp, txn = make(tmp_path)
    keys = TxnKeys(txn)
    out = {}
    keys.status(out)
    assert out == {"jw": None, "jq": 0, "jd": 0, "jr": 0, "mvm": 0}
    assert keys.owns("jw") and keys.check("jw", 1) == "read-only"


def test_a_flash_error_in_the_journal_does_not_stop_delivery(tmp_path, monkeypatch):
    from firmware.transactions import service as txnmod

    monkeypatch.setattr(txnmod, "_FLASH_RETRY_MS", 10)
    cp, txn = make(tmp_path)
    real_ack = txn.journal.ack
    fail = [1]

    def ack(seq, resp):
        if fail[0]:
            fail[0] -= 1
            raise OSError(28, "ENOSPC")  # meta.json could not be written
        return real_ack(seq, resp)

    monkeypatch.setattr(txn.journal, "ack", ack)

    async def go():
        await events(txn, "plugged", ("card", "A1"))
        txn.stop(1, "Local")
        await drain(txn, limit_s=3)

    run(go())
    assert fail[0] == 0
    assert txn.pending() == 0  # the sender survived the error and delivered everything
    # The Start whose ack failed was sent again, identical (the central system recognises it).
    starts = cp.session.sent("StartTransaction")
    assert len(starts) == 2 and starts[0] == starts[1]


def test_a_message_never_answered_does_not_block_the_queue_forever(tmp_path, monkeypatch):
    """Issue 14 item 10: a MeterValues never answered held every later message for
    10 x attempts x the call timeout. A timeout is an attempt: it is given up after
    TransactionMessageAttempts, with the retry interval between, and the Stop goes."""
    fast_retries(monkeypatch)
    cp, txn = make(tmp_path, TransactionMessageAttempts="3")
    cp.session.handler = lambda a, p: None if a == "MeterValues" else cp.session.default(a, p)

    async def go():
        await events(txn, "plugged", ("card", "A1"))
        await drain(txn, limit_s=1)
        # A MeterValues the central system never answers, then the Stop behind it.
        txn.journal.meter_values(1, [{"timestamp": "2026-11-24T10:00:00Z",
                                      "sampledValue": [{"value": "1000"}]}], 0)
        txn.stop(1, "Local")
        await drain(txn, limit_s=3)

    run(go())
    assert len(cp.session.sent("MeterValues")) == 3
    assert cp.session.actions()[-1] == "StopTransaction"
    assert txn.pending() == 0
    out = {}
    TxnKeys(txn).status(out)
    assert out["jd"] == 1 and out["jr"] == 0 and out["jq"] == 0


def test_start_refused_three_times_keeps_the_whole_session(tmp_path, monkeypatch):
    """Issue 14 item 2: with the defaults (3 attempts) a Start refused three times - by
    CALLERROR or an answer without a usable transactionId - was dropped with its MeterValues
    and its Stop while the car charged. Now it is retried until taken; `jr` shows the
    refusals meanwhile; the session reaches the central system whole."""
    from firmware.ocpp.rpc import CallError

    fast_retries(monkeypatch)
    cp, txn = make(tmp_path)
    refusals = ["error", "string-id", "error", "error", "timeout", "error"]
    seen = []

    def hostile(action, payload):
        if action == "StartTransaction" and refusals:
            how = refusals.pop(0)
            out = {}
            TxnKeys(txn).status(out)
            seen.append(out["jr"])
            if how == "error":
                raise CallError("InternalError", "busy")
            if how == "timeout":
                return None
            return {"transactionId": "77", "idTagInfo": {"status": "Accepted"}}
        return cp.session.default(action, payload)

    cp.session.handler = hostile

    async def go():
        await events(txn, "plugged", ("card", "A1"))
        txn.journal_meter_values(cp.tx, {"timestamp": "2026-11-24T10:00:00Z",
                                         "sampledValue": [{"value": "1000"}]})
        txn.stop(1, "Local")
        await drain(txn, limit_s=5)

    run(go())
    assert seen == [0, 1, 2, 3, 4, 5]
    assert cp.session.actions() == (["Authorize"] + ["StartTransaction"] * 7
                                    + ["MeterValues", "StopTransaction"])
    assert cp.session.sent("StopTransaction")[0]["transactionId"] == 101
    assert cp.session.sent("MeterValues")[0]["transactionId"] == 101
    out = {}
    TxnKeys(txn).status(out)
    assert out == {"jw": out["jw"], "jq": 0, "jd": 0, "jr": 0, "mvm": 0}


# -- frc=2 with OCPP on: energy only within a transaction -------------------------------------
def _offer(cp):
    """The current the pilot offers the car after a tick (acu; None: no charging)."""
    cp.charger.tick()
    return cp.charger.acu


async def _pump(txn):
    while txn._events:
        await txn._handle(*txn._events.pop(0))


async def _plug(cp, txn):
    """The car plugged in as the charger sees it (its tick emits "plugged")."""
    cp.hal.lock.present = False  # no lock motor to wait for
    cp.hal.cp = "B"
    cp.charger.tick()
    cp.charger.tick()
    assert cp.charger.plugged
    await _pump(txn)


def test_frc_on_with_ocpp_and_no_card_does_not_bypass_authorization(tmp_path):
    cp, txn = make(tmp_path)

    async def go():
        assert cp.config.update({"frc": 2}, "api") == {}
        await _plug(cp, txn)
        assert _offer(cp) is None and cp.tx is None  # no ocppd: nothing to start with
        await events(txn, ("card", "A1"))  # a card: the central system sees a transaction
        assert cp.tx is not None and _offer(cp) == 16
        assert txn.stop(1, "Local")
        assert _offer(cp) is None  # no energy after it either

    run(go())


def test_frc_on_with_ocpp_starts_a_transaction_with_the_dummy_card(tmp_path):
    cp, txn = make(tmp_path, ocppd="FREE")

    async def go():
        await _plug(cp, txn)
        assert txn._events == []  # frc=0: the dummy waits for ConnectionTimeOut
        assert cp.config.update({"frc": 2}, "api") == {}
        assert txn._events == [("card", "FREE")]
        await _pump(txn)
        assert cp.tx is not None and cp.tx.id_tag == "FREE" and _offer(cp) == 16
        await drain(txn)

    run(go())
    assert [p["idTag"] for p in cp.session.sent("Authorize")] == ["FREE"]
    assert cp.session.sent("StartTransaction")[0]["idTag"] == "FREE"


def test_frc_on_with_the_dummy_card_when_the_car_comes_later(tmp_path):
    cp, txn = make(tmp_path, ocppd="FREE", frc=2)

    async def go():
        assert _offer(cp) is None
        await _plug(cp, txn)
        assert cp.tx.id_tag == "FREE" and _offer(cp) == 16

    run(go())


def test_frc_on_with_an_invalid_transaction_delivers_no_more_energy(tmp_path):
    cp, txn = make(tmp_path, frc=2, StopTransactionOnInvalidId="false")

    async def go():
        await _plug(cp, txn)
        await events(txn, ("card", "A1"))
        tx = cp.tx
        assert _offer(cp) == 16
        txn.invalidated(tx, "Invalid")
        txn.meter_tick(tx)  # MaxEnergyOnInvalidId 0: spent at once
        assert tx.suspended and _offer(cp) is None and cp.tx is tx

    run(go())


def test_frc_on_without_ocpp_charges_without_a_card_as_before(tmp_path):
    cp, txn = make(tmp_path, ocppe=False, acs=1)

    async def go():
        await _plug(cp, txn)
        assert _offer(cp) is None  # acs=1: a card is needed
        assert cp.config.update({"frc": 2}, "api") == {}
        assert _offer(cp) == 16 and cp.tx is None and txn._events == []

    run(go())
