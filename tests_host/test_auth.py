"""Authorization decisions (firmware/authorization/service.py, auth.py): local list, cache,
online and offline rules; the decisions are loaded only while they are used (cp.auth, heap)
and let go when idle, deciding exactly as before once loaded again."""

import asyncio
import sys

import pytest
from txnkit import drain, events, make, run

import log
from compat import ticks_add, ticks_ms
from firmware.authorization.cache import AuthCache
from firmware.authorization.local_list import LocalList
from firmware.ocpp import router
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
    assert txn.auth.local.update(1, "Full", [{"idTag": "A", "idTagInfo": {"status": "Blocked"}}]) \
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


# ---- loaded only while used (heap): auth(cp) loads cp.auth, sweep() lets it go

# What the charger holds only while the authorization is used.
DECISIONS = ("firmware.authorization.auth", "firmware.authorization.cache",
             "firmware.authorization.local_list", "firmware.authorization.tagfile")
SIB = {"status": "Accepted", "parentIdTag": "P"}


@pytest.fixture
def fresh(monkeypatch):
    """The authorization's modules not loaded, as on a board that has just booted (the
    feature's own module too: imported again by attach's caller); sys.modules and the
    packages are put back afterwards, so the other tests keep the modules they imported.
    No CALL is in hand (other tests look actions up without answering them)."""
    from cpkit import modules_kept

    import firmware.authorization
    import firmware.ops

    monkeypatch.setattr(router, "LOADED", {})
    with modules_kept(firmware.authorization, firmware.ops):
        router.forget("firmware.authorization.service", "firmware.ops.authorize", *DECISIONS)
        yield


def authz():
    """The feature's module, as the charger imported it at boot."""
    from firmware.authorization import service

    return service


def loaded():
    return [m for m in DECISIONS if m in sys.modules]


def booted(tmp_path, **kw):
    """(cp, txn) right after attach: no decisions, none of their modules."""
    cp, txn = make(tmp_path, **kw)
    assert cp.auth is None and loaded() == []
    return cp, txn


def idle(cp):
    """The app's housekeeping a minute after the last use: True if cp.auth went."""
    return authz().sweep(cp, ticks_add(ticks_ms(), router.IDLE_MS), router.IDLE_MS)


def test_attach_loads_none_of_the_decisions(tmp_path, fresh):
    cp, txn = booted(tmp_path)
    assert "firmware.ops.authorize" not in sys.modules
    assert not idle(cp)  # nothing to let go
    a = authz().auth(cp)  # the first use loads them
    assert cp.auth is a and txn.auth is a and loaded() == list(DECISIONS)
    assert authz().auth(cp) is a


@pytest.mark.parametrize("where", ["local", "cache", "online"])
def test_a_card_is_authorized_with_the_decisions_loaded_on_demand(tmp_path, fresh, where):
    d = str(tmp_path)
    info = {"status": "Accepted", "parentIdTag": "P"}
    if where == "local":
        LocalList(d).update(1, "Full", [{"idTag": "A", "idTagInfo": info}])
    elif where == "cache":
        AuthCache(d).put("A", info)
    cp, txn = booted(tmp_path, online=where == "online")
    cp.session.cards = {"A": info}
    run(events(txn, "plugged", ("card", "A")))
    assert cp.tx is not None and cp.tx.id_tag == "A" and cp.tx.parent_id_tag == "P"
    assert cp.auth is not None and loaded() == list(DECISIONS)
    assert cp.session.sent("Authorize") == ([{"idTag": "A"}] if where == "online" else [])
    assert idle(cp) and cp.auth is None and loaded() == []
    # Offline now: what the card was is on flash (the cache learnt the online answer).
    cp.session.accepted.clear()
    assert txn.auth.known("A") == info
    assert run(txn.auth.authorize("U")) == {"status": "Invalid"}  # unknown, offline


@pytest.mark.parametrize("where", ["local", "cache"])
def test_after_the_idle_sweep_a_sibling_card_still_stops(tmp_path, fresh, where):
    d = str(tmp_path)
    if where == "local":
        LocalList(d).update(1, "Full", [{"idTag": "B", "idTagInfo": SIB}])
    else:
        AuthCache(d).put("B", SIB)
    cp, txn = booted(tmp_path)
    cp.session.cards = {"A": SIB, "C": {"status": "Accepted", "parentIdTag": "Q"}}
    run(events(txn, "plugged", ("card", "A")))
    tx = cp.tx
    assert tx is not None and tx.parent_id_tag == "P"
    svc = authz()
    assert not svc.sweep(cp, ticks_ms(), router.IDLE_MS)  # used a moment ago
    assert svc.sweep(cp, ticks_ms(), 0)  # a tight heap: at once
    assert cp.auth is None and loaded() == []
    run(events(txn, ("card", "C")))  # asked online: another parent
    assert cp.tx is tx
    assert idle(cp) and cp.auth is None
    cp.session.accepted.clear()  # offline: B's parent can come from flash only
    run(events(txn, ("card", "B")))
    assert cp.tx is None
    assert cp.session.sent("Authorize") == [{"idTag": "A"}, {"idTag": "C"}]
    cp.session.accepted.set()
    run(drain(txn))
    stop = cp.session.sent("StopTransaction")[0]
    assert stop["reason"] == "Local" and stop["idTag"] == "B"


def test_local_list_version_across_a_drop(tmp_path, fresh):
    cp, txn = booted(tmp_path)
    from firmware.ops.get_local_list_version import version
    from firmware.ops.send_local_list import update

    def send(ver, kind, tags):
        return update(cp, {"listVersion": ver, "updateType": kind, "localAuthorizationList": [
            {"idTag": t, "idTagInfo": SIB} for t in tags]})

    assert version(cp) == 0 and cp.auth is not None  # loaded to be asked
    assert idle(cp)
    assert send(7, "Full", ["A", "B"]) == "Accepted" and version(cp) == 7
    assert idle(cp) and loaded() == []
    assert version(cp) == 7 and len(cp.auth.local) == 2
    assert idle(cp)
    assert send(7, "Differential", ["C"]) == "VersionMismatch"
    assert idle(cp)
    assert send(8, "Differential", ["C"]) == "Accepted"
    assert idle(cp)
    assert version(cp) == 8 and txn.auth.known("C") == SIB
    # Disabled: -1 and NotSupported, without loading anything.
    assert idle(cp)
    cp.config.ocpp_set("LocalAuthListEnabled", "false")
    assert version(cp) == -1 and send(9, "Full", ["D"]) == "NotSupported"
    assert cp.auth is None and loaded() == []
    cp.config.ocpp_set("LocalAuthListEnabled", "true")
    assert version(cp) == 8


def test_config_changes_reach_the_loaded_decisions_and_the_next_ones(tmp_path, fresh):
    cp, txn = booted(tmp_path)
    a = txn.auth
    assert a.cache.enabled
    cp.config.ocpp_set("AuthorizationCacheEnabled", "false")
    assert not a.cache.enabled
    assert idle(cp)
    assert not txn.auth.cache.enabled
    cp.config.ocpp_set("AuthorizationCacheEnabled", "true")
    assert txn.auth.cache.enabled


def test_no_drop_while_an_authorize_awaits_its_answer(tmp_path, fresh):
    cp, txn = booted(tmp_path)
    cp.session.cards = {"A": SIB}
    gate = []
    call = cp.session.call

    async def slow(action, payload):
        while not gate:
            await asyncio.sleep(0.001)
        return await call(action, payload)

    cp.session.call = slow
    svc = authz()

    async def go():
        t = asyncio.create_task(txn.auth.authorize("A"))
        await asyncio.sleep(0.01)
        a = cp.auth
        assert a.busy == 1 and not t.done()
        far = ticks_add(ticks_ms(), 10 * router.IDLE_MS)
        assert not svc.sweep(cp, far, 0)  # the answer goes into this cache
        assert cp.auth is a and loaded() == list(DECISIONS)
        gate.append(1)
        info = await t
        assert a.busy == 0 and cp.auth is a
        return info

    assert run(go()) == SIB
    router.LOADED["ClearCache"] = ["clear_cache", None]  # a CALL in hand that asks for it
    assert svc.auth(cp) is cp.auth
    assert not idle(cp) and cp.auth is not None  # it may still use it
    del router.LOADED["ClearCache"]
    # Another CALL in hand (a certificate's, its chain checked on a tight heap) that never
    # asked for it does not keep it: the heap is free for that CALL.
    router.LOADED["CertificateSigned"] = ["certificate_signed", None]
    try:
        assert idle(cp) and loaded() == []
        # Nor when that CALL runs short of memory a second after its last use (a heap not
        # tight enough for the housekeeping to let it go at once): router.shed() asks.
        del router.LOADED["CertificateSigned"]
        authz().auth(cp)  # used with no CALL in hand
        router.LOADED["CertificateSigned"] = ["certificate_signed", None]
        assert not authz().sweep(cp, ticks_ms(), router.IDLE_MS)
        router.shed()
        assert cp.auth is None and loaded() == []
        router.LOADED["ClearCache"] = ["clear_cache", None]  # asked for by a CALL in hand
        a = authz().auth(cp)
        router.shed()
        assert cp.auth is a
    finally:
        del router.LOADED["CertificateSigned"]
        router.LOADED.pop("ClearCache", None)
    cp.session.accepted.clear()
    assert txn.auth.known("A") == SIB  # the answer reached the cache on flash


def test_the_cache_uses_reach_flash_when_it_is_let_go(tmp_path, fresh):
    """The cache keeps the uses of its idTags in RAM until its next write (they order its
    evictions): written when it is let go, so the next one evicts the same idTag."""
    cp, txn = booted(tmp_path)
    for t in ("A", "B", "C"):
        txn.auth.remember(t, {"status": "Accepted"})
    assert txn.auth.known("A") is not None  # A is now the most recently used
    use = cp.auth.cache._use
    assert idle(cp)
    again = AuthCache(cp.data_dir)
    assert again._use == use and again._used == {}
    assert txn.auth.cache._victims("X", None, 1) == {"B": True}  # the least recently used


def test_the_app_housekeeping_lets_it_go(tmp_path, fresh, monkeypatch):
    from txnkit import stop_task

    from firmware import app

    cp, txn = booted(tmp_path)
    a = txn.auth
    monkeypatch.setattr(router, "IDLE_MS", 0)  # as on a tight heap: at once

    async def go():
        a.busy = 1  # an Authorize.req awaiting its answer
        t = asyncio.create_task(app._housekeeping(cp))
        await asyncio.sleep(0.05)
        assert cp.auth is a
        a.busy = 0
        await asyncio.sleep(1.1)  # its next second
        await stop_task(t)

    run(go())
    assert cp.auth is None and loaded() == []


def test_decisions_load_and_go_on_micropython(tmp_path):
    code = """
import asyncio, sys, time
from firmware.config import Config
from firmware.authorization import service
d = %r
class Session:
    def __init__(self):
        self.accepted = asyncio.Event()
        self.accepted.set()
    async def call(self, action, payload):
        await asyncio.sleep_ms(1)
        return {"idTagInfo": {"status": "Accepted", "parentIdTag": "P"}}
class CP:
    pass
cp = CP()
cp.data_dir = d
cp.config = Config(d)
cp.session = Session()
service.attach(cp)
def mods():
    return len([m for m in service._MODULES if m in sys.modules])
print(cp.auth, mods())
info = asyncio.run(service.auth(cp).authorize("A"))
print(info["status"], info["parentIdTag"], cp.auth.busy, mods())
print(service.sweep(cp, time.ticks_ms(), 60000), service.sweep(cp, time.ticks_ms(), 0))
print(cp.auth, mods())
cp.session.accepted.clear()
print(service.auth(cp).known("A")["parentIdTag"], mods())
""" % str(tmp_path)
    from conftest import mp_run

    r = mp_run(code)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if not ln.startswith(("I ", "W ", "E "))]
    assert lines == ["None 0", "Accepted P 0 5", "False True", "None 0", "P 4"], r.stdout


# ---- no room to load the authorization again (review of the lazy loading) ----------------


class _Flaky:
    """json for firmware/authorization/tagfile.py whose loads() fails `n` times with a
    MemoryError: a heap too tight to read a table while the Auth is made again."""

    def __init__(self, n):
        self.n = n

    def loads(self, s):
        if self.n > 0:
            self.n -= 1
            raise MemoryError("memory allocation failed")
        import json

        return json.loads(s)

    def __getattr__(self, name):  # dumps, ...
        import json

        return getattr(json, name)


def _tight(n):
    # The next Auth is made with this tagfile (the modules are out of sys.modules: idle).
    import firmware.authorization.tagfile as tf

    tf.json = _Flaky(n)


def test_a_reload_short_of_memory_never_takes_the_cache_for_empty(tmp_path, fresh):
    """Before: the table read as empty, and the next entry replaced the whole cache file
    (a Blocked card forgotten). Now the load fails, nothing is written, and the next load
    with room finds every entry."""
    cp, txn = booted(tmp_path)
    for t in ("A", "B", "C"):
        txn.auth.remember(t, {"status": "Accepted"})
    txn.auth.remember("X", {"status": "Blocked"})
    assert idle(cp) and loaded() == []
    before = open(cp.data_dir + "/authcache.jsonl").read()
    _tight(1)
    with pytest.raises(MemoryError):
        txn.auth.remember("D", {"status": "Accepted"})
    assert cp.auth is None and open(cp.data_dir + "/authcache.jsonl").read() == before
    a = txn.auth  # room again
    assert a.known("X")["status"] == "Blocked" and len(a.cache) == 4


def test_a_reload_short_of_memory_never_takes_the_local_list_for_empty(tmp_path, fresh):
    """Before: GetLocalListVersion said 0 and the next Differential replaced the list with
    its own entries only. Now the version cannot be read (a CALLERROR), and the list stays."""
    from firmware.ops.get_local_list_version import version
    from firmware.ops.send_local_list import update

    cp, txn = booted(tmp_path, AuthorizationCacheEnabled="false")

    def send(ver, kind, tags, info=SIB):
        return update(cp, {"listVersion": ver, "updateType": kind, "localAuthorizationList": [
            {"idTag": t, "idTagInfo": info} for t in tags]})

    assert send(7, "Full", ["A", "B"]) == "Accepted"
    assert send(8, "Differential", ["BAD"], {"status": "Blocked"}) == "Accepted"
    assert idle(cp)
    _tight(1)
    with pytest.raises(MemoryError):
        version(cp)
    assert send(9, "Differential", ["C"]) == "Accepted"  # room again
    a = txn.auth
    assert a.local.version() == 9 and len(a.local) == 4
    assert a.known("BAD")["status"] == "Blocked"


def test_a_blocked_card_is_never_accepted_offline_for_want_of_room(tmp_path, fresh):
    from firmware.ops.send_local_list import update

    cp, txn = booted(tmp_path, online=False, AllowOfflineTxForUnknownId="true",
                     LocalAuthorizeOffline="true", AuthorizationCacheEnabled="false")
    assert update(cp, {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [
        {"idTag": "BAD", "idTagInfo": {"status": "Blocked"}}]}) == "Accepted"
    assert idle(cp)
    _tight(1)
    with pytest.raises(MemoryError):
        run(txn.auth.authorize("BAD"))
    assert run(txn.auth.authorize("BAD"))["status"] == "Blocked"


def test_start_transaction_conf_applies_without_room_for_the_authorization(tmp_path, fresh,
                                                                         monkeypatch):
    """StartTransaction.conf with an Invalid idTag: the transactionId, and the stop of
    StopTransactionOnInvalidId, do not depend on loading the authorization for its cache
    (before: the MemoryError came first and the rest was never applied)."""
    cp, txn = booted(tmp_path, StopTransactionOnInvalidId="true")
    cp.session.cards = {"A": {"status": "Accepted"}}
    run(events(txn, "plugged", ("card", "A")))
    tx = cp.tx
    assert tx is not None
    cp.session.cards = {"A": {"status": "Invalid"}}
    assert idle(cp) and cp.auth is None

    def no_room(cp):
        raise MemoryError("memory allocation failed")

    monkeypatch.setattr(authz(), "auth", no_room)
    oom = log.oom
    run(drain(txn))
    assert tx.transaction_id is not None and cp.tx is None
    assert log.oom > oom  # the cache entry not made is counted


def test_the_card_that_started_a_transaction_stops_it_without_the_authorization(
        tmp_path, fresh, monkeypatch):
    cp, txn = booted(tmp_path)
    run(events(txn, "plugged", ("card", "A")))
    assert cp.tx is not None and idle(cp)

    def no_room(cp):
        raise MemoryError("memory allocation failed")

    monkeypatch.setattr(authz(), "auth", no_room)
    run(events(txn, ("card", "A")))
    assert cp.tx is None
