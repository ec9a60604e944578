"""`make bench`: the performance table of CONTRACT.md §5, one figure a row: name value unit.

- mpy_bytes: total size of the .mpy files `make deploy` copies (tools/build.py).
- data_bytes: the other files it copies (the gzipped web page, lib/texts.bin: the texts the
  modules read from flash, tools/build.py flash_texts()).
- min_heap_kib: the smallest -X heapsize (4 KiB steps) at which the reference scenario
  passes on the MicroPython unix port with the firmware loaded from those .mpy files.
- code_heap_kib: heap held by the firmware's imported modules (from .mpy) once loaded.
- data_heap_kib: min_heap_kib - code_heap_kib.
- trip_to_open_ms: simulated time from an RCD trip / the car leaving C to the relay opening.
- journal_writes_per_session: flash writes of the transaction journal in one session.
- rtt_ms_*: see tools/rtt.py (firmware vs the `ocpp` package's charge point).
- heap32_frozen_kib / heap32_mpy_kib: min_heap_kib on the official unix port built 32-bit
  (the ESP32's word size; tools/mp32.py), with the firmware frozen into the binary
  (manifest_unix.py) / loaded from 32-bit .mpy files (mpy-cross -march=x86).
- heap32_static_kib: heap held once every module of that frozen build is imported (module
  dicts, function and class objects, module-level data; with --detail, per module).
  The 32-bit rows say `skipped` where ../shared/tools/micropython32/build is absent.

Reference scenario: boot, BootNotification accepted, three heartbeats, plug in, present a
card, charge at 16 A for a minute with meter values every 10 s, unplug, until the central
system has StartTransaction, MeterValues and StopTransaction (the demo central system).
While the car charges (after StartTransaction) the central system sends the peaks it can
cause at any moment, one after the other, each answered before the next (tools/peaks.py):
GetConfiguration of every key; SetChargingProfile (TxProfile, 24 periods),
GetCompositeSchedule for a day, ClearChargingProfile; SendLocalList Full of 32 cards;
TriggerMessage StatusNotification; a DataTransfer whose frame is 16,380 bytes (the websocket
cap is 16 KiB); UpdateFirmware of a bundle downloaded whole and refused for a corrupt file
(DownloadFailed; nothing installed, no reboot); GetDiagnostics uploaded over HTTP;
ReserveNow (Occupied); InstallCertificate of a 5,480-character root; a key and CSR made on
the charger (ExtendedTriggerMessage SignChargePointCertificate) and CertificateSigned with
a 5,590-character chain. After the session: ReserveNow of the station, CancelReservation.
It passes when every peak got a CALLRESULT with the expected status (the fail string names
the request: "fail: DataTransfer got InternalError (out of memory)"), the transaction
arrived whole with energy, and no MemoryError was logged. The charge lasts the minute (12 s
with --quick) from the moment the car draws power, the peaks (about a second) included.
`python tools/peaks.py [--frozen32|--mpy32] [NAME...]` finds the heap each peak needs alone.

    python tools/bench.py [--only NAME,...] [--detail] [--quick] [--readme]

--only runs the rows whose name starts with one of the names (mpy_bytes, min_heap, heap32,
heap32_frozen, heap32_mpy, heap32_static, trip, rtt). --quick: the heap bisections with a 12 s
charge and without the full-minute check (a developer's estimate; not for --readme).
--readme writes the rows measured into README.md's table (the others stay as they were).
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
import mp32  # noqa: E402

BOARD = os.path.join(ROOT, "build", "board")
BOARD32 = os.path.join(ROOT, "build", "board32")  # .mpy files for the 32-bit unix port
rows = []
LAST = {}  # figures of the last passing scenario; "below": the last fail of a bisection
QUICK = {"on": False}


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
    """Plug in, present a card, charge at 16 A with meter values while the central system
    sends its peaks (tools/peaks.py), unplug; the central system must have the whole
    transaction (Start, MeterValues, Stop) in the end, and an answer to every peak."""
    import peaks

    pk = peaks.Peaks(csms, fw)
    try:
        return _charging(fw, csms, charge_s, pk)
    finally:
        pk.close()


def _charging(fw, csms, charge_s, pk):
    c = csms.csms
    code, body = fw.set(ocppi=10)  # MeterValueSampleInterval: six readings a minute
    if code != 200:
        return "fail: %r" % (body,)
    fw.sim(cp="B")
    fw.sim(card="BENCH001")
    fw.sim(cp="C", load=16)
    fw.wait_status(lambda s: s["car"] == 2, keys=("car",), timeout=30)
    t0 = time.monotonic()
    csms.wait_for(lambda: "StartTransaction" in c.actions(), timeout=30)
    r = pk.during(c.next_tx_id)  # the demo central system's ids count up: this session's
    if r is not True:
        return r
    LAST["peaks_s"] = dict(pk.seconds)
    time.sleep(max(0.0, charge_s - (time.monotonic() - t0)))
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
    return pk.after()


def from_mpy(board, exe=None):
    """Where the firmware runs from: main.py and the .mpy files of `board`, on `exe`. It
    runs in `board` with `lib` on its path, as a board's `/lib`: each module's __file__,
    a qstr kept for good, is as long as on the board (from the checkout's path it was 20-50
    characters more a module, ~100 modules: a figure that changed with where the
    repository lies)."""

    def setup(fw):
        fw.main_py = os.path.join(board, "main.py")
        fw.mp_path = "lib"
        fw.cwd = board
        fw.exe = exe

    return setup


def frozen_in(exe):
    """The firmware frozen into the binary `exe`; main.py from the repository."""

    def setup(fw):
        fw.exe = exe
        fw.frozen = True

    return setup


def run_scenario(heap_kib, charge_s=15, timeout=120, setup=None):
    """Run the reference scenario at the given heap size, by default with the firmware from
    the 64-bit .mpy files."""
    from e2e import CsmsThread, Firmware

    csms = CsmsThread(heartbeat_interval=1)
    csms.start()
    data = tempfile.mkdtemp(prefix="bench-")
    fw = Firmware(data, csms.url(), heap="%dk" % heap_kib)
    (setup or from_mpy(BOARD))(fw)
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
    origin = fw.firmware_from()
    if fw.frozen and (origin is None or origin.startswith("/")):
        return "fail: the firmware ran from %s, not frozen" % origin
    return True


def min_heap_kib(lo=16, hi=1024, setup=None):
    """Bisection in 4 KiB steps with a 15 s charge, then the full minute at the result
    (stepping up 4 KiB at a time until it passes); `hi` must pass. --quick: a 12 s charge and
    no full minute (meter values every 10 s: one or two)."""
    charge_s = 12 if QUICK["on"] else 15
    LAST.pop("below", None)
    ok = run_scenario(hi, charge_s, setup=setup)
    if ok is not True:
        raise RuntimeError("reference scenario fails even at %d KiB: %s" % (hi, ok))
    lo = lo // 4
    hi = hi // 4
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = run_scenario(mid * 4, charge_s, setup=setup)
        print("  heap %4d KiB: %s" % (mid * 4, "pass" if r is True else r), flush=True)
        if r is True:
            hi = mid
        else:
            lo = mid
            LAST["below"] = r  # what fails at the largest heap found failing
    while not QUICK["on"]:
        r = run_scenario(hi * 4, charge_s=60, setup=setup)
        print("  heap %4d KiB, full minute: %s" % (hi * 4, "pass" if r is True else r),
              flush=True)
        if r is True:
            return hi * 4
        LAST["below"] = r
        hi += 1
    return hi * 4


def heap32(only, detail):
    """The 32-bit rows (tools/mp32.py): `skipped` without the build script."""
    names = [n for n in ("heap32_static_kib", "heap32_frozen_kib", "heap32_mpy_kib")
             if wanted(n, only)]
    if not names:
        return
    reason = mp32.skip_reason()
    if reason:
        print("(32-bit rows skipped: %s)" % reason)
        for n in names:
            row(n, "skipped", "KiB")
        return
    if "heap32_static_kib" in names or "heap32_frozen_kib" in names:
        frozen = mp32.frozen()
    if "heap32_static_kib" in names:
        total, mods = mp32.static_heap(frozen)
        row("heap32_static_kib", "%.1f" % (total / 1024), "KiB")
        if detail:
            for name, size, ours in sorted(mods, key=lambda m: (-m[1], m[0])):
                if size:
                    label = name if ours else name + " (MicroPython)"
                    print("  %-44s %6.1f KiB" % (label, size / 1024))
    if "heap32_frozen_kib" in names:
        row("heap32_frozen_kib", heap32_min(frozen_in(frozen), 1024), "KiB")
    if "heap32_mpy_kib" in names:
        exe = mp32.plain()
        build.compile_all(BOARD32, mp32.MARCH)
        build.compile_files(build.host_files(), BOARD32, mp32.MARCH)
        row("heap32_mpy_kib", heap32_min(from_mpy(BOARD32, exe), 1024), "KiB")


def heap32_min(setup, hi):
    try:
        return min_heap_kib(hi=hi, setup=setup)
    except RuntimeError as e:
        print("  %s" % e, flush=True)
        return ">%d" % hi


def wanted(name, only):
    return not only or any(name.startswith(o) for o in only)


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="comma-separated row names or prefixes")
    ap.add_argument("--detail", action="store_true", help="static heap of each module")
    ap.add_argument("--quick", action="store_true", help="shorter heap bisections")
    ap.add_argument("--readme", action="store_true", help="write the rows into README.md")
    a = ap.parse_args()
    only = [o.strip() for o in a.only.split(",") if o.strip()]
    if a.quick and a.readme:
        sys.exit("--quick figures are estimates: not for --readme")
    QUICK["on"] = a.quick
    t0 = time.monotonic()
    total = build.compile_all(BOARD)
    if wanted("mpy_bytes", only):
        row("mpy_bytes", total, "bytes")
        # The other files make deploy copies (the gzipped web page, the texts the modules
        # read from flash): flash, not heap.
        row("data_bytes", sum(os.path.getsize(os.path.join(BOARD, d)) for d in
                              [build.FLASH_TEXTS] + [d for _, d in build.data_files()]), "bytes")
    # The simulator's own modules (not deployed, not counted) for running from .mpy here.
    build.compile_files(build.host_files(), BOARD, "x64")
    if wanted("min_heap_kib", only) or wanted("code_heap_kib", only):
        code = code_heap_kib()
        row("code_heap_kib", "%.1f" % code, "KiB")
        mh = min_heap_kib()
        row("min_heap_kib", mh, "KiB")
        row("data_heap_kib", "%.1f" % (mh - code), "KiB")
        if LAST.get("journal_writes") is not None:
            row("journal_writes_per_session", LAST["journal_writes"], "writes")

    heap32(only, a.detail)

    if wanted("trip_to_open_ms", only):
        import trip_bench

        trips = trip_bench.measure(runs=20)
        for name in sorted(trips):
            row(name, trips[name], "ms")

    if wanted("rtt_ms", only):
        import rtt

        for name, value, unit in rtt.measure(n=200):
            row(name, value, unit)
    print("(bench took %.0f s)" % (time.monotonic() - t0))
    if a.readme:
        write_readme()


def write_readme():
    """Put the rows of this run into README.md's table between its bench markers; rows not
    measured in this run keep their values."""
    start, end = "<!-- bench -->", "<!-- /bench -->"
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        text = f.read()
    i = text.index(start) + len(start)
    j = text.index(end)
    table = []
    for line in text[i:j].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            table.append((cells[0].strip("`"), cells[1], cells[2]))
    new = {r[0]: r for r in rows}
    merged = [new.pop(r[0], r) for r in table]
    merged += [r for r in rows if r[0] in new]
    lines = ["| figure | value | unit |", "| --- | --- | --- |"]
    lines += ["| `%s` | %s | %s |" % r for r in merged]
    with open(path, "w") as f:
        f.write(text[:i] + "\n" + "\n".join(lines) + "\n" + text[j:])


if __name__ == "__main__":
    main()
