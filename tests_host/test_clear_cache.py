"""ClearCache through the real RPC path: the authorization cache is emptied (on flash too)
and nothing else: the transaction journal, the local list and the configuration survive."""

from test_status_notification import CP, rpc_call, run

from firmware.authorization import service as authz
from firmware.authorization.cache import AuthCache
from firmware.authorization.local_list import LocalList
from firmware.ops import change_availability
from firmware.transactions.journal import Journal

INFO = {"status": "Accepted"}


def clear(cp):
    return run(rpc_call(cp, "ClearCache", {}))["status"]


def test_clears_the_cache_and_nothing_else(tmp_path):
    d = str(tmp_path)
    cp = CP(tmp_path)
    authz.auth(cp).cache.put("CARD1", INFO, 0)
    authz.auth(cp).cache.put("CARD2", INFO, 0)
    local = LocalList(d)
    assert local.update(3, "Full", [{"idTag": "LOCAL1", "idTagInfo": INFO}]) == "Accepted"
    j = Journal(d)
    j.start(1, "CARD1", 100, 1800000000)
    assert cp.config.ocpp_set("HeartbeatInterval", "77") == "Accepted"
    change_availability.change(cp.station, 1, "Inoperative")

    assert clear(cp) == "Accepted"

    assert len(authz.auth(cp).cache) == 0 and len(AuthCache(d)) == 0
    again = LocalList(d)
    assert again.version() == 3 and again.get("LOCAL1", 0)["status"] == "Accepted"
    assert len(Journal(d)) == 1  # the StartTransaction is still waiting for delivery
    fresh = CP(tmp_path)
    assert fresh.config.get("HeartbeatInterval") == 77
    assert not fresh.station.available(1)


def test_rejected_when_the_cache_is_disabled(tmp_path):
    cp = CP(tmp_path)
    authz.auth(cp).cache.put("CARD1", INFO, 0)
    assert cp.config.ocpp_set("AuthorizationCacheEnabled", "false") == "Accepted"
    assert clear(cp) == "Rejected"
    assert len(AuthCache(str(tmp_path))) == 1


def test_a_cache_not_loaded_is_loaded_to_be_cleared(tmp_path):
    # The authorization is loaded only while it is used: right after attach there is no
    # cp.auth, and ClearCache loads the cache from flash to empty it.
    d = str(tmp_path)
    AuthCache(d).put("CARD1", INFO, 0)  # learnt before (a boot ago)
    cp = CP(tmp_path)
    assert cp.auth is None
    assert clear(cp) == "Accepted"
    assert cp.auth is not None and len(cp.auth.cache) == 0 and len(AuthCache(d)) == 0


def test_rejected_while_disabled_without_loading_the_cache(tmp_path):
    d = str(tmp_path)
    AuthCache(d).put("CARD1", INFO, 0)
    cp = CP(tmp_path, AuthorizationCacheEnabled="false")
    assert clear(cp) == "Rejected"
    assert cp.auth is None and len(AuthCache(d)) == 1


def test_the_authorization_feature_owns_the_cache_without_transactions(tmp_path):
    cp = CP(tmp_path, txn=False)
    authz.attach(cp)
    authz.auth(cp).cache.put("CARD1", INFO, 0)
    assert clear(cp) == "Accepted" and len(authz.auth(cp).cache) == 0
