"""Unit-test kit for the transaction service (firmware/transactions/service.py) and its message
modules.

A charge point built from the real parts (Config, Charger on the simulated HAL, Journal,
AuthCache, LocalList on a temporary directory) with a loopback central system in place of
the OCPP session: `LoopSession.call` checks every request and every answer against the
official OCPP schemas (check_ocpp) and answers from `handler(action, payload)`. The real
central system over a websocket is exercised by test_e2e_transactions.py.
"""

import asyncio
import copy

from conftest import check_ocpp

from firmware.app import ChargePoint
from firmware.config import Config
from firmware.ocpp import validate
from firmware.ocpp.router import OCPPError
from firmware.ocpp.rpc import BadResponse, CallTimeout
from firmware.ocpp.session import NotAccepted
from hal.sim import SimHal


class LoopSession:
    def __init__(self, online=True):
        self.accepted = asyncio.Event()
        if online:
            self.accepted.set()
        self.calls = []
        self.next_id = 100
        self.cards = {}  # idTag -> idTagInfo; default Accepted
        self.handler = self.default

    def default(self, action, payload):
        if action == "Authorize":
            return {"idTagInfo": self.cards.get(payload["idTag"], {"status": "Accepted"})}
        if action == "StartTransaction":
            self.next_id += 1
            info = self.cards.get(payload["idTag"], {"status": "Accepted"})
            return {"transactionId": self.next_id, "idTagInfo": info}
        return {}

    async def call(self, action, payload):
        if not self.accepted.is_set():
            raise NotAccepted(action)
        check_ocpp(action, payload)
        self.calls.append((action, copy.deepcopy(payload)))
        r = self.handler(action, payload)
        if r is None:
            raise CallTimeout(action)
        try:  # a malformed answer fails the call as the real RPC layer does
            validate.response(action, r)
        except OCPPError as e:
            raise BadResponse(e.code, e.description) from None
        check_ocpp(action, r, response=True)
        return r

    def actions(self):
        return [a for a, _ in self.calls]

    def sent(self, action):
        return [p for a, p in self.calls if a == action]


class CP(ChargePoint):
    """The real ChargePoint's declarations and event hubs, with the simulated hardware and a
    loopback session."""

    def __init__(self, data_dir, online=True, **cfg):
        self._declare()
        self.data_dir = str(data_dir)
        self.config = Config(self.data_dir)
        base = {"ocppe": True}
        api = {k: v for k, v in cfg.items() if k[0].islower()}
        base.update(api)
        assert self.config.update(base, "api") == {}
        ocpp = {k: v for k, v in cfg.items() if not k[0].islower()}
        for k in ocpp:
            assert self.config.ocpp_set(k, ocpp[k]) == "Accepted", k
        self.hal = SimHal()
        from firmware.evse.charger import Charger

        self.charger = Charger(self.hal, self.config)
        self.charger.energy_wh = 1000.0
        self.session = LoopSession(online)
        self.info = {"vendor": "T", "model": "T", "serial": "1", "fw": "0"}


def make(data_dir, online=True, **cfg):
    """(cp, txn): a charge point with the transaction service attached."""
    from firmware.authorization import service as authmod
    from firmware.transactions import service as txnmod

    cp = CP(data_dir, online, **cfg)
    authmod.attach(cp)
    for coro in txnmod.attach(cp):
        if not callable(coro):  # make() of a metering loop starts nothing
            coro.close()  # the tests drive the service step by step
    return cp, cp.txn


async def drain(txn, limit_s=3.0):
    """Run the journal sender until the journal is empty (or the session is offline)."""
    task = asyncio.create_task(txn.sender())
    try:
        for _ in range(int(limit_s * 100)):
            await asyncio.sleep(0.01)
            if len(txn.journal) == 0 or not txn.cp.session.accepted.is_set():
                break
    finally:
        await stop_task(task)


async def stop_task(task):
    """Cancel until the task has ended: CPython 3.11's asyncio.wait_for can swallow a
    cancellation that races with its inner future (fixed in 3.12), and the sender idles in
    wait_for, so one cancel() may be lost and an `await task` would wait for ever."""
    for _ in range(500):
        if task.done():
            break
        task.cancel()
        await asyncio.sleep(0.001)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: a failure shows in the test's assertions instead


async def events(txn, *evs):
    """Feed charger events (name or (name, data)) through the service, in order."""
    for e in evs:
        name, data = e if isinstance(e, tuple) else (e, None)
        if name in ("plugged", "unplugged"):
            # What the charger's tick does before it emits the event: the charger owns the
            # plugged fact, the services read it there.
            txn.cp.charger._plugged = name == "plugged"
        await txn._handle(name, data)


class FastClock:
    """Stands in for firmware.clock in the transaction service: every look at the time is an
    hour later, so the journal's retry waits (TransactionMessageRetryInterval and its
    doubling) pass at once and a test needs no real time for them."""

    def __init__(self, t=1_800_000_000):
        self.t = t

    def now(self):
        self.t += 3600
        return self.t


def fast_retries(monkeypatch):
    from firmware.transactions import service

    monkeypatch.setattr(service, "clock", FastClock())


_LOOP = []


def run(coro):
    """Run on one event loop for the whole test session (the service's asyncio.Events bind
    to the loop that first waits on them)."""
    if not _LOOP:
        _LOOP.append(asyncio.new_event_loop())
    return _LOOP[0].run_until_complete(coro)
