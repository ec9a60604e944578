"""Liveness (issue 14 item 11): a hang injected into the OCPP session and into the journal
sender is noticed by the housekeeping check (app._watch), the task is cancelled and started
again, and when it hangs again the board is reset through its normal path with the journal
intact. Time is injected into _watch ("now" one deadline after the last beat); the tasks run
for real on the event loop, on CPython and on the MicroPython VM."""

import asyncio
import os

import stuckws
from conftest import MICROPYPATH, ROOT, check_ocpp
from cpkit import FakeCP
from test_journal import CentralSystem, drain
from txnkit import events, make

from compat import ticks_add, ticks_ms
from firmware import app
from firmware.config import Config
from firmware.ocpp import session as sessmod
from firmware.transactions.journal import Journal

TESTS = os.path.join(ROOT, "tests_host")


def later(cp, name):
    return ticks_add(cp.beats[name], app.DEADLINE_MS + 1)


async def settle(pred, n=1000):
    for _ in range(n):
        if pred():
            return True
        await asyncio.sleep(0.002)
    return False


async def cancel_all(cp):
    for w in cp.watched.values():
        if w[0] is not None:  # registered (cp.keep) but never started: no task
            await app._stop(w[0])


class CP(FakeCP):
    def __init__(self):
        self._declare()
        self.reboots = []

    def reboot(self):
        self.reboots.append(1)


# ---- app._watch itself


def test_a_hung_task_is_cancelled_and_restarted_then_the_board_resets(monkeypatch):
    monkeypatch.setattr(app, "_RESTART_MS", 1)
    runs = []

    async def hangs():
        runs.append(1)
        await stuckws.never()  # a lock or an event that never comes

    async def main():
        cp = CP()
        app._start(cp, [cp.keep("svc", hangs)])
        await settle(lambda: runs)
        await app._watch(cp, ticks_ms())  # within its deadline: left alone
        assert cp.watched["svc"][0] is cp.tasks[0] and len(runs) == 1
        old = cp.tasks[0]
        await app._watch(cp, later(cp, "svc"))
        assert old.done() and cp.tasks[0] is not old and cp.watched["svc"][0] is cp.tasks[0]
        assert await settle(lambda: len(runs) == 2) and cp.reboots == []
        await app._watch(cp, later(cp, "svc"))  # silent again within the hour: reset
        assert cp.reboots == [1]
        await cancel_all(cp)

    asyncio.run(main())


def test_a_task_that_beats_is_never_touched_and_a_late_second_hang_restarts_again():
    async def beats(cp):
        while True:
            cp.beat("svc")
            await asyncio.sleep(0.001)

    async def main():
        cp = CP()
        app._start(cp, [cp.keep("svc", lambda: beats(cp))])
        await asyncio.sleep(0.01)
        first = cp.tasks[0]
        await app._watch(cp, ticks_ms())
        assert cp.tasks[0] is first
        await app._watch(cp, later(cp, "svc"))  # as if it had hung: restarted
        assert cp.tasks[0] is not first
        # More than an hour later a new hang is a new incident: restarted, no reset.
        cp.watched["svc"][3] = ticks_add(ticks_ms(), -app._AGAIN_MS - 1)
        await asyncio.sleep(0.01)
        await app._watch(cp, later(cp, "svc"))
        assert cp.reboots == []
        await cancel_all(cp)

    asyncio.run(main())


def test_a_task_that_cannot_be_cancelled_resets_the_board(monkeypatch):
    monkeypatch.setattr(app, "_CANCEL_TRIES", 3)
    give_in = []

    async def stubborn():
        while True:
            try:
                await stuckws.never()
            except asyncio.CancelledError:
                if give_in:
                    raise  # swallows every cancel until the test is over

    async def main():
        cp = CP()
        app._start(cp, [cp.keep("svc", stubborn)])
        await asyncio.sleep(0.01)
        await app._watch(cp, later(cp, "svc"))
        assert cp.reboots == [1]
        give_in.append(1)
        await cancel_all(cp)

    asyncio.run(main())


# ---- hangs injected into the real session and the real journal sender


class SessionCP(FakeCP):
    def __init__(self, tmp_path):
        self._declare()
        self.data_dir = str(tmp_path)
        self.config = Config(self.data_dir)
        assert self.config.update({"ocppe": True, "ocppu": "ws://127.0.0.1:9/ocpp/CP1"},
                                  "api") == {}
        self.info = {"vendor": "OpenWallbox", "model": "OWB-11", "fw": "0.1.0"}
        self.reboots = []
        self.session = sessmod.Session(self)

    def reboot(self):
        self.reboots.append(1)


def test_a_hang_in_the_session_is_restarted_then_the_board_reset(tmp_path, monkeypatch):
    made = stuckws.made
    made.clear()
    monkeypatch.setattr(sessmod.wsmod, "connect", stuckws.connect)

    async def main():
        cp = SessionCP(tmp_path)
        app._start(cp, [cp.keep("session", cp.session.run)])
        assert await settle(lambda: made and made[0].sent)
        n_tasks = len(asyncio.all_tasks())
        first = made[0]
        assert '"BootNotification"' in first.sent[0]  # hung in the middle of it
        await app._watch(cp, later(cp, "session"))
        # The hung connection was torn down (its tasks too), a new one is being made.
        assert first.closed and cp.reboots == []
        assert await settle(lambda: len(made) == 2 and made[1].sent)
        assert len(asyncio.all_tasks()) <= n_tasks
        await app._watch(cp, later(cp, "session"))  # hung again: the board resets
        assert cp.reboots == [1]
        await cancel_all(cp)

    asyncio.run(main())


def test_a_hang_in_the_journal_sender_is_restarted_then_the_board_reset(tmp_path):
    cp, txn = make(tmp_path)
    reboots = []
    cp._reboot = lambda: reboots.append(1)
    calls = []

    async def hung_call(action, payload):
        check_ocpp(action, payload)
        calls.append(action)
        await stuckws.never()  # the central system's answer (or the stream) never comes

    async def main():
        await events(txn, "plugged", ("card", "A1"))
        assert cp.tx is not None and len(txn.journal) == 1
        cp.session.call = hung_call
        app._start(cp, [cp.keep("journal", txn.sender)])
        assert await settle(lambda: calls == ["StartTransaction"])
        await app._watch(cp, later(cp, "journal"))
        assert await settle(lambda: calls == ["StartTransaction"] * 2)  # restarted, sending
        assert reboots == [] and len(txn.journal) == 1  # the Start stays until answered
        await app._watch(cp, later(cp, "journal"))
        assert reboots == [1]
        await cancel_all(cp)

    from txnkit import run

    run(main())
    # Reset through the normal path: the transaction was stopped (Reboot) and journaled;
    # after the reboot the whole session is delivered, in order.
    assert cp.tx is None
    cs = CentralSystem()
    drain(Journal(str(tmp_path)), cs)
    assert [a for a, _ in cs.got] == ["StartTransaction", "StopTransaction"]
    assert cs.got[1][1]["reason"] == "Reboot" and cs.got[1][1]["transactionId"] == 100


MP_SCRIPT = r"""
import asyncio
from compat import ticks_add, ticks_ms
from firmware import app
from firmware.config import Config
from firmware.ocpp import session as sessmod
from stuckws import connect, made, never

sessmod.wsmod.connect = connect

class CP:
    txn = None
    def __init__(self):
        self.beats = {}
        self.watched = {}
        self.tasks = []
        self.makers = {}
        self.reboots = 0
        self.data_dir = DATA
        self.config = Config(DATA)
        self.config.update({"ocppe": True, "ocppu": "ws://127.0.0.1:9/ocpp/CP1"}, "api")
        self.info = {"vendor": "OpenWallbox", "model": "OWB-11", "fw": "0.1.0"}
        self.session = sessmod.Session(self)
    def beat(self, name):
        self.beats[name] = ticks_ms()
    def keep(self, name, make):
        return app.ChargePoint.keep(self, name, make)
    def reboot(self):
        self.reboots += 1

async def until(pred):
    for _ in range(400):
        if pred():
            return
        await asyncio.sleep_ms(5)

async def hang_twice(cp, name, make, started):
    app._start(cp, [cp.keep(name, make)])
    await until(lambda: started(1))
    old = cp.tasks[0]
    await app._watch(cp, ticks_add(cp.beats[name], app.DEADLINE_MS + 1))
    await until(lambda: started(2))
    print("RESULT", name, old.done(), cp.tasks[0] is not old, started(2), cp.reboots)
    await app._watch(cp, ticks_add(cp.beats[name], app.DEADLINE_MS + 1))
    print("RESULT", name, cp.reboots)
    for w in cp.watched.values():
        if w[0] is not None:
            await app._stop(w[0])

runs = []

async def hangs():
    runs.append(1)
    await never()

async def main():
    await hang_twice(CP(), "svc", hangs, lambda n: len(runs) >= n)
    cp = CP()
    await hang_twice(cp, "session", cp.session.run,
                     lambda n: len(made) >= n and len(made[n - 1].sent) > 0)
    print("RESULT closed", made[0].closed)

asyncio.run(main())
"""


def test_hangs_on_micropython(micropython, tmp_path):
    """The same on the MicroPython VM: cancelling a task (a supervisor waiting for its
    connection included: its teardown awaits in `finally` during the cancellation)."""
    code = MP_SCRIPT.replace("DATA", repr(str(tmp_path)))
    r = micropython(code, env={"MICROPYPATH": MICROPYPATH + os.pathsep + TESTS})
    assert r.returncode == 0, r.stdout + r.stderr
    out = [x for x in r.stdout.split("\n") if x.startswith("RESULT")]
    assert out == ["RESULT svc True True True 0", "RESULT svc 1",
                   "RESULT session True True True 0", "RESULT session 1",
                   "RESULT closed True"], r.stdout


# ---- app._supervise: main()'s loop, which must outlive a shortage


def test_the_housekeeping_is_restarted_and_a_shortage_never_ends_the_supervisor(monkeypatch):
    made = []

    async def housekeeping(cp):
        made.append(1)
        await asyncio.sleep(3600)

    monkeypatch.setattr(app, "_housekeeping", housekeeping)
    said = []

    def error(tag, *args):
        said.append(args)
        if len(said) == 1:
            raise MemoryError  # logging the restart needs the heap too

    monkeypatch.setattr(app.log, "error", error)

    async def main():
        cp = CP()
        ended = asyncio.create_task(asyncio.sleep(0))
        await ended
        cp.tasks.append(ended)
        alive = asyncio.create_task(asyncio.sleep(3600))
        assert app._supervise(cp, alive) is alive  # running: left alone
        assert app._supervise(cp, ended) is ended  # no room to log it: later
        assert made == [] and cp.tasks == [ended]
        real = asyncio.create_task

        def no_room(coro):
            coro.close()
            raise MemoryError

        monkeypatch.setattr(app.asyncio, "create_task", no_room)
        assert app._supervise(cp, ended) is ended  # no room for the task: later
        monkeypatch.setattr(app.asyncio, "create_task", real)
        new = app._supervise(cp, ended)
        assert new is not ended and cp.tasks == [new]
        assert await settle(lambda: made == [1])
        assert app._supervise(cp, new) is new
        new.cancel()
        alive.cancel()

    asyncio.run(main())
