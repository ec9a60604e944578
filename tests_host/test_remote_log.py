"""Remote logging (`ocpprl`, firmware/remote_log.py): log lines go to the central system as
DataTransfer (vendorId OpenWallbox, messageId Log), bounded in memory and in rate; nothing
is kept or sent while the key is off. Every request is checked against the OCPP schema."""

import asyncio

import pytest
from conftest import check_ocpp

import log
from firmware import remote_log
from firmware.config import Config
from firmware.ocpp.rpc import CallError
from firmware.ocpp.session import NotAccepted


class Session:
    def __init__(self):
        self.accepted_ms = 1
        self.sent = []
        self.answer = {"status": "Accepted"}

    async def call(self, action, payload):
        if self.accepted_ms is None:
            raise NotAccepted(action)
        check_ocpp(action, payload)
        self.sent.append(payload)
        if isinstance(self.answer, Exception):
            raise self.answer
        check_ocpp(action, self.answer, response=True)
        return self.answer


class CP:
    def __init__(self, tmp_path, on=True):
        self.config = Config(str(tmp_path))
        if on:
            assert self.config.update({"ocpprl": True}, "api") == {}
        self.session = Session()


class Clock:
    def __init__(self):
        self.t = 0

    def __call__(self):
        return self.t


@pytest.fixture
def rl(tmp_path):
    made = []

    def make(on=True):
        cp = CP(tmp_path, on)
        clock = Clock()
        r = remote_log.RemoteLog(cp, now_ms=clock)
        made.append(r)
        return cp, r, clock

    yield make
    for r in made:
        r.enable(False)  # never leave a sink behind in the log module


def lines(payload):
    assert payload["vendorId"] == "OpenWallbox" and payload["messageId"] == "Log"
    return payload["data"].split("\n")


def test_log_lines_reach_the_central_system_as_data_transfer(rl):
    cp, r, clock = rl()
    log.info("txn", "started", 3)
    log.error("meter", "offline")
    log.debug("x", "not sent")
    assert asyncio.run(r.step()) is True
    (p,) = cp.session.sent
    got = lines(p)
    assert [g.split(" ", 1)[1] for g in got] == ["I txn: started 3", "E meter: offline"]
    assert all(g[:4].isdigit() and g[19] == "Z" for g in got)  # RFC 3339 time of the line
    assert asyncio.run(r.step()) is False  # nothing left


def test_memory_bounded_and_the_loss_is_said(rl):
    cp, r, clock = rl()
    for k in range(100):
        log.warning("flood", "line", k, "x" * 500)
    assert len(r._lines) == remote_log._MAX_LINES
    assert all(len(x[1]) <= remote_log._MAX_LINE for x in r._lines)
    asyncio.run(r.step())
    got = lines(cp.session.sent[0])
    assert got[0].endswith("W remote_log: %d lines dropped" % (100 - remote_log._MAX_LINES))
    assert got[-1].split(" ")[4] == "99"  # the newest are kept


def test_rate_limited(rl):
    cp, r, clock = rl()
    log.warning("a", "1")
    assert asyncio.run(r.step())
    log.warning("a", "2")
    clock.t += remote_log._GAP_MS - 1
    assert asyncio.run(r.step()) is False and len(cp.session.sent) == 1
    clock.t += 1
    assert asyncio.run(r.step()) and len(cp.session.sent) == 2


def test_off_keeps_nothing_and_sends_nothing(rl):
    cp, r, clock = rl(on=False)
    log.error("a", "secret")
    assert r._lines == [] and asyncio.run(r.step()) is False and cp.session.sent == []
    assert cp.config.update({"ocpprl": True}, "api") == {}
    log.error("a", "now")
    assert cp.config.update({"ocpprl": False}, "api") == {}
    assert r._lines == []  # turned off: the buffer goes too
    log.error("a", "again")
    assert asyncio.run(r.step()) is False and cp.session.sent == []


def test_kept_while_offline_sent_once_accepted(rl):
    cp, r, clock = rl()
    cp.session.accepted_ms = None
    log.warning("ocpp", "link down")
    assert asyncio.run(r.step()) is False
    cp.session.accepted_ms = 7
    assert asyncio.run(r.step())
    assert lines(cp.session.sent[0])[0].endswith("W ocpp: link down")


@pytest.mark.parametrize("answer", [{"status": "UnknownVendorId"}, {"status": "UnknownMessageId"},
                                    CallError("NotImplemented", "")])
def test_a_central_system_that_does_not_take_them_is_left_alone_until_it_reconnects(rl,
                                                                                    answer):
    cp, r, clock = rl()
    cp.session.answer = answer
    log.warning("a", "1")
    asyncio.run(r.step())
    log.warning("a", "2")
    clock.t += 10 * remote_log._GAP_MS
    assert asyncio.run(r.step()) is False and len(cp.session.sent) == 1
    assert r._lines == []  # nothing piles up meanwhile
    cp.session.accepted_ms = 99  # a new connection: tried again
    cp.session.answer = {"status": "Accepted"}
    log.warning("a", "3")
    assert asyncio.run(r.step()) and len(cp.session.sent) == 2


def test_remote_log_on_micropython(micropython):
    code = (
        "import asyncio, log\n"
        "from firmware import remote_log\n"
        "class C:\n"
        "    def get(self, k): return True\n"
        "    def subscribe(self, fn): pass\n"
        "class S:\n"
        "    accepted_ms = 1\n"
        "    async def call(self, a, p):\n"
        "        print(p['messageId'], p['data'].split(' ', 1)[1])\n"
        "        return {'status': 'Accepted'}\n"
        "class CP:\n"
        "    config = C(); session = S()\n"
        "r = remote_log.RemoteLog(CP())\n"
        "log.warning('txn', 'hello', 1)\n"
        "print(asyncio.run(r.step()))\n"
    )
    out = micropython(code)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split("\n")[-3:-1] == ["Log W txn: hello 1", "True"]
