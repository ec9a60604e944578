"""OCPP-J 1.6 RPC: CALL / CALLRESULT / CALLERROR over any `async send(text)`.

    rpc = RPC(ws.send, cp, timeout_ms=30000)
    conf = await rpc.call("Heartbeat", {})      # CallError / CallTimeout on failure
    await rpc.on_frame(await ws.recv())         # in the reader task, one frame at a time
    rpc.close()                                 # when the connection drops

One outgoing CALL waits for its answer at a time (OCPP-J 1.6 §4.1.1); later calls queue on
a lock, and each one's timeout starts when it is sent. Incoming CALLs are validated
(validate.py), routed (router.py) and answered at once; after-handlers run once the
CALLRESULT has been sent.

Malformed incoming frames. OCPP-J 1.6 §4.2.3 (Table 7) only describes the codes; it says
nothing about which one a broken frame gets, nor which id to answer when the id is unreadable.
Choices here (the connection stays up in every case):
- not JSON (or not UTF-8): FormationViolation, "syntactically incorrect";
- JSON but not an array, empty, message type id not 2/3/4 or not an integer, a CALL with fewer
  than 4 elements ("incomplete"), a message id that is not a string of 1..36 characters:
  ProtocolError. OCPP 1.6 has no MessageTypeNotSupported (added in OCPP-J 2.0.1 §4.4);
- a CALL with more than 4 elements or an action that is not a string: FormationViolation
  ("not conform the PDU structure");
- a payload that breaks its schema: see validate.py;
- unknown action: NotImplemented; a known action without a handler: NotSupported;
- handler raises OCPPError: that error; any other exception: InternalError and a log.error.
When the message id cannot be read the CALLERROR carries the id "-1", the convention
OCPP-J 2.0.1 §4.2.3 writes down for this case. CALLRESULT/CALLERROR frames are never answered
(a CALLERROR answers a CALL only): a malformed answer to our pending CALL fails that call
with BadResponse; any other stray answer is logged and dropped. errorDetails is always {}
(or the handler's dict).
"""

import asyncio
import json

import fs
import log
from compat import const, ticks_ms, wait_for_ms
from firmware.ocpp import router, validate
from firmware.ocpp.router import (
    FORMATION_VIOLATION,
    GENERIC_ERROR,
    INTERNAL_ERROR,
    PROPERTY_CONSTRAINT_VIOLATION,
    PROTOCOL_ERROR,
    OCPPError,
)

_CALL = const(2)
_CALLRESULT = const(3)
_CALLERROR = const(4)
_MAX_ID = const(36)
_MAX_DESC = const(255)
_HANDLER_MS = const(20000)  # an async handler must answer within this (else InternalError)


_HEAD = const(64)


# Fields whose long text a handler reads from flash a line at a time (wsfar.Far) rather
# than as a string: the certificates, 5.5 KB each.
_FAR = (("InstallCertificate", "certificate"), ("CertificateSigned", "certificateChain"))
# Arrays of a frame kept on flash that the handler reads an element at a time (wslist.Far):
# (action, the payload's field).
_LISTS = (("SendLocalList", "localAuthorizationList"),)


def _loads(text):
    # Short of memory, once more with the garbage gone and every message module and helper
    # no CALL is using dropped: what rare requests left across the heap splits it into
    # holes too small for a long string.
    return router.roomy(_parse, text)


def _far_list(text):
    """A spooled CALL of _LISTS parsed with its array left on flash (lib/wslist.py: a Far in
    its place), or None when the frame is not one (then parsed whole, as any other)."""
    if getattr(text, "path", None) is None or text.far is not None:
        return None  # in RAM (Pieces), or with strings on a side file: parsed whole
    head = text[:_HEAD]
    for row in _LISTS:
        if ('"%s"' % row[0]).encode() in head:  # the action as the frame's first bytes hold it
            break
    else:
        return None
    action, field = row
    import wslist

    span = wslist.find(text.path, len(text), field.encode())
    if span is None:
        return None
    s = wslist.Skip(text.path, len(text), span)
    try:
        msg = json.load(s)
    finally:
        s.close()
    if (type(msg) is not list or len(msg) != 4 or msg[2] != action or type(msg[3]) is not dict
            or msg[3].get(field) != []):
        return None  # "SendLocalList" was not the action: parsed whole
    msg[3][field] = wslist.Far(text.path, span)  # ValueError if a card is not JSON
    return msg


def _take(text, files):
    """(message, None), or (None, (first bytes, size, error)) when the heap had no room to
    parse it or its file could not be read (our trouble, not the peer's); ValueError (and
    the like) for what is not JSON. `text`: a frame, or [frame], emptied
    here; the names of its files on flash are appended to `files`. The frame is only ever
    held in this call's frame, never in the caller's coroutine, whose stale stack slots the
    collector would keep it by (and with a stream, lib/wsstream.py)."""
    if type(text) is list:
        text = text.pop()
    if hasattr(text, "files"):
        files.extend(text.files())
    try:
        msg = _loads(text)
    except (MemoryError, OSError) as e:  # no room, or its file not readable: ours
        try:
            return None, (text[:_HEAD], len(text), e)
        except Exception:  # noqa: BLE001 - not even its first bytes: no id to answer
            return None, (b"", 0, e)
    if hasattr(text, "release"):  # a stream of lib/wsstream.py: what it holds goes now
        text.release()
    return msg, None


def _parse(text):
    if type(text) in (str, bytes, bytearray):
        return json.loads(text)
    text.rewind()  # wsstream.Pieces or Spooled: from its start (a retry reads it again)
    msg = _far_list(text)
    if msg is None:
        try:
            msg = json.load(text)
        finally:
            text.close()
    far = getattr(text, "far", None)
    if far is not None:  # long strings the frame kept on flash (lib/wsbig.py)
        import wsbig

        action = msg[2] if type(msg) is list and len(msg) == 4 else None
        wsbig.resolve(msg, far, [k for a, k in _FAR if a == action])
    return msg


def _peek_call_id(head):
    """The message id of a CALL from the first bytes of its frame (`[2, "<id>", …`), or None
    (not a CALL, or the id is not in those bytes)."""
    try:
        head = head.encode() if isinstance(head, str) else bytes(head)
        i = head.index(b'"')
        if head[:i].replace(b" ", b"") != b"[2,":
            return None
        j = head.index(b'"', i + 1)
        uid = head[i + 1 : j].decode()
    except Exception:  # noqa: BLE001 - anything odd: no id to answer
        return None
    return uid if 0 < len(uid) <= _MAX_ID else None


class CallError(OCPPError):
    """The central system answered our CALL with a CALLERROR."""


class BadResponse(CallError):
    """The CALLRESULT to our CALL was malformed or failed validation (code says how)."""


class CallTimeout(Exception):
    """No answer to our CALL in time."""


class ConnectionLost(CallTimeout):
    """The connection closed before the answer came (a CallTimeout: no answer will come)."""


def _random_prefix():
    try:
        import os

        b = os.urandom(4)
        n = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
    except Exception:  # a port without urandom
        import random

        n = random.getrandbits(32)
    return "%08x-" % n


class RPC:
    def __init__(self, send, cp, timeout_ms=30000, id_source=None, send_json=None):
        # send(text); send_json(message) encodes it itself (ws.WebSocket.send_json: straight
        # into the link's frame buffer, no str of the message on the heap).
        self._send = send
        self._send_json = send_json
        self.cp = cp
        self.timeout_ms = timeout_ms
        self._ids = id_source or self._next_id
        self._prefix = None
        self._n = 0
        self._lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._id = None  # id of the CALL waiting for its answer
        self._action = None
        self._result = None  # its answer: a payload, or the exception to raise
        self.closed = False
        self.answering = 0  # CALLs being handled and answered (a sync handler's reply too)
        self.then = None  # fn() to run once none is (a reconnect its answer must precede)
        self.unanswered = None  # the id of the CALL being handled until its answer is sent

    def _next_id(self):
        # Random per RPC object (so ids differ across reconnects and reboots), then a counter.
        if self._prefix is None:
            self._prefix = _random_prefix()
        self._n += 1
        return self._prefix + str(self._n)

    async def call(self, action, payload, timeout_ms=None):
        """Send a CALL and return the CALLRESULT payload.

        Raises CallError (the peer's CALLERROR, or BadResponse), CallTimeout, ConnectionLost,
        or whatever `send` raises."""
        async with self._lock:
            if self.closed:
                raise ConnectionLost("connection closed")
            uid = self._ids()
            msg = [_CALL, uid, action, payload]
            text = None if self._send_json else json.dumps(msg)
            self._done.clear()
            self._result = None
            self._id = uid
            self._action = action
            ms = self.timeout_ms if timeout_ms is None else timeout_ms
            try:
                await (self._send(text) if text is not None else self._send_json(msg))
                msg = None
                await wait_for_ms(self._done.wait(), ms)
            except asyncio.TimeoutError:
                log.warning("rpc", "%s %s: no answer within %d ms" % (action, uid, ms))
                raise CallTimeout(action)
            finally:
                self._id = None
                self._action = None
            r = self._result
            self._result = None
            if isinstance(r, Exception):
                raise r
            return r

    def close(self):
        """The connection dropped: fail the pending call and every later one."""
        self.closed = True
        if self._id is not None:
            self._result = ConnectionLost("connection closed")
            self._id = None
            self._done.set()

    async def _error(self, uid, code, description, details=None):
        if type(details) is not dict:
            details = {}
        if type(description) is not str:
            description = str(description)
        msg = [_CALLERROR, uid, code, description[:_MAX_DESC], details]
        try:
            await self._out(msg)
        except MemoryError:  # nothing was sent (lib/ws.py send_json): once more with room
            router.shed()
            await self._out(msg)
        self.unanswered = None

    def _out(self, msg):
        if self._send_json is not None:
            return self._send_json(msg)
        return self._send(json.dumps(msg))

    async def _reject(self, uid, code, description):
        log.warning("rpc", "frame refused, %s: %s" % (code, description))
        await self._error(uid, code, description)

    async def last_word(self):
        """on_frame ran out of memory before the CALL in hand was answered (even its
        InternalError): that answer once more, made without json.dumps (a few dozen bytes,
        once the handler's garbage is gone), so the central system is not left waiting."""
        uid, self.unanswered = self.unanswered, None
        if uid is not None:
            await self._send('[4,%s,"InternalError","out of memory",{}]' % json.dumps(uid))

    async def on_oom(self, head, why="out of memory"):
        """A frame the heap had no room for (we are short of memory, the peer did nothing
        wrong), or kept on flash and not readable back: a CALL gets InternalError by the id
        in its first bytes."""
        uid = _peek_call_id(head)
        if uid is not None:
            await self._error(uid, INTERNAL_ERROR, why)

    async def on_frame(self, text, cut=0):
        """Handle one incoming frame (str, bytes or bytearray of UTF-8 JSON, or a stream of
        lib/wsstream.py; or [frame], a list it is taken out of, so that the caller holds no
        reference to it while the message is handled). Errors of
        `send` propagate. `cut`: strings the websocket replaced by ws.CUT because they were
        too long to keep (lib/ws.py _compacted): only DataTransfer's `data` may be that
        long (its handler answers it); in any other CALL a field is beyond its maxLength."""
        files = []  # of a frame kept on flash (lib/wsstream.py): they go last, by name
        self.unanswered = None
        try:
            try:
                msg, oom = _take(text, files)
            except MemoryError:  # not even its first bytes: the session counts it
                raise
            except Exception:  # ValueError, UnicodeError, RecursionError
                await self._reject("-1", FORMATION_VIOLATION, "not valid JSON")
                return
            text = None
            if oom is not None:
                # Our shortage or our flash, not the peer's fault: never FormationViolation.
                if isinstance(oom[2], MemoryError):
                    log.memory("rpc", "frame of %d bytes" % oom[1])
                    await self.on_oom(oom[0])
                else:
                    log.error("rpc", "frame of %d bytes unreadable: %r" % (oom[1], oom[2]))
                    await self.on_oom(oom[0], "frame not readable from flash")
                return
            # The long-frame reader goes until the next long frame, and the streams it
            # reads through: the stream it made was released in _take, the Far strings of
            # the message go with their handler (a 5.6 KB certificate chain is copied to a
            # file first) and keep only lib/wsfar.py, so the reader's heap is free while a
            # handler works (6 KB, 64-bit; lib/wsstream.py 1.9 KB more).
            router.forget("wsbig", "wsstream", "wsfar")
            if type(msg) is not list or not msg:
                await self._reject("-1", PROTOCOL_ERROR, "not a non-empty JSON array")
                return
            mt = msg[0]
            uid = msg[1] if len(msg) > 1 else None
            good_id = type(uid) is str and 0 < len(uid) <= _MAX_ID
            if type(mt) is int and (mt == _CALLRESULT or mt == _CALLERROR):
                self._answer(msg, mt, uid if good_id else None)
                return
            rid = uid if good_id else "-1"
            if type(mt) is not int or mt != _CALL:
                await self._reject(rid, PROTOCOL_ERROR, "unknown message type " + str(mt)[:8])
            elif not good_id:
                await self._reject(rid, PROTOCOL_ERROR,
                                   "message id must be a string of 1-36 chars")
            elif len(msg) < 4:
                await self._reject(rid, PROTOCOL_ERROR, "incomplete CALL")
            elif len(msg) > 4:
                await self._reject(rid, FORMATION_VIOLATION, "CALL must have 4 elements")
            elif type(msg[2]) is not str:
                await self._reject(rid, FORMATION_VIOLATION, "action must be a string")
            elif cut and msg[2] != "DataTransfer":
                await self._reject(rid, PROPERTY_CONSTRAINT_VIOLATION, "a string over 6 KiB")
            else:
                self.unanswered = uid  # until its answer is sent (_reply, _error)
                await self._call(uid, msg[2], msg[3], cut)
        finally:  # after the handler, which may read a long string from flash (wsfar.Far)
            for f in files:
                fs.remove(f)

    async def _call(self, uid, action, payload, cut=0):
        spawned = False
        self.answering += 1
        try:
            spawned = await self._call1(uid, action, payload, cut)
        finally:
            self.answering -= 1
            if not spawned:
                self._answered(action)
            fn = self.then
            if fn is not None and not self.answering:
                self.then = None
                fn()

    def _answered(self, action):
        tight = router.done(action, ticks_ms())  # None: it did not look
        cp = self.cp
        if getattr(cp, "awake", None) and (router.tight() if tight is None else tight):
            # A dormant feature that a request woke and that has nothing left to do goes
            # now, not at the app's next second: the central system's next request may
            # follow within milliseconds and need the room (app.ChargePoint.rest).
            cp.rest_all()

    async def _call1(self, uid, action, payload, cut):
        """True when an async handler answers later (_finish) instead."""
        try:
            fn = router.lookup(action)
            validate.request(action, payload)
            if cut:  # after validation, which refuses any key the peer adds: unforgeable
                payload[router.CUT_KEY] = cut
            res = fn(self.cp, payload)
            if type(res) is not dict:
                if hasattr(res, "send"):
                    # An async handler (e.g. UnlockConnector waits for the lock): it answers
                    # when it finishes, in its own task, so frames keep being read meanwhile.
                    asyncio.create_task(self._finish(uid, action, payload, res))
                    self.unanswered = None  # its task answers, whatever happens here
                    return True
                raise TypeError("handler returned " + str(type(res)))
        except OCPPError as e:
            await self._fail_call(uid, action, e)
            return False
        except Exception as e:
            await self._crash(uid, action, e)
            return False
        await self._reply(uid, action, payload, res)
        return False

    async def _finish(self, uid, action, payload, coro):
        try:
            await self._finish1(uid, action, payload, coro)
        finally:
            self._answered(action)

    async def _finish1(self, uid, action, payload, coro):
        try:
            res = await wait_for_ms(coro, _HANDLER_MS)
            if type(res) is not dict:
                raise TypeError("handler returned " + str(type(res)))
        except OCPPError as e:
            await self._fail_call(uid, action, e)
            return
        except Exception as e:  # includes the timeout
            await self._crash(uid, action, e)
            return
        await self._reply(uid, action, payload, res)

    async def _fail_call(self, uid, action, e):
        log.info("rpc", "%s %s -> %s" % (action, uid, e))
        await self._error(uid, e.code, e.description, e.details)

    async def _crash(self, uid, action, e):
        # The description says which: the operator reading the CALLERROR can tell a heap
        # too small for the request from a fault in the firmware.
        if isinstance(e, MemoryError):
            log.memory("rpc", action)
            why = "out of memory in "
        else:
            log.error("rpc", "%s handler failed: %r" % (action, e))
            why = "internal error in "
        await self._error(uid, INTERNAL_ERROR, why + action)

    async def _reply(self, uid, action, payload, res):
        for again in (True, False):
            try:
                if self._send_json is None:
                    text = json.dumps([_CALLRESULT, uid, res])
                else:  # encoded and sent in one step; encoding fails before anything is sent
                    await self._send_json([_CALLRESULT, uid, res])
                    text = None
                    self.unanswered = None
                break
            except MemoryError as e:  # done, but no room to say so: once more with room
                if again:
                    router.shed()
                    continue
                await self._crash(uid, action, e)
                return
            except (TypeError, ValueError, RuntimeError, OverflowError) as e:
                await self._crash(uid, action, e)  # what encoding raises; a lost link goes up
                return
        if text is not None:
            await self._send(text)
            text = None
            self.unanswered = None
        fn = router.AFTER.get(action)
        if fn is not None:
            try:
                fn(self.cp, payload, res)
            except Exception as e:
                log.error("rpc", "%s after-handler failed: %r" % (action, e))

    def _answer(self, msg, mt, uid):
        name = "CALLRESULT" if mt == _CALLRESULT else "CALLERROR"
        if uid is None or uid != self._id:
            log.warning("rpc", "%s for unknown or late id %r dropped" % (name, msg[1:2]))
            return
        if mt == _CALLRESULT:
            if len(msg) != 3:
                r = BadResponse(FORMATION_VIOLATION, "CALLRESULT must have 3 elements")
            else:
                r = msg[2]
                try:
                    validate.response(self._action, r)
                except OCPPError as e:
                    r = BadResponse(e.code, e.description)
            if type(r) is not dict:
                log.warning("rpc", "%s %s: bad %s, %s" % (self._action, uid, name, r))
        else:
            n = len(msg)
            code = msg[2] if n > 2 and type(msg[2]) is str else GENERIC_ERROR
            desc = msg[3] if n > 3 and type(msg[3]) is str else ""
            details = msg[4] if n > 4 and type(msg[4]) is dict else {}
            r = CallError(router.canonical(code), desc, details)
        self._result = r
        self._id = None  # a duplicate answer is now "unknown" and dropped
        self._done.set()
