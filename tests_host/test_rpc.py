"""The OCPP-J RPC layer (firmware/ocpp/rpc.py) on CPython against an in-memory peer, plus a
smoke run on the MicroPython VM. The peer is the list of frames the RPC sends; end-to-end runs
against a real central system live in the session tests."""

import asyncio
import json

import pytest
from conftest import check_ocpp

import log
from firmware.ocpp import router
from firmware.ocpp.router import OCPPError
from firmware.ocpp.rpc import RPC, BadResponse, CallError, CallTimeout, ConnectionLost

LOG = []
log.add_sink(lambda lv, tag, text: LOG.append((lv, tag, text)))

SIGNED_UPDATE = {"requestId": 1, "firmware": {
    "location": "ftp://x/f", "retrieveDateTime": "2026-01-01T00:00:00Z",
    "signingCertificate": "-----BEGIN CERTIFICATE-----", "signature": "AAAA"}}


class Peer:
    """Collects what the RPC sends; checks every CALLRESULT/CALLERROR is well-formed."""

    def __init__(self):
        self.sent = []

    async def send(self, text):
        assert isinstance(text, str)
        self.sent.append(text)

    def frames(self):
        return [json.loads(t) for t in self.sent]

    def last(self):
        return json.loads(self.sent[-1])

    def check(self):
        for f in self.frames():
            assert isinstance(f, list)
            assert f[0] in (2, 3, 4)
            assert isinstance(f[1], str) and 0 < len(f[1]) <= 36
            if f[0] == 3:
                assert len(f) == 3 and isinstance(f[2], dict)
            elif f[0] == 4:
                assert len(f) == 5
                assert f[2] in router.CODES
                assert isinstance(f[3], str)
                assert f[4] == {} or isinstance(f[4], dict)


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.check()


@pytest.fixture(autouse=True)
def routes():
    """Only this module's handlers, restored afterwards (other modules register theirs).
    LOADED too: router.shed() (a MemoryError's retry) drops the handlers of the actions
    listed there, which would take this module's Reset if an earlier test loaded the real
    one in the same worker."""
    tables = (router.HANDLERS, router.AFTER, router.SCHEMAS, router.LOADED)
    saved = [dict(d) for d in tables]
    for d in tables:
        d.clear()
    LOG.clear()

    @router.on("Reset")
    def reset(cp, payload):
        cp.append(("Reset", payload["type"]))
        return {"status": "Accepted"}

    @router.on("ChangeAvailability")
    def change_availability(cp, payload):
        if payload["connectorId"] == 99:
            raise OCPPError(router.SECURITY_ERROR, "not allowed")
        if payload["connectorId"] == 98:
            raise OCPPError(router.GENERIC_ERROR, "busy", {"retry": 5})
        if payload["connectorId"] == 97:
            return None  # a handler bug
        return {"status": {}["boom"]}  # KeyError: a handler bug

    yield
    for d, s in zip(tables, saved, strict=True):
        d.clear()
        d.update(s)


def run(coro):
    return asyncio.run(coro)


async def assert_still_answers(rpc, peer, uid="ok-1"):
    await rpc.on_frame(json.dumps([2, uid, "Reset", {"type": "Soft"}]))
    assert peer.last() == [3, uid, {"status": "Accepted"}]
    check_ocpp("Reset", peer.last()[2], response=True)


LONG_ID = "x" * 37
MALFORMED = [
    # (frame, id answered, code)
    ("not json", "-1", "FormationViolation"),
    (b"[2,\"a\",\"Reset\",{\"type\":\"\xff\"}]", "-1", "FormationViolation"),
    ('{"a": 1}', "-1", "ProtocolError"),
    ("[]", "-1", "ProtocolError"),
    ('[7, "m1", "Reset", {}]', "m1", "ProtocolError"),
    ('["2", "m1", "Reset", {}]', "m1", "ProtocolError"),
    ('[2, 17, "Reset", {}]', "-1", "ProtocolError"),
    ('[2, "", "Reset", {}]', "-1", "ProtocolError"),
    ('[2, "%s", "Reset", {}]' % LONG_ID, "-1", "ProtocolError"),
    ('[2, "m1", "Reset"]', "m1", "ProtocolError"),
    ('[2, "m1", "Reset", {"type": "Soft"}, {}]', "m1", "FormationViolation"),
    ('[2, "m1", 5, {}]', "m1", "FormationViolation"),
    ('[2, "m1", "NoSuchAction", {}]', "m1", "NotImplemented"),
    ('[2, "m1", "SignedUpdateFirmware", %s]' % json.dumps(SIGNED_UPDATE), "m1",
     "NotSupported"),
    ('[2, "m1", "Reset", []]', "m1", "FormationViolation"),
    ('[2, "m1", "Reset", {}]', "m1", "OccurenceConstraintViolation"),
    ('[2, "m1", "Reset", {"type": 5}]', "m1", "TypeConstraintViolation"),
    ('[2, "m1", "Reset", {"type": "Hardest"}]', "m1", "PropertyConstraintViolation"),
    ('[2, "m1", "Reset", {"type": "Hard", "delay": 1}]', "m1", "FormationViolation"),
    ('[2, "m1", "ChangeAvailability", {"connectorId": 99, "type": "Operative"}]', "m1",
     "SecurityError"),
    ('[2, "m1", "ChangeAvailability", {"connectorId": 98, "type": "Operative"}]', "m1",
     "GenericError"),
    ('[2, "m1", "ChangeAvailability", {"connectorId": 1, "type": "Operative"}]', "m1",
     "InternalError"),
    ('[2, "m1", "ChangeAvailability", {"connectorId": 97, "type": "Operative"}]', "m1",
     "InternalError"),
]


@pytest.mark.parametrize("frame,uid,code", MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_bad_call_gets_its_error_and_the_rpc_still_answers(peer, frame, uid, code):
    cp = []

    async def main():
        rpc = RPC(peer.send, cp)
        await rpc.on_frame(frame)
        assert len(peer.sent) == 1
        f = peer.last()
        assert f[0] == 4 and f[1] == uid and f[2] == code
        assert isinstance(f[4], dict)
        assert rpc.closed is False
        await assert_still_answers(rpc, peer)

    run(main())
    assert cp == [("Reset", "Soft")]  # the bad CALL never reached a handler's side effect


def test_malformed_frames_cover_every_ocpp_j_error_code():
    assert {c for _, _, c in MALFORMED} == set(router.CODES)


def test_handler_exception_is_internal_error_with_a_log_line(peer):
    async def main():
        rpc = RPC(peer.send, [])
        frame = [2, "e1", "ChangeAvailability", {"connectorId": 1, "type": "Operative"}]
        await rpc.on_frame(json.dumps(frame))
        assert peer.last() == [4, "e1", "InternalError", "internal error in ChangeAvailability",
                               {}]

    run(main())
    errors = [e for e in LOG if e[0] == "E"]
    assert len(errors) == 1 and "KeyError" in errors[0][2]
    assert log.last_error.startswith("rpc: ChangeAvailability handler failed")


def test_handler_ocpp_error_keeps_code_description_and_details(peer):
    async def main():
        rpc = RPC(peer.send, [])
        frame = [2, "g1", "ChangeAvailability", {"connectorId": 98, "type": "Operative"}]
        await rpc.on_frame(json.dumps(frame))
        assert peer.last() == [4, "g1", "GenericError", "busy", {"retry": 5}]

    run(main())


def test_after_handler_runs_once_the_answer_is_sent_and_may_start_tasks(peer):
    seen = []

    async def main():
        rpc = RPC(peer.send, [], id_source=lambda: "hb-1")

        @router.after("Reset")
        def reset_after(cp, payload, response):
            seen.append((list(peer.sent), cp, payload, response))
            asyncio.create_task(rpc.call("Heartbeat", {}))  # e.g. a StatusNotification

        await rpc.on_frame('[2, "r1", "Reset", {"type": "Hard"}]')
        assert len(seen) == 1
        sent_before, cp, payload, response = seen[0]
        assert [json.loads(t) for t in sent_before] == [[3, "r1", {"status": "Accepted"}]]
        assert cp == [("Reset", "Hard")]  # the handler ran first, same cp object
        assert payload == {"type": "Hard"} and response == {"status": "Accepted"}
        await asyncio.sleep(0)  # the task sends its CALL after the answer
        assert peer.last() == [2, "hb-1", "Heartbeat", {}]
        rpc.close()

    run(main())


def test_after_handler_not_run_when_the_call_is_refused(peer):
    ran = []
    router.after("Reset")(lambda cp, p, r: ran.append(1))

    async def main():
        rpc = RPC(peer.send, [])
        await rpc.on_frame('[2, "r1", "Reset", {"type": "Later"}]')
        assert peer.last()[2] == "PropertyConstraintViolation"

    run(main())
    assert ran == []


def test_failing_after_handler_is_logged_and_harmless(peer):
    def bad(cp, p, r):
        raise ValueError("after boom")

    router.after("Reset")(bad)

    async def main():
        rpc = RPC(peer.send, [])
        await rpc.on_frame('[2, "r1", "Reset", {"type": "Soft"}]')
        assert peer.last() == [3, "r1", {"status": "Accepted"}]
        await assert_still_answers(rpc, peer)

    run(main())
    assert any(lv == "E" and "after boom" in text for lv, _, text in LOG)


def test_call_returns_the_result_payload(peer):
    async def main():
        rpc = RPC(peer.send, None, id_source=lambda: "b1")
        task = asyncio.create_task(rpc.call("BootNotification", {"chargePointVendor": "V",
                                                                 "chargePointModel": "M"}))
        await asyncio.sleep(0)
        assert peer.last() == [2, "b1", "BootNotification",
                               {"chargePointVendor": "V", "chargePointModel": "M"}]
        conf = {"status": "Accepted", "currentTime": "2026-11-24T10:00:00Z", "interval": 300}
        await rpc.on_frame(json.dumps([3, "b1", conf]))
        assert await task == conf

    run(main())


def test_only_one_outgoing_call_waits_at_a_time(peer):
    ids = iter(["c1", "c2", "c3"])

    async def main():
        rpc = RPC(peer.send, None, id_source=lambda: next(ids))
        t1 = asyncio.create_task(rpc.call("Heartbeat", {}))
        t2 = asyncio.create_task(rpc.call("Authorize", {"idTag": "CARD1"}))
        for _ in range(5):
            await asyncio.sleep(0)
        assert [f[1] for f in peer.frames()] == ["c1"]  # the second waits for the first
        await rpc.on_frame('[3, "c1", {"currentTime": "2026-11-24T10:00:00Z"}]')
        for _ in range(5):
            await asyncio.sleep(0)
        assert [f[1] for f in peer.frames()] == ["c1", "c2"]
        assert peer.last() == [2, "c2", "Authorize", {"idTag": "CARD1"}]
        await rpc.on_frame('[3, "c2", {"idTagInfo": {"status": "Blocked"}}]')
        assert await t1 == {"currentTime": "2026-11-24T10:00:00Z"}
        assert await t2 == {"idTagInfo": {"status": "Blocked"}}

    run(main())


def test_incoming_calls_are_answered_while_our_call_waits(peer):
    async def main():
        rpc = RPC(peer.send, [], id_source=lambda: "h1")
        task = asyncio.create_task(rpc.call("Heartbeat", {}))
        await asyncio.sleep(0)
        await assert_still_answers(rpc, peer, uid="in-1")
        await rpc.on_frame('[3, "h1", {"currentTime": "2026-11-24T10:00:00Z"}]')
        assert (await task)["currentTime"] == "2026-11-24T10:00:00Z"

    run(main())


def test_timeout_raises_and_the_late_answer_is_dropped_with_a_log_line(peer):
    ids = iter(["t1", "t2"])

    async def main():
        rpc = RPC(peer.send, None, timeout_ms=20, id_source=lambda: next(ids))
        with pytest.raises(CallTimeout):
            await rpc.call("Heartbeat", {})
        LOG.clear()
        await rpc.on_frame('[3, "t1", {"currentTime": "2026-11-24T10:00:00Z"}]')
        assert [(lv, tag) for lv, tag, _ in LOG] == [("W", "rpc")]
        assert "t1" in LOG[0][2]
        assert len(peer.sent) == 1  # nothing answered to a stray CALLRESULT
        # The next call is not confused by the late answer.
        task = asyncio.create_task(rpc.call("Heartbeat", {}, timeout_ms=5000))
        await asyncio.sleep(0)
        await rpc.on_frame('[3, "t2", {"currentTime": "2026-11-24T11:00:00Z"}]')
        assert (await task)["currentTime"] == "2026-11-24T11:00:00Z"

    run(main())


def test_unknown_ids_and_stray_answers_are_dropped(peer):
    async def main():
        rpc = RPC(peer.send, None, id_source=lambda: "u1")
        task = asyncio.create_task(rpc.call("Heartbeat", {}))
        await asyncio.sleep(0)
        for stray in (
            '[3, "nope", {"currentTime": "2026-11-24T10:00:00Z"}]',
            '[4, "nope", "GenericError", "", {}]',
            '[3, 5, {}]',
            '[4]',
        ):
            await rpc.on_frame(stray)
        assert len(peer.sent) == 1 and not task.done()
        assert sum(1 for lv, _, _ in LOG if lv == "W") == 4
        LOG.clear()
        await rpc.on_frame('[3, "u1", {"currentTime": "2026-11-24T10:00:00Z"}]')
        # A duplicate answer, even before the caller resumed, is stray too.
        await rpc.on_frame('[3, "u1", {"currentTime": "2030-01-01T00:00:00Z"}]')
        assert await task == {"currentTime": "2026-11-24T10:00:00Z"}
        assert [lv for lv, _, _ in LOG] == ["W"]
        assert len(peer.sent) == 1

    run(main())


def test_callerror_raises_call_error(peer):
    ids = iter(["e1", "e2", "e3"])

    async def main():
        rpc = RPC(peer.send, None, id_source=lambda: next(ids))

        async def answered(frame):
            task = asyncio.create_task(rpc.call("Authorize", {"idTag": "A"}))
            await asyncio.sleep(0)
            await rpc.on_frame(json.dumps(frame))
            with pytest.raises(CallError) as e:
                await task
            return e.value

        e = await answered([4, "e1", "SecurityError", "not now", {"why": "pending"}])
        assert (e.code, e.description, e.details) == ("SecurityError", "not now",
                                                      {"why": "pending"})
        assert not isinstance(e, BadResponse)
        # The corrected spelling from a newer peer maps to the 1.6 one; missing details -> {}.
        e = await answered([4, "e2", "OccurrenceConstraintViolation", "missing idTag"])
        assert (e.code, e.details) == ("OccurenceConstraintViolation", {})
        e = await answered([4, "e3", "MadeUpCode", 5, []])
        assert (e.code, e.description, e.details) == ("GenericError", "", {})

    run(main())


def test_invalid_result_payload_raises_bad_response(peer):
    ids = iter(["v1", "v2", "v3"])

    async def main():
        rpc = RPC(peer.send, None, id_source=lambda: next(ids))

        async def answered(frame):
            task = asyncio.create_task(
                rpc.call("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0,
                                              "timestamp": "2026-11-24T10:00:00Z"}))
            await asyncio.sleep(0)
            await rpc.on_frame(json.dumps(frame))
            with pytest.raises(BadResponse) as e:
                await task
            return e.value.code

        assert await answered([3, "v1", {"idTagInfo": {"status": "Accepted"}}]) == (
            "OccurenceConstraintViolation")
        assert await answered([3, "v2", {"idTagInfo": {"status": "Accepted"},
                                         "transactionId": "7"}]) == "TypeConstraintViolation"
        assert await answered([3, "v3", {}, 1]) == "FormationViolation"

    run(main())


def test_close_fails_the_pending_call_and_later_ones(peer):
    async def main():
        rpc = RPC(peer.send, None, id_source=lambda: "k1")
        t1 = asyncio.create_task(rpc.call("Heartbeat", {}))
        t2 = asyncio.create_task(rpc.call("Heartbeat", {}))  # queued behind t1
        await asyncio.sleep(0)
        rpc.close()
        for t in (t1, t2):
            with pytest.raises(ConnectionLost):
                await t
        with pytest.raises(CallTimeout):  # ConnectionLost is a CallTimeout: no answer came
            await rpc.call("Heartbeat", {})
        assert len(peer.sent) == 1

    run(main())


def test_send_failure_propagates_and_releases_the_lock():
    sent = []
    fail = [True]

    async def send(text):
        if fail[0]:
            raise OSError("link down")
        sent.append(json.loads(text))

    async def main():
        rpc = RPC(send, None, id_source=lambda: "s%d" % len(sent))
        with pytest.raises(OSError):
            await rpc.call("Heartbeat", {})
        fail[0] = False
        task = asyncio.create_task(rpc.call("Heartbeat", {}))
        await asyncio.sleep(0)
        await rpc.on_frame('[3, "s0", {"currentTime": "2026-11-24T10:00:00Z"}]')
        assert await task == {"currentTime": "2026-11-24T10:00:00Z"}

    run(main())


def test_default_ids_are_unique_short_strings_per_connection(peer):
    async def main():
        ids = []
        for _ in range(2):  # two connections
            rpc = RPC(peer.send, None, timeout_ms=1)
            for _ in range(50):
                with pytest.raises(CallTimeout):
                    await rpc.call("Heartbeat", {})
                ids.append(peer.last()[1])
        assert len(set(ids)) == 100
        assert all(isinstance(i, str) and 0 < len(i) <= 36 for i in ids)

    run(main())


MP_SMOKE = r"""
import asyncio, json
from firmware.ocpp import router
from firmware.ocpp.rpc import RPC, CallError
sent = []
async def send(text):
    sent.append(json.loads(text))
@router.on("Reset")
def reset(cp, payload):
    return {"status": "Accepted"}
async def main():
    rpc = RPC(send, None)
    await rpc.on_frame('[2, "a", "Reset", {"type": "Soft"}]')
    await rpc.on_frame('[2, "b", "Reset", {"type": 1}]')
    await rpc.on_frame('[2, "c", "Nope", {}]')
    await rpc.on_frame(b'garbage')
    await rpc.on_frame('[2, "d", "Reset", {"type": "Hard"}]')
    task = asyncio.create_task(rpc.call("Heartbeat", {}))
    await asyncio.sleep_ms(0)
    uid = sent[-1][1]
    await rpc.on_frame(json.dumps([3, uid, {"currentTime": "2026-11-24T10:00:00Z"}]))
    res = await task
    task = asyncio.create_task(rpc.call("Heartbeat", {}))
    await asyncio.sleep_ms(0)
    await rpc.on_frame(json.dumps([4, sent[-1][1], "NotSupported", "no", {}]))
    try:
        await task
    except CallError as e:
        res2 = e.code
    print("RESULT", json.dumps([sent[:4], sent[4], sent[5][2], res, res2, len(uid) <= 36]))
asyncio.run(main())
"""


def test_smoke_on_micropython(micropython):
    r = micropython(MP_SMOKE, heap="256k")
    assert r.returncode == 0, r.stderr + r.stdout
    line = [s for s in r.stdout.splitlines() if s.startswith("RESULT ")][-1]
    answers, last, action, res, res2, short_id = json.loads(line[7:])
    assert answers == [
        [3, "a", {"status": "Accepted"}],
        [4, "b", "TypeConstraintViolation", "type: expected string", {}],
        [4, "c", "NotImplemented", "unknown action Nope", {}],
        [4, "-1", "FormationViolation", "not valid JSON", {}],
    ]
    assert last == [3, "d", {"status": "Accepted"}]
    assert action == "Heartbeat"
    assert res == {"currentTime": "2026-11-24T10:00:00Z"}
    assert res2 == "NotSupported" and short_id


def _unlock_routes(gate, outcome):
    @router.on("UnlockConnector")
    async def unlock(cp, payload):
        await gate.wait()
        if outcome == "error":
            raise OCPPError(router.GENERIC_ERROR, "motor jammed")
        if outcome == "crash":
            raise RuntimeError("driver bug")
        return {"status": "Unlocked"}


def test_async_handler_answers_when_done_and_frames_keep_flowing(peer):
    async def main():
        gate = asyncio.Event()
        _unlock_routes(gate, "ok")
        rpc = RPC(peer.send, [])
        await rpc.on_frame('[2, "u1", "UnlockConnector", {"connectorId": 1}]')
        assert peer.sent == []  # not answered yet: the handler still works
        # Meanwhile the reader is free: another CALL is answered at once.
        await assert_still_answers(rpc, peer, "r2")
        gate.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert peer.last() == [3, "u1", {"status": "Unlocked"}]
        check_ocpp("UnlockConnector", peer.last()[2], response=True)

    run(main())


@pytest.mark.parametrize("outcome,code", [("error", "GenericError"), ("crash", "InternalError")])
def test_async_handler_failure_becomes_a_callerror(peer, outcome, code):
    async def main():
        gate = asyncio.Event()
        gate.set()
        _unlock_routes(gate, outcome)
        rpc = RPC(peer.send, [])
        await rpc.on_frame('[2, "u1", "UnlockConnector", {"connectorId": 1}]')
        for _ in range(5):
            await asyncio.sleep(0)
        assert peer.last()[:3] == [4, "u1", code]

    run(main())


def test_async_handler_that_never_finishes_times_out_as_internal_error(peer, monkeypatch):
    from firmware.ocpp import rpc as rpc_mod

    monkeypatch.setattr(rpc_mod, "_HANDLER_MS", 50)

    async def main():
        _unlock_routes(asyncio.Event(), "ok")  # the gate never opens
        rpc = RPC(peer.send, [])
        await rpc.on_frame('[2, "u1", "UnlockConnector", {"connectorId": 1}]')
        await asyncio.sleep(0.2)
        assert peer.last()[:3] == [4, "u1", "InternalError"]

    run(main())


def test_a_reconnect_asked_while_a_call_is_answered_waits_for_the_answer():
    """A handler whose change closes the link (ChangeConfiguration of AuthorizationKey): the
    close runs once its CALLRESULT is sent, even when sending yields to the event loop, so the
    central system gets the answer; with no CALL in hand it runs at once."""
    events = []

    async def slow_send(text):
        await asyncio.sleep(0)  # a TLS write that yields
        await asyncio.sleep(0)
        events.append(("sent", json.loads(text)[0]))

    rpc = RPC(slow_send, cp=None)

    def handler(cp, payload):
        rpc.then = lambda: events.append(("closed",))
        return {"status": "Accepted"}

    router.HANDLERS["TestReconnect"] = handler
    try:
        asyncio.run(rpc.on_frame(json.dumps([2, "u1", "TestReconnect", {}])))
    finally:
        del router.HANDLERS["TestReconnect"]
    assert events == [("sent", 3), ("closed",)]
    assert rpc.then is None and rpc.answering == 0


def test_session_reconnect_defers_to_the_call_in_hand_and_closes_only_its_own_link():
    from firmware.ocpp.session import Session

    class Cfg:
        def subscribe(self, fn):
            pass

    class CP:
        config = Cfg()

    s = Session(CP())
    assert s.reconnect("no link") is None  # nothing to close
    down = s._down = asyncio.Event()
    s.rpc = RPC(Peer().send, cp=None)
    s.rpc.answering = 1
    s.reconnect("settings changed (AuthorizationKey)")
    assert not down.is_set() and s._kick.is_set()
    s._down = asyncio.Event()  # the link was replaced meanwhile
    s.rpc.then()
    assert down.is_set() and not s._down.is_set()
    s.rpc.answering = 0
    s.reconnect("settings changed (ocppu)")
    assert s._down.is_set()


@pytest.mark.parametrize("fails", [1, 2, 3, 4])
def test_an_answer_with_no_room_is_tried_again_once_with_room(peer, fails, monkeypatch):
    """A CALL handled but its answer not encodable for want of memory (nothing of it sent:
    ws.send_json raises before the first write) is encoded once more after router.shed();
    failing again, it is answered InternalError (also tried twice); only when that too has no
    room does the MemoryError go up: the session's reader counts it, keeps the link, and
    sends the last word (InternalError made without json.dumps) by the id still unanswered."""
    shed = []
    monkeypatch.setattr(router, "shed", lambda: shed.append(1))
    left = [fails]

    async def send_json(msg):
        if left[0] > 0:
            left[0] -= 1
            raise MemoryError("no room")
        await peer.send(json.dumps(msg))

    async def main():
        cp = []
        rpc = RPC(peer.send, cp, send_json=send_json)
        frame = json.dumps([2, "m1", "Reset", {"type": "Soft"}])
        if fails == 4:
            with pytest.raises(MemoryError):
                await rpc.on_frame(frame)
            assert rpc.unanswered == "m1"
            await rpc.last_word()  # what the session's reader does then, once
            await rpc.last_word()
        else:
            await rpc.on_frame(frame)
        assert rpc.unanswered is None
        return cp

    cp = run(main())
    assert cp == [("Reset", "Soft")]  # handled once, never again
    if fails == 1:
        assert peer.frames() == [[3, "m1", {"status": "Accepted"}]] and len(shed) == 1
    elif fails < 4:
        assert peer.frames() == [[4, "m1", "InternalError", "out of memory in Reset", {}]]
    else:  # the last word, made without json.dumps, says so once
        assert peer.frames() == [[4, "m1", "InternalError", "out of memory", {}]]


def test_the_reader_keeps_the_link_when_an_answer_has_no_room():
    """A MemoryError out of on_frame (no room even for the InternalError) is counted and the
    next frame is read on the same link; before, the reader task died and the link went."""
    from firmware.ocpp import session
    from ws import ConnectionClosed

    frames = ["first", "second"]
    handled = []

    class Ws:
        cut = 0

        async def recv(self, raw=False, box=None):  # as lib/ws.py: text into the box
            if not frames:
                raise ConnectionClosed(1000, "done")
            box.append(bytearray(frames.pop(0).encode()))

    class Rpc:
        async def on_frame(self, box, cut=0):
            text = box.pop()  # handed over in a list, as RPC.on_frame takes it
            assert not box
            if bytes(text) == b"first":
                raise MemoryError("no room for the answer")
            handled.append(bytes(text))

        async def last_word(self):
            handled.append("last word")

    before = log.oom
    with pytest.raises(ConnectionClosed):
        run(session.Session._reader(None, Ws(), Rpc()))
    assert handled == ["last word", b"second"] and log.oom == before + 1
