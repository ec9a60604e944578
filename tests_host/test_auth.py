"""Authorization decisions (firmware/authorization/service.py): local list, cache, online and
offline rules."""

from txnkit import make, run

from firmware.ocpp.rpc import CallError


def test_online_asks_the_central_system_and_caches_the_answer(tmp_path):
    cp, txn = make(tmp_path)
    cp.session.cards = {"A": {"status": "Blocked"}}
    assert run(txn.auth.authorize("A")) == {"status": "Blocked"}
    assert cp.session.sent("Authorize") == [{"idTag": "A"}]
    assert txn.auth.cache.get("A", 0)["status"] == "Blocked"


def test_cache_disabled_learns_nothing(tmp_path):
    cp, txn = make(tmp_path, AuthorizationCacheEnabled="false")
    run(txn.auth.authorize("A"))
    assert txn.auth.known("A") is None


def test_local_pre_authorize_skips_the_request(tmp_path):
    cp, txn = make(tmp_path, LocalPreAuthorize="true")
    txn.auth.remember("A", {"status": "Accepted"})
    assert run(txn.auth.authorize("A"))["status"] == "Accepted"
    assert cp.session.calls == []
    # Not pre-authorized when the cache says otherwise: ask.
    txn.auth.remember("B", {"status": "Blocked"})
    run(txn.auth.authorize("B"))
    assert cp.session.sent("Authorize") == [{"idTag": "B"}]


def test_offline_uses_local_list_over_cache(tmp_path):
    cp, txn = make(tmp_path, online=False)
    txn.auth.remember("A", {"status": "Accepted"})
    assert cp.auth.local.update(1, "Full", [{"idTag": "A", "idTagInfo": {"status": "Blocked"}}]) \
        == "Accepted"
    assert run(txn.auth.authorize("A"))["status"] == "Blocked"
    assert cp.session.calls == []


def test_offline_rules(tmp_path):
    cp, txn = make(tmp_path, online=False)
    txn.auth.remember("A", {"status": "Accepted"})
    assert run(txn.auth.authorize("A"))["status"] == "Accepted"  # LocalAuthorizeOffline
    assert run(txn.auth.authorize("U"))["status"] == "Invalid"  # unknown
    cp.config.ocpp_set("AllowOfflineTxForUnknownId", "true")
    assert run(txn.auth.authorize("U"))["status"] == "Accepted"
    cp.config.ocpp_set("LocalAuthorizeOffline", "false")
    assert run(txn.auth.authorize("A"))["status"] == "Accepted"  # as an unknown one
    cp.config.ocpp_set("AllowOfflineTxForUnknownId", "false")
    assert run(txn.auth.authorize("A"))["status"] == "Invalid"
    txn.auth.remember("B", {"status": "Blocked"})
    assert run(txn.auth.authorize("B"))["status"] == "Blocked"


def test_error_or_timeout_decides_offline(tmp_path):
    cp, txn = make(tmp_path, AllowOfflineTxForUnknownId="true")

    def broken(action, payload):
        raise CallError("InternalError", "down")

    cp.session.handler = broken
    assert run(txn.auth.authorize("U"))["status"] == "Accepted"
    cp.session.handler = lambda a, p: None  # timeout
    assert run(txn.auth.authorize("U"))["status"] == "Accepted"


def test_who_may_stop(tmp_path):
    from firmware.transactions.service import Tx

    cp, txn = make(tmp_path)
    tx = Tx(1, "A", 1, 0, 0)
    cp.session.cards = {"B": {"status": "Accepted", "parentIdTag": "P"},
                        "C": {"status": "Accepted", "parentIdTag": "Q"}}
    assert run(txn.auth.may_stop(tx, "A"))
    assert not run(txn.auth.may_stop(tx, "B"))  # A has no known parent
    tx.parent_id_tag = "P"
    assert run(txn.auth.may_stop(tx, "B"))
    assert not run(txn.auth.may_stop(tx, "C"))
