"""Remote logging (`ocpprl`): the charger's log lines go to the central system.

While `ocpprl` is true every log line of level I, W or E is kept (a log sink) and, while the
session is Accepted, sent as

    DataTransfer.req {"vendorId": "OpenWallbox", "messageId": "Log", "data": "<lines>"}

with the lines separated by "\\n", each `<RFC 3339 time> <I|W|E> <tag>: <text>` (the console
line with the time it was logged). The central system's answer status is not looked at,
except UnknownVendorId / UnknownMessageId or a CALLERROR: then no more lines are kept or sent
until the next connection (a central system that does not want them is left alone).

Bounds: at most 16 lines of at most 160 characters are kept (the oldest go first; the next
message then begins with `... W remote_log: N lines dropped`, as it does after a batch lost
with the link), at most one DataTransfer every 10 s. Lines live in RAM only: what must never
be lost goes through the transaction journal, not here. Off (the default): no sink, nothing
kept, nothing sent.

Its configuration key is a row of firmware/keys.py (a dormant feature of firmware/app.py).
"""

import asyncio

import log
from compat import const, nap, ticks_diff, ticks_ms
from firmware import clock
from firmware.ocpp.rpc import CallError

_MAX_LINES = const(16)
_MAX_LINE = const(160)
_GAP_MS = const(10000)
_TAG = "remote_log"
OPS = ()  # sends only
VENDOR = "OpenWallbox"
MESSAGE_ID = "Log"


class RemoteLog:
    def __init__(self, cp, now_ms=ticks_ms):
        self.cp = cp
        self._now = now_ms
        self._lines = []  # (unix time, line)
        self._lost = 0
        self._last = None  # ms of the last send
        self._refused = None  # accepted_ms of the connection that did not want the lines
        self._wake = asyncio.Event()
        self._on = False
        self.enable(bool(cp.config.get("ocpprl")))
        cp.config.subscribe(self._on_config)

    def _on_config(self, keys):
        if "ocpprl" in keys:
            self.enable(bool(self.cp.config.get("ocpprl")))

    def enable(self, on):
        if on and not self._on:
            log.add_sink(self._sink)
        elif self._on and not on:
            log.remove_sink(self._sink)
            self._lines = []
            self._lost = 0
        self._on = on

    def _sink(self, level, tag, text):
        # Called by every log line, anywhere (the charger's tick included): append only.
        if level == "D" or (self._refused is not None
                            and self._refused == self.cp.session.accepted_ms):
            return
        line = level + " " + tag + ": " + text
        self._lines.append((clock.now(), line[:_MAX_LINE]))
        if len(self._lines) > _MAX_LINES:
            self._lines.pop(0)
            self._lost += 1
        self._wake.set()

    async def step(self):
        """Send the kept lines when the session is Accepted and the gap has passed; True
        when a DataTransfer went out."""
        s = self.cp.session
        conn = s.accepted_ms
        if not self._lines or conn is None:
            return False
        if self._refused is not None:
            if self._refused == conn:
                return False
            self._refused = None  # a new connection: tried again
        now = self._now()
        if self._last is not None and ticks_diff(now, self._last) < _GAP_MS:
            return False
        batch, lost = self._lines, self._lost
        self._lines, self._lost = [], 0
        self._last = now
        out = []
        if lost:
            out.append("%s W %s: %d lines dropped" % (clock.rfc3339(batch[0][0]), _TAG, lost))
        for t, line in batch:
            out.append(clock.rfc3339(t) + " " + line)
        payload = {"vendorId": VENDOR, "messageId": MESSAGE_ID, "data": "\n".join(out)}
        try:
            res = await s.call("DataTransfer", payload)
            status = res.get("status")
        except CallError as e:
            status = e.code
        except Exception:  # noqa: BLE001 - lost link, timeout: said in the next message
            self._lost += len(batch) + (1 if lost else 0)
            return True
        if status not in ("Accepted", "Rejected"):  # UnknownVendorId, ..., a CALLERROR
            self._refused = conn
            self._lines, self._lost = [], 0
            log.info(_TAG, "the central system does not take log lines (%s):" % status,
                     "paused until it reconnects")
        return True

    async def run(self):
        while True:
            await nap(self._wake, _GAP_MS)
            self._wake.clear()
            try:
                await self.step()
            except Exception as e:  # noqa: BLE001 - never end the task
                print("E", _TAG + ":", repr(e))  # not log.error: it would feed itself


def attach(cp):
    return [RemoteLog(cp).run]
