"""`make bench`: the performance table of CONTRACT.md §5, one figure a row: name value unit.

- mpy_bytes: total size of the .mpy files `make deploy` copies (tools/build.py).
- data_bytes: the other files it copies (the gzipped web page).
- min_heap_kib: the smallest -X heapsize (4 KiB steps) at which the reference scenario
  passes on the MicroPython unix port with the firmware loaded from those .mpy files.
- code_heap_kib: heap held by the firmware's imported modules (from .mpy) once loaded.
- data_heap_kib: min_heap_kib - code_heap_kib.
- trip_to_open_ms: simulated time from an RCD trip / the car leaving C to the relay opening.
- journal_writes_per_session: flash writes of the transaction journal in one session.
- rtt_ms_*: see tools/rtt.py (firmware vs the `ocpp` package's charge point).

Reference scenario: boot, BootNotification accepted, three heartbeats, plug in, present a
card, charge at 16 A for a minute with meter values every 10 s, unplug, until the central
system has StartTransaction, MeterValues and StopTransaction (the demo central system).
"""

import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests_host"))

import build  # noqa: E402

BOARD = os.path.join(ROOT, "build", "board")
rows = []
LAST = {}  # figures of the last passing full scenario


def row(name, value, unit):
    rows.append((name, value, unit))
    print("%-28s %10s %s" % (name, value, unit), flush=True)


def mp_env_board():
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([".frozen", os.path.join(BOARD, "lib")])
    return env


def code_heap_kib():
    """Heap taken by importing every firmware module from .mpy (after a collect)."""
    mods = []
    for _src, dst in build.board_files():
        if dst.startswith("lib/") and not dst.endswith("__init__.mpy"):
            mods.append(dst[4:-4].replace("/", "."))
    # hal.esp32 drivers import `machine`: the unix port cannot load them; they are not
    # part of the simulator's footprint either, so they are left out here.
    mods = [m for m in mods if not m.startswith("hal.esp32")]
    code = (
        "import gc, asyncio, json\n"
        "gc.collect(); a = gc.mem_alloc()\n"
        "for m in %r:\n"
        "    __import__(m)\n"
        "gc.collect(); print((gc.mem_alloc() - a) / 1024)\n" % (mods,)
    )
    r = subprocess.run(
        [micropython(), "-X", "heapsize=4m", "-c", code],
        capture_output=True, text=True, env=mp_env_board(), cwd=BOARD, timeout=60,
    )
    if r.returncode != 0:
        raise RuntimeError("code heap measurement failed: " + r.stdout + r.stderr)
    return float(r.stdout.strip().splitlines()[-1])


def micropython():
    import shutil

    return shutil.which("micropython", path=os.path.dirname(sys.executable))


def charging_scenario(fw, csms, charge_s):
    """Plug in, present a card, charge at 16 A with meter values, unplug; the central
    system must have the whole transaction (Start, MeterValues, Stop) in the end."""
    c = csms.csms
    code, body = fw.set(ocppi=10)  # MeterValueSampleInterval: six readings a minute
    if code != 200:
        return "fail: %r" % (body,)
    fw.sim(cp="B")
    fw.sim(card="BENCH001")
    fw.sim(cp="C", load=16)
    fw.wait_status(lambda s: s["car"] == 2, keys=("car",), timeout=30)
    time.sleep(charge_s)
    fw.sim(cp="B")
    fw.sim(cp="A")
    csms.wait_for(lambda: "StopTransaction" in c.actions(), timeout=60)
    starts = [p for _, a, p in c.received if a == "StartTransaction"]
    stops = [p for _, a, p in c.received if a == "StopTransaction"]
    mvs = [p for _, a, p in c.received if a == "MeterValues" and "transactionId" in p]
    if len(starts) != 1 or len(stops) != 1 or not mvs:
        return "fail: %d starts, %d stops, %d meter values" % (len(starts), len(stops), len(mvs))
    if stops[0]["meterStop"] <= starts[0]["meterStart"]:
        return "fail: no energy charged"
    # Flash writes of the transaction journal for this session (the transactions feature's
    # `jw` key, known once the Stop is acknowledged).
    st = fw.wait_status(lambda s: s.get("jw") is not None, keys=("jw",), timeout=30)
    LAST["journal_writes"] = st["jw"]
    return True


def run_scenario(heap_kib, charge_s=15, timeout=120):
    """Run the reference scenario with the firmware from .mpy at the given heap size."""
    from e2e import CsmsThread, Firmware

    csms = CsmsThread(heartbeat_interval=1)
    csms.start()
    data = tempfile.mkdtemp(prefix="bench-")
    fw = Firmware(data, csms.url(), heap="%dk" % heap_kib)
    fw.main_py = os.path.join(BOARD, "main.py")
    fw.mp_path = os.path.join(BOARD, "lib")
    try:
        fw.start()
        return scenario(fw, csms, charge_s)
    except Exception as e:  # a too-small heap fails in many ways; all mean "did not pass"
        return "fail: %r" % (e,)
    finally:
        fw.stop()
        csms.close()


def scenario(fw, csms, charge_s):
    c = csms.csms
    fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=30)
    csms.wait_for(lambda: c.actions().count("Heartbeat") >= 3, timeout=30)
    r = charging_scenario(fw, csms, charge_s)
    if r is not True:
        return r
    if fw.proc.poll() is not None:
        return "fail: firmware exited"
    if any("MemoryError" in line for line in fw.lines):
        return "fail: MemoryError"
    return True


def min_heap_kib(lo=16, hi=1024):
    """Bisection in 4 KiB steps with a 15 s charge, then the full minute at the result
    (stepping up 4 KiB at a time until it passes); `hi` must pass."""
    ok = run_scenario(hi)
    if ok is not True:
        raise RuntimeError("reference scenario fails even at %d KiB: %s" % (hi, ok))
    lo = lo // 4
    hi = hi // 4
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = run_scenario(mid * 4)
        print("  heap %4d KiB: %s" % (mid * 4, "pass" if r is True else r), flush=True)
        if r is True:
            hi = mid
        else:
            lo = mid
    while True:
        r = run_scenario(hi * 4, charge_s=60)
        print("  heap %4d KiB, full minute: %s" % (hi * 4, "pass" if r is True else r),
              flush=True)
        if r is True:
            return hi * 4
        hi += 1


def main():
    t0 = time.monotonic()
    total = build.compile_all(BOARD)
    row("mpy_bytes", total, "bytes")
    # The data files make deploy copies besides (the gzipped web page): flash, not heap.
    row("data_bytes", sum(os.path.getsize(os.path.join(BOARD, d)) for _, d in build.data_files()),
        "bytes")
    # The simulator's own modules (not deployed, not counted) for running from .mpy here.
    build.compile_files(build.host_files(), BOARD, "x64")
    code = code_heap_kib()
    row("code_heap_kib", "%.1f" % code, "KiB")
    mh = min_heap_kib()
    row("min_heap_kib", mh, "KiB")
    row("data_heap_kib", "%.1f" % (mh - code), "KiB")
    if LAST.get("journal_writes") is not None:
        row("journal_writes_per_session", LAST["journal_writes"], "writes")

    import trip_bench

    trips = trip_bench.measure(runs=20)
    for name in sorted(trips):
        row(name, trips[name], "ms")

    import rtt

    for name, value, unit in rtt.measure(n=200):
        row(name, value, unit)
    print("(bench took %.0f s)" % (time.monotonic() - t0))
    if "--readme" in sys.argv:
        write_readme()


def write_readme():
    """Put the table of this run into README.md between its bench markers."""
    start, end = "<!-- bench -->", "<!-- /bench -->"
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        text = f.read()
    lines = ["| figure | value | unit |", "| --- | --- | --- |"]
    lines += ["| `%s` | %s | %s |" % r for r in rows]
    i = text.index(start) + len(start)
    j = text.index(end)
    with open(path, "w") as f:
        f.write(text[:i] + "\n" + "\n".join(lines) + "\n" + text[j:])


if __name__ == "__main__":
    main()
