"""A message module the router imported for a CALL is dropped again once no CALL of its
action came for a minute (firmware/ocpp/router.py done() and sweep()): handlers and
sys.modules entry gone, the next CALL of that action imports it anew and is answered the
same; one asked again meanwhile is not imported again; a module with state that outlives the
answer (RESIDENT = True) stays."""

import asyncio
import importlib
import json
import sys

import pytest
from conftest import check_ocpp
from cpkit import FakeCP

from compat import ticks_add, ticks_ms
from firmware.config import Config
from firmware.ocpp import router
from firmware.ocpp.rpc import RPC


class CP(FakeCP):
    def __init__(self, data_dir):
        self._declare()
        self.config = Config(str(data_dir))


def call(cp, action, payload, uid="u1"):
    sent = []

    async def send(text):
        sent.append(text)

    asyncio.run(RPC(send, cp).on_frame(json.dumps([2, uid, action, payload])))
    return json.loads(sent[-1])


_TABLES = (router.HANDLERS, router.AFTER, router.SCHEMAS, router.OFFERED, router.LOADED)


@pytest.fixture(autouse=True)
def _restore():
    """Each test drops and reloads message modules: afterwards the router, sys.modules and
    the firmware.ops package are as before, so other tests keep the module objects they
    imported (a reloaded trigger_message would keep its task in another module)."""
    saved = [dict(d) for d in _TABLES]
    mods = {k: v for k, v in sys.modules.items() if k.startswith("firmware.ops.")}
    pkg = importlib.import_module("firmware.ops")
    subs = {k: v for k, v in vars(pkg).items() if isinstance(v, type(sys))}
    yield  # (the helper modules: conftest._helpers_put_back)
    for d, old in zip(_TABLES, saved, strict=True):
        d.clear()
        d.update(old)
    for k in [k for k in sys.modules if k.startswith("firmware.ops.")]:
        del sys.modules[k]
    sys.modules.update(mods)
    for k in [k for k, v in vars(pkg).items() if isinstance(v, type(sys))]:
        delattr(pkg, k)
    for k, v in subs.items():
        setattr(pkg, k, v)


def _forget(name, action):
    """As if the firmware had just booted: the module not loaded, the action only offered."""
    router.LOADED.pop(action, None)
    router._drop(action, name)
    router.offer((name,))


def test_a_rare_request_leaves_nothing_loaded_and_is_answered_again(tmp_path):
    cp = CP(tmp_path)
    _forget("get_configuration", "GetConfiguration")
    for uid in ("g1", "g2"):
        frame = call(cp, "GetConfiguration", {"key": ["HeartbeatInterval"]}, uid)
        assert frame[:2] == [3, uid]
        check_ocpp("GetConfiguration", frame[2], response=True)
        assert frame[2]["configurationKey"][0]["key"] == "HeartbeatInterval"
        mod = sys.modules["firmware.ops.get_configuration"]
        router.sweep(ticks_add(ticks_ms(), router.IDLE_MS // 2))
        assert sys.modules["firmware.ops.get_configuration"] is mod  # used a moment ago
        router.sweep(ticks_add(ticks_ms(), router.IDLE_MS + 1000))
        assert "firmware.ops.get_configuration" not in sys.modules
        assert "GetConfiguration" not in router.HANDLERS
        assert getattr(sys.modules["firmware.ops"], "get_configuration", None) is None
        assert "GetConfiguration" not in router.LOADED


def test_on_a_tight_heap_an_answered_request_goes_at_the_next_sweep(tmp_path, monkeypatch):
    """Less than a quarter of the heap free (gc.mem_free on MicroPython; given here): the
    module of an answered request goes as soon as it is answered, not a minute later; with
    room, it stays for the minute."""
    import gc

    cp = CP(tmp_path)
    _forget("get_configuration", "GetConfiguration")
    used = 75_000
    monkeypatch.setattr(gc, "mem_alloc", lambda: used, raising=False)
    monkeypatch.setattr(router, "_HEAP", [used + 40_000])
    for free, stays in ((40_000, True), (24_000, False)):
        monkeypatch.setattr(gc, "mem_free", lambda f=free: f, raising=False)
        assert call(cp, "GetConfiguration", {"key": ["HeartbeatInterval"]})[0] == 3
        assert router.tight() is not stays
        # Tight: gone as soon as answered (done()), before the app's sweep of the second.
        assert ("firmware.ops.get_configuration" in sys.modules) is stays, free
        router.sweep(ticks_ms())
        assert ("firmware.ops.get_configuration" in sys.modules) is stays, free
    assert "GetConfiguration" not in router.HANDLERS and "GetConfiguration" not in router.LOADED


def test_an_error_answer_drops_the_module_too(tmp_path):
    cp = CP(tmp_path)
    _forget("change_configuration", "ChangeConfiguration")
    frame = call(cp, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "x"})
    assert frame[0] == 3 and frame[2]["status"] == "Rejected"
    frame = call(cp, "ChangeConfiguration", {"key": 5, "value": "x"})  # schema: CALLERROR
    assert frame[0] == 4
    router.sweep(ticks_add(ticks_ms(), router.IDLE_MS + 1000))
    assert "firmware.ops.change_configuration" not in sys.modules


def test_a_request_asked_again_within_the_minute_is_not_imported_again(tmp_path):
    cp = CP(tmp_path)
    _forget("get_configuration", "GetConfiguration")
    call(cp, "GetConfiguration", {"key": ["HeartbeatInterval"]}, "a1")
    mod = sys.modules["firmware.ops.get_configuration"]
    for uid in ("a2", "a3"):
        router.sweep(ticks_add(ticks_ms(), router.IDLE_MS // 2))
        assert call(cp, "GetConfiguration", {"key": ["HeartbeatInterval"]}, uid)[0] == 3
        assert sys.modules["firmware.ops.get_configuration"] is mod


def test_a_module_with_state_after_its_answer_stays(tmp_path):
    cp = CP(tmp_path)
    _forget("signed_update_firmware", "SignedUpdateFirmware")
    frame = call(cp, "SignedUpdateFirmware", {"requestId": 1})
    assert frame[0] == 4  # not what the schema asks: answered, the module loaded meanwhile
    router.sweep(ticks_add(ticks_ms(), router.IDLE_MS + 1000))
    assert "firmware.ops.signed_update_firmware" in sys.modules
    assert "SignedUpdateFirmware" in router.HANDLERS


def _peer(cp):
    # test_trigger_message imports firmware.ops.trigger_message itself: imported by the
    # test that runs first, before it forgets the module, so that the router, not that
    # import, loads the module the test watches (run alone it was the other way round).
    from test_trigger_message import Peer

    return Peer(cp, answers={"Heartbeat": {"currentTime": "2026-11-24T10:00:00Z"}})


def _trigger_cp(tmp_path):
    """A charge point whose RPC peer is test_trigger_message.Peer (made by _trigger)."""
    cp = CP(tmp_path)
    cp.session = type("S", (), {"rpc": None})()
    cp.station = None
    cp.charger = type("C", (), {"err": 0})()
    return cp


async def _trigger(cp, action):
    """`action` (TriggerMessage or ExtendedTriggerMessage) of a Heartbeat, from the peer."""
    peer = _peer(cp)
    peer.pending["t1"] = action
    await peer.rpc.on_frame(json.dumps([2, "t1", action, {"requestedMessage": "Heartbeat"}]))
    return peer


def test_a_task_begun_after_the_answer_outlives_its_dropped_module(tmp_path):
    """TriggerMessage sends its message from a task after the answer (router.spawn keeps
    the reference): the module may go at once on a tight heap, the message still goes out."""
    cp = _trigger_cp(tmp_path)
    _peer(cp)  # its module imported before the one under test is forgotten
    _forget("trigger_message", "TriggerMessage")

    async def go():
        peer = await _trigger(cp, "TriggerMessage")
        assert ("answer", "TriggerMessage", {"status": "Accepted"}) in peer.log
        mod = sys.modules["firmware.ops.trigger_message"]
        task = mod.task
        router.sweep(ticks_ms(), 0)  # as on a tight heap: dropped before the task ran
        assert "firmware.ops.trigger_message" not in sys.modules
        assert task in router._TASKS
        await asyncio.wait_for(task, 5)
        # Done, it is let go at the next sweep: a done task holds its coroutine's frame and,
        # through it, the dropped module (until the next spawn, before)
        assert task in router._TASKS
        router.sweep(ticks_ms(), 0)
        assert task not in router._TASKS
        return peer.calls("Heartbeat")

    assert len(asyncio.run(go())) == 1


def test_helpers_of_rare_requests_are_dropped_whenever_no_call_is_in_hand(tmp_path):
    """router.HELPERS (certificates, transfers) go at the next sweep once no CALL is in
    hand, not after a minute: the firmware download or the certificate check of one peak
    holds no heap at the next. The next user imports them anew and they work."""
    import x509

    from firmware.ops import firmware_status_notification  # noqa: F401 - a rare outgoing one
    from firmware.security import certs

    assert "der" in sys.modules and certs.files
    router.LOADED.clear()  # (other tests may have looked actions up without answering)
    router.LOADED["UnlockConnector"] = ["unlock_connector", None]  # an async handler runs
    router.sweep(ticks_ms())
    assert sys.modules["x509"] is x509 and "firmware.security.certs" in sys.modules
    router.LOADED["UnlockConnector"][1] = ticks_ms()  # answered
    router.sweep(ticks_ms())
    for name in ("x509", "der", "firmware.security.certs",
                 "firmware.ops.firmware_status_notification"):
        assert name not in sys.modules, name
    assert getattr(sys.modules["firmware.security"], "certs", None) is None
    assert "firmware.evse.charger" in sys.modules  # only the helpers
    from firmware.security import certs as again

    assert again is not certs and again.TYPES == certs.TYPES


def test_shed_drops_at_once_what_no_call_uses():
    """Short of memory (router.shed, called before a parse or an import is tried again):
    the module of a request answered a second ago goes, as do the helpers; a CALL in hand
    keeps its module and the helpers."""
    import x509  # noqa: F401 - loaded, as a certificate request leaves it

    router.LOADED.clear()
    mods = {}
    for action, name in (("GetConfiguration", "get_configuration"),
                         ("ClearCache", "clear_cache")):
        _forget(name, action)
        router.lookup(action)
        mods[action] = sys.modules["firmware.ops." + name]
    router.done("GetConfiguration", ticks_ms())  # answered; ClearCache still in hand
    router.shed()
    assert "firmware.ops.get_configuration" not in sys.modules
    assert "GetConfiguration" not in router.LOADED and "GetConfiguration" in router.OFFERED
    assert sys.modules["firmware.ops.clear_cache"] is mods["ClearCache"]
    assert "x509" in sys.modules  # a CALL in hand may use the helpers
    router.done("ClearCache", ticks_ms())
    router.shed()
    assert "firmware.ops.clear_cache" not in sys.modules and "x509" not in sys.modules


def test_room_before_a_long_frame_sheds_only_on_a_tight_heap(monkeypatch):
    """router.room (a websocket's room(), run before a long frame is read): shed() at once
    when the heap is tight, nothing otherwise."""
    sheds = []
    monkeypatch.setattr(router, "shed", lambda: sheds.append(1))
    for tight in (False, True):
        monkeypatch.setattr(router, "tight", lambda t=tight: t)
        router.room()
    assert sheds == [1]


def test_roomy_tries_once_more_after_shedding_and_then_gives_up(monkeypatch):
    sheds = []
    monkeypatch.setattr(router, "shed", lambda: sheds.append(1))
    calls = []

    def once_short(x):
        calls.append(x)
        if len(calls) == 1:
            raise MemoryError
        return x * 2

    assert router.roomy(once_short, 21) == 42 and calls == [21, 21] and sheds == [1]

    def always_short():
        raise MemoryError

    with pytest.raises(MemoryError):
        router.roomy(always_short)
    assert sheds == [1, 1]


def test_a_call_of_a_loaded_action_is_in_hand_again_until_answered():
    """A second CALL of an action whose module is still loaded is in hand as the first
    was: sweep and shed neither drop its module (nor its after-handler) meanwhile."""
    router.LOADED.clear()
    _forget("get_configuration", "GetConfiguration")
    router.lookup("GetConfiguration")
    router.done("GetConfiguration", ticks_ms())
    router.lookup("GetConfiguration")  # asked again within the minute
    router.shed()
    assert "firmware.ops.get_configuration" in sys.modules
    assert "GetConfiguration" in router.HANDLERS
    router.done("GetConfiguration", ticks_ms())
    router.shed()
    assert "firmware.ops.get_configuration" not in sys.modules


def test_on_a_tight_heap_an_answer_puts_idle_dormant_features_back_to_sleep(tmp_path,
                                                                            monkeypatch):
    """A dormant feature a request woke (firmware/app.py cp.rest) goes as soon as any CALL is
    answered on a tight heap, not at the app's next second: the central system's next
    request may follow within milliseconds."""
    rested = []
    cp = CP(tmp_path)
    cp.rest_all = lambda: rested.append(1)
    _forget("get_configuration", "GetConfiguration")
    for awake, tight, want in (([], True, 0), (["firmware.reservation"], False, 0),
                               (["firmware.reservation"], True, 1)):
        cp.awake = awake
        rested.clear()
        monkeypatch.setattr(router, "tight", lambda t=tight: t)
        assert call(cp, "GetConfiguration", {"key": ["HeartbeatInterval"]})[0] == 3
        assert len(rested) == want, (awake, tight)


def test_on_a_tight_heap_an_answer_lets_go_what_the_features_hold_idle(monkeypatch):
    """done() of a CALL on a tight heap runs the features' SHED hooks as shed() does (the
    authorization a SendLocalList loaded goes before the central system's next request,
    which may come before the app's next sweep); not on a roomy heap."""
    calls = []
    monkeypatch.setattr(router, "SHED", {"probe": lambda: calls.append(1)})
    _forget("get_configuration", "GetConfiguration")
    for tight, want in ((False, []), (True, [1])):
        monkeypatch.setattr(router, "tight", lambda t=tight: t)
        router.lookup("GetConfiguration")
        calls.clear()
        assert router.done("GetConfiguration", ticks_ms()) is tight
        assert calls == want, tight
    assert "firmware.ops.get_configuration" not in sys.modules  # the tight one dropped it


def test_on_a_tight_heap_a_call_first_lets_go_what_the_last_ones_left(monkeypatch):
    """lookup() on a tight heap: the modules of answered CALLs, the helpers, the ended tasks
    they spawned and what the features hold idle go before this CALL's module is imported
    (a task that ended after its request's done() held that request's module)."""
    import asyncio

    calls = []
    monkeypatch.setattr(router, "SHED", {"probe": lambda: calls.append(1)})
    _forget("get_configuration", "GetConfiguration")
    _forget("clear_cache", "ClearCache")
    monkeypatch.setattr(router, "tight", lambda: False)
    router.lookup("GetConfiguration")
    router.done("GetConfiguration", ticks_ms())

    async def ended():
        return None

    async def spawn_one():
        t = router.spawn(ended())
        await t
        return t

    task = asyncio.run(spawn_one())
    assert task in router._TASKS and calls == []
    monkeypatch.setattr(router, "tight", lambda: True)
    router.lookup("ClearCache")
    assert calls == [1] and task not in router._TASKS
    assert "firmware.ops.get_configuration" not in sys.modules
    assert "ClearCache" in router.HANDLERS  # this CALL's own, imported after
    router.done("ClearCache", ticks_ms())


def test_trigger_message_used_by_extended_trigger_message_goes_again(tmp_path):
    """ExtendedTriggerMessage sends the shared messages with TriggerMessage's module, loaded
    through the router (lookup/done): swept again like any message module, not kept for good
    by an import."""
    cp = _trigger_cp(tmp_path)
    _forget("trigger_message", "TriggerMessage")
    _forget("extended_trigger_message", "ExtendedTriggerMessage")

    async def go():
        peer = await _trigger(cp, "ExtendedTriggerMessage")
        await asyncio.wait_for(sys.modules["firmware.ops.extended_trigger_message"].task, 5)
        return peer.calls("Heartbeat")

    assert len(asyncio.run(go())) == 1
    assert router.LOADED["TriggerMessage"][1] is not None  # answered: not in hand
    router.sweep(ticks_add(ticks_ms(), router.IDLE_MS + 1000))
    assert "firmware.ops.trigger_message" not in sys.modules
    assert "firmware.ops.extended_trigger_message" not in sys.modules


def test_the_specs_of_requests_are_loaded_for_a_look_up_and_let_go_at_once():
    """request_specs.py (the specs of the 26 requests a central system sends) is loaded by
    validate.request() for the look-up and let go before the check: a charger at rest, and
    a CALL's handler, hold none of it; loaded anew, it checks the same."""
    from firmware.ocpp import validate
    from firmware.ocpp.router import OCPPError

    validate.request("Reset", {"type": "Hard"})
    assert "firmware.ocpp.request_specs" not in sys.modules
    assert getattr(sys.modules["firmware.ocpp"], "request_specs", None) is None
    with pytest.raises(OCPPError) as e:
        validate.request("Reset", {"type": "Cold"})
    assert e.value.code == "PropertyConstraintViolation"
    assert "firmware.ocpp.request_specs" not in sys.modules


def test_lend_imports_a_module_for_one_use():
    """compat.lend (the opening of a websocket, the requests' specs, the configuration's
    rules): the module works for the caller, who alone holds it: it is in neither
    sys.modules nor its package, and each lend imports it anew."""
    import compat

    first = compat.lend("firmware.ocpp.request_specs")
    assert dict(first.REQUEST)["Reset"] == "type!:<Hard|Soft>"
    assert "firmware.ocpp.request_specs" not in sys.modules
    assert getattr(sys.modules["firmware.ocpp"], "request_specs", None) is None
    assert compat.lend("firmware.ocpp.request_specs") is not first
    opening = compat.lend("wsopen")  # RFC 6455's example of the accept key
    assert opening._accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert "wsopen" not in sys.modules


def test_the_specs_of_requests_are_lent_again_after_a_shed_when_memory_is_short(monkeypatch):
    """A CALL that comes while the heap is short: the look-up's import is tried again once
    router.shed() made room (router.roomy), as the handler's own import is."""
    from firmware.ocpp import validate

    tries = []
    sheds = []

    def short_once(name):
        tries.append(name)
        if len(tries) == 1:
            raise MemoryError
        return real(name)

    real = validate.lend
    monkeypatch.setattr(validate, "lend", short_once)
    monkeypatch.setattr(router, "shed", lambda: sheds.append(1))
    validate.request("Reset", {"type": "Soft"})
    assert len(tries) == 2 and sheds == [1]
