"""Security events on flash: the security log (every event) and the queue of critical events
that must reach the central system (OCPP 1.6 Security Whitepaper §2 "Security events").

Files under <data_dir>/security/:
- log.txt: one line per event, `<RFC 3339 time> <type> <techInfo>`; bounded: when an append
  would pass LOG_MAX bytes the file becomes log.1.txt (the older one is removed), so at most
  2 x LOG_MAX bytes are kept, the newest events always.
- q.log: append-only, one line per critical event, `<seq> <json payload>`, written before
  the event is sent; ack.json {"ack": last seq acknowledged} written atomically after each
  answer. Delivery is in order (the lowest unacknowledged seq first), across outages and
  power cuts: an event is never lost, at worst sent twice (a cut between the answer and the
  ack). q.log is removed once everything in it is acknowledged and it passed 2 KiB. A torn
  last line (power cut mid-append) is closed with a newline at load and skipped as corrupt
  (log.error), never merged with the next event.
Why not the transaction journal: its entries, references and thinning are about
transactions; this queue needs none of that and is ~80 lines.

deliver(sec) sends the events as SecurityEventNotification: the queue's, then those waiting
in RAM. This module is loaded only while an event waits to be sent: firmware/security/
service.py loads it when an event is raised and lets it go once deliver returns.
"""

import json
import os

import fs
import log
from compat import asleep_ms, const

LOG_MAX = const(8192)
_COMPACT = const(2048)
_REFUSALS = const(3)
_RETRY_MS = const(5000)


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


class SecurityLog:
    def __init__(self, directory, max_bytes=LOG_MAX):
        self.path = directory + "/log.txt"
        self.max_bytes = max_bytes

    def add(self, ts, kind, tech=None):
        line = "%s %s %s\n" % (ts, kind, (tech or "").replace("\n", " "))
        try:
            if _size(self.path) + len(line) > self.max_bytes:
                old = self.path[:-4] + ".1.txt"
                try:
                    os.remove(old)
                except OSError:
                    pass
                os.rename(self.path, old)
            with open(self.path, "a") as f:
                f.write(line)
        except OSError as e:  # flash full or failing: the event still goes out
            log.error("security", "log write failed:", e)

    def files(self):
        """The log files, oldest first (for GetLog)."""
        return [p for p in (self.path[:-4] + ".1.txt", self.path) if _size(p)]

    def clear(self):
        for p in (self.path[:-4] + ".1.txt", self.path):
            try:
                os.remove(p)
            except OSError:
                pass


class Queue:
    """Critical events awaiting delivery (see the module docstring)."""

    def __init__(self, directory):
        self.path = directory + "/q.log"
        self._ack_path = directory + "/ack.json"
        data = fs.read_json(self._ack_path, None)
        self.acked = data.get("ack", 0) if isinstance(data, dict) else 0
        if not isinstance(self.acked, int):
            self.acked = 0
        self.seq = self.acked
        try:
            tail = ""
            with open(self.path) as f:
                for line in f:
                    tail = line
                    seq = self._parse(line)
                    if seq is not None and seq[0] > self.seq:
                        self.seq = seq[0]
            if tail and not tail.endswith("\n"):
                with open(self.path, "a") as f:
                    f.write("\n")  # a torn line stays a line of its own
        except OSError:
            pass

    def _parse(self, line):
        try:
            sp = line.index(" ")
            payload = json.loads(line[sp + 1:])
            if isinstance(payload, dict) and "type" in payload:
                return int(line[:sp]), payload
        except (ValueError, TypeError):
            pass
        if line.strip():
            log.error("security", "corrupt queue line skipped")
        return None

    def append(self, payload):
        seq = self.seq + 1
        with open(self.path, "a") as f:
            f.write("%d %s\n" % (seq, json.dumps(payload)))
        self.seq = seq
        return seq

    def pending(self):
        return self.seq - self.acked

    def peek(self):
        """(seq, payload) of the oldest unacknowledged event, or None."""
        if self.seq <= self.acked:
            return None
        try:
            with open(self.path) as f:
                for line in f:
                    e = self._parse(line)
                    if e is not None and e[0] > self.acked:
                        return e
        except OSError:
            pass
        self.acked = self.seq  # nothing readable left
        return None

    def ack(self, seq):
        fs.write_json(self._ack_path, {"ack": seq})
        self.acked = seq
        if seq >= self.seq and _size(self.path) > _COMPACT:
            try:
                os.remove(self.path)
            except OSError:
                pass


async def deliver(sec):
    """Send sec.queue's critical events in order, then the events of sec._loose, once the
    session is Accepted, until none is left (sec: firmware/security/service.py Security).
    A CALLERROR _REFUSALS times in a row drops the event (log.error); no link or no answer:
    tried again after _RETRY_MS. Returns only between two sends (no CALL in flight)."""
    from firmware.ocpp.rpc import CallError
    from firmware.ops import security_event_notification as sen

    session = sec.cp.session
    loose = sec._loose
    refusals = 0
    while True:
        head = sec.queue.peek()
        payload = head[1] if head is not None else (loose[0] if loose else None)
        if payload is None:
            return
        if not session.is_accepted():
            await session.accepted.wait()
            continue  # looked at again: more may have come meanwhile
        try:
            await sen.send(session, payload)
            done = True
            refusals = 0
        except CallError as e:
            refusals += 1
            done = refusals >= _REFUSALS
            log.error("security", "%s refused: %r" % (payload["type"], e))
            refusals = 0 if done else refusals
        except Exception as e:  # no link, timeout: the head waits for the next try
            log.warning("security", "event not sent: %r" % (e,))
            await asleep_ms(_RETRY_MS)
            continue
        if not done:
            continue
        sec.sent += 1
        if head is not None:
            try:
                sec.queue.ack(head[0])
            except OSError as e:
                log.error("security", "ack write failed:", e)
                await asleep_ms(_RETRY_MS)
        else:
            loose.pop(0)
