"""App wiring: a core task that fails is logged and started again, never left dead."""

import asyncio

import log
from firmware import app


def test_a_failing_core_task_is_restarted(monkeypatch):
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
        task = asyncio.create_task(app._keep("session", flaky))
        for _ in range(100):
            await asyncio.sleep(0.005)
            if len(runs) >= 3:
                break
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    assert len(runs) == 3
    assert any("MemoryError" in t for lv, tag, t in lines if lv == "E" and tag == "app")

