"""ClearCache through the real RPC path: the authorization cache is emptied (on flash too)
and nothing else: the transaction journal, the local list and the configuration survive."""

from test_status_notification import CP, rpc_call, run

from firmware.authcache import AuthCache
from firmware.journal import Journal
from firmware.locallist import LocalList

INFO = {"status": "Accepted"}


def clear(cp):
    return run(rpc_call(cp, "ClearCache", {}))["status"]


def test_clears_the_cache_and_nothing_else(tmp_path):
    d = str(tmp_path)
    cp = CP(tmp_path)
    cp.txn.cache.put("CARD1", INFO, 0)
    cp.txn.cache.put("CARD2", INFO, 0)
    local = LocalList(d)
    assert local.update(3, "Full", [{"idTag": "LOCAL1", "idTagInfo": INFO}]) == "Accepted"
    j = Journal(d)
    j.start(1, "CARD1", 100, 1800000000)
    assert cp.config.ocpp_set("HeartbeatInterval", "77") == "Accepted"
    cp.station.change(1, "Inoperative")

    assert clear(cp) == "Accepted"

    assert len(cp.txn.cache) == 0 and len(AuthCache(d)) == 0
    again = LocalList(d)
    assert again.version() == 3 and again.get("LOCAL1", 0)["status"] == "Accepted"
    assert len(Journal(d)) == 1  # the StartTransaction is still waiting for delivery
    fresh = CP(tmp_path)
    assert fresh.config.get("HeartbeatInterval") == 77
    assert not fresh.station.available(1)


def test_rejected_when_the_cache_is_disabled(tmp_path):
    cp = CP(tmp_path)
    cp.txn.cache.put("CARD1", INFO, 0)
    assert cp.config.ocpp_set("AuthorizationCacheEnabled", "false") == "Accepted"
    assert clear(cp) == "Rejected"
    assert len(AuthCache(str(tmp_path))) == 1


def test_rejected_without_a_cache(tmp_path):
    assert clear(CP(tmp_path, txn=False)) == "Rejected"


def test_shared_cache_of_the_auth_module(tmp_path):
    cp = CP(tmp_path, txn=False)
    cp.authcache = AuthCache(str(tmp_path))
    cp.authcache.put("CARD1", INFO, 0)
    assert clear(cp) == "Accepted" and len(cp.authcache) == 0
