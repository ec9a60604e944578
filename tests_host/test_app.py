"""App wiring: a core task that fails is logged and started again, never left dead."""

import asyncio

import log
from firmware import app


def test_a_failing_core_task_is_restarted(monkeypatch):
    """The OCPP session (and the meter, the transactions: cp.keep) that dies of a MemoryError
    or ends is logged with its name, counted, and started again by the housekeeping."""
    monkeypatch.setattr(app, "_RESTART_MS", 1)
    runs = []
    lines = []
    log.add_sink(lambda lv, tag, text: lines.append((lv, tag, text)))

    async def flaky():
        runs.append(1)
        if len(runs) == 1:
            raise MemoryError("heap full")
        if len(runs) == 2:
            return  # ended by itself: also restarted
        await asyncio.sleep(10)

    async def main():
        asyncio.get_event_loop().set_exception_handler(app._exception_handler)
        cp = _CP()
        app._start(cp, [app.ChargePoint.keep(cp, "session", flaky)])
        for _ in range(200):
            await asyncio.sleep(0.005)
            app._revive(cp)  # as the housekeeping does every second
            if len(runs) >= 3:
                break
        (live,) = cp.makers
        assert cp.watched["session"][0] is live  # the watch follows the new task
        live.cancel()

    before = log.oom
    asyncio.run(main())
    assert log.oom == before + 1
    assert len(runs) == 3
    # Logged as an error and counted (the `oom` status key), the task named at its restart.
    assert any("out of memory" in t for lv, tag, t in lines if lv == "E" and tag == "app")
    assert sum("session ended; restarting" in t for lv, tag, t in lines) == 2


class _CP:
    def __init__(self):
        self.tasks = []
        self.makers = {}
        self.watched = {}
        self.beats = {}

    def beat(self, name):
        app.ChargePoint.beat(self, name)


def test_a_feature_loop_that_fails_or_ends_is_started_again(monkeypatch):
    """Features give make() of their loops (attach); one that dies of a MemoryError (seen on a
    squeezed heap: it was gone for good) or ends is started again by the housekeeping
    (_revive), in a new task that takes the old one's place; a done one-shot coroutine is
    left alone."""
    monkeypatch.setattr(app, "_RESTART_MS", 1)
    runs = []

    async def loop():
        runs.append(1)
        if len(runs) == 1:
            raise MemoryError("heap full")
        if len(runs) == 2:
            return
        await asyncio.sleep(10)

    async def once():
        pass

    async def main():
        asyncio.get_event_loop().set_exception_handler(app._exception_handler)
        cp = _CP()
        t = asyncio.create_task(loop())
        cp.tasks = [asyncio.create_task(once()), t]
        cp.makers[t] = loop
        for _ in range(200):
            await asyncio.sleep(0.005)
            app._revive(cp)
            if len(runs) >= 3:
                break
        assert len(cp.tasks) == 2 and len(cp.makers) == 1
        (live,) = cp.makers
        assert cp.tasks[1] is live and not live.done() and cp.makers[live] is loop
        live.cancel()

    before = log.oom
    asyncio.run(main())
    assert len(runs) == 3 and log.oom == before + 1


def test_the_exception_handler_never_raises_even_without_memory(monkeypatch):
    """It runs inside the event loop: an exception out of it ended the firmware (a squeezed
    heap, test_e2e_frozen32). With no room to log, the shortage is still counted."""

    def no_room(*args):
        raise MemoryError

    monkeypatch.setattr(log, "failed", no_room)
    before = log.oom
    app._exception_handler(None, {"exception": ValueError("x"), "message": "m"})
    assert log.oom == before + 1
    monkeypatch.setattr(log, "failed", lambda *a: 1 / 0)
    app._exception_handler(None, {"message": "m"})
    assert log.oom == before + 1


def test_the_shutdown_unlocks_a_heap_a_keyboard_interrupt_left_locked(micropython):
    """On the unix port SIGINT's KeyboardInterrupt can land inside a collection and leave the
    heap locked (seen once per few hundred simulator runs): app.heap_unlocked() lets the
    shutdown allocate again, and leaves an unlocked heap as it was."""
    from conftest import mp_run

    code = """
import micropython
from firmware.app import heap_unlocked
micropython.heap_lock(); micropython.heap_lock()
try:
    [1] * 10
    print("allocated while locked")
except MemoryError:
    pass
print(heap_unlocked())
x = [1] * 10
print(heap_unlocked())
y = [2] * 10
micropython.heap_lock()
print(micropython.heap_unlock(), len(x) + len(y))
"""
    r = mp_run(code)
    # True: it was locked (app.run then takes the MemoryError it caused for the shutdown);
    # False: it was not, and stays so.
    assert r.stdout.split() == ["True", "False", "0", "20"], r.stdout + r.stderr
    app.heap_unlocked()  # CPython: nothing to do
