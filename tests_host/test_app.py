"""App wiring: a core task that fails is logged and started again, never left dead."""

import asyncio
import signal
import subprocess
import time

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


# The simulator's firmware, started as hal/sim.py main() starts it, with app.main() replaced:
# `busy` collects without pause over a large live heap (a SIGINT then lands inside a
# collection nearly every time), `idle` sleeps (it never does).
_SIGINT_RUN = """
import gc, sys, asyncio
from firmware import app
import hal.sim

async def busy(*a):
    junk = [[i, str(i)] for i in range(40000)]
    print("ready")
    while True:
        gc.collect()

async def idle(*a):
    print("ready")
    while True:
        await asyncio.sleep(1)

async def task(*a):
    # The collections in a task of its own whose `finally` allocates: on the locked heap
    # that turns the KeyboardInterrupt into a MemoryError, which ends the task; nobody
    # awaits it, so the loop's exception handler gets it.
    asyncio.get_event_loop().set_exception_handler(app._exception_handler)

    async def worker():
        junk = [[i, str(i)] for i in range(40000)]
        try:
            print("ready")
            while True:
                gc.collect()
                await asyncio.sleep(0)
        finally:
            junk = [0] * 8

    asyncio.create_task(worker())
    while True:
        await asyncio.sleep(1)

app.main = {"busy": busy, "idle": idle, "task": task}[sys.argv[-1]]
hal.sim.main(sys.argv[-2])
print("returned")
"""


def _interrupted_run(data, how):
    """The firmware's output and exit status after one SIGINT, once it is `ready`."""
    from conftest import ROOT, free_port, micropython_binary, mp_env

    data.mkdir()
    p = subprocess.Popen(
        [micropython_binary(), "-X", "heapsize=8m", "-c", _SIGINT_RUN, str(data), how],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=mp_env({"WB_API_PORT": str(free_port()), "WB_CSMS": ""}), cwd=ROOT)
    try:
        for line in p.stdout:
            if line.strip() == "ready":
                break
        time.sleep(0.1)  # well into the loop (a SIGINT at once lands before its collection)
        p.send_signal(signal.SIGINT)
        out = p.communicate(timeout=30)[0]
        return out, p.returncode
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_sigint_inside_a_collection_exits_as_a_power_cut_without_an_error(tmp_path,
                                                                            micropython):
    """On the unix port SIGINT's KeyboardInterrupt is raised from the signal handler and can
    land inside a garbage collection: the heap then stays locked for good (CI once showed
    "MemoryError: memory allocation failed, heap is locked" from the shutdown's log line).
    app.heap_stuck() sees it; run() leaves without allocating (a constant warning, no flush,
    exit status 0) instead of a traceback, also when a task's `finally` turned the
    interrupt into a MemoryError (the loop's exception handler lets that one out); an
    interrupt anywhere else is the orderly shutdown."""
    for how in ("busy", "task"):
        stuck = False
        for i in range(4):  # a SIGINT lands inside a collection nearly every time here
            out, status = _interrupted_run(tmp_path / ("%s%d" % (how, i)), how)
            assert status == 0 and "returned" in out, out
            assert "Traceback" not in out and "Error" not in out, out
            stuck = "as at a power cut" in out
            assert stuck != ("I app: shutdown" in out), out
            if stuck:
                break
        assert stuck, "no SIGINT landed inside a collection in 4 tries (%s)" % how
    out, status = _interrupted_run(tmp_path / "idle", "idle")
    assert status == 0 and "I app: shutdown" in out and "power cut" not in out, out
    assert app.heap_stuck() is False  # CPython: never


def test_a_full_heap_is_not_a_stuck_one(micropython):
    """heap_stuck() tells the heap a SIGINT locked inside a collection from one that is
    merely full (whose error names the size it wanted): a full heap on a board must never
    end the firmware."""
    r = micropython("""
from firmware.app import heap_stuck
x = full = None  # (a new global once the heap is full would need room in the dict)
try:
    while True:
        x = [x, 0, 0, 0]
except MemoryError:
    pass
full = heap_stuck()
x = None
print("stuck" if full else "full, not stuck", heap_stuck())
""", heap="512k")
    assert r.stdout.split() == ["full,", "not", "stuck", "False"], r.stdout + r.stderr


def test_the_task_handler_lets_only_a_stuck_heap_end_the_loop(monkeypatch):
    """A task's MemoryError that cannot even be logged is counted and the loop runs on;
    on a heap locked for good (heap_stuck) it goes out of the loop, for run() to end."""
    def no_room(*a):
        raise MemoryError("memory allocation failed, heap is locked")

    monkeypatch.setattr(log, "failed", no_room)
    before = log.oom
    monkeypatch.setattr(app, "heap_stuck", lambda: False)
    app._exception_handler(None, {"exception": MemoryError(), "message": "m"})
    assert log.oom == before + 1
    monkeypatch.setattr(app, "heap_stuck", lambda: True)
    try:
        app._exception_handler(None, {"exception": MemoryError(), "message": "m"})
    except MemoryError:
        pass
    else:
        raise AssertionError("a stuck heap must end the loop")
    assert log.oom == before + 2
