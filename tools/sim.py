"""`make sim`: the firmware, unchanged, on the MicroPython unix port with simulated hardware.

Starts the demo central system (tools/csms.py) on 127.0.0.1 unless --csms names one, then
runs `micropython main.py` with the data directory standing in for the board's flash.
When the firmware reboots itself (OCPP Reset, firmware update) it exits with status 3 and
is started again on the same data, as a board would. SIGTERM/SIGINT: orderly shutdown.
SIGKILL of the firmware process is a power cut: run `make sim` again on the same DATA.

--micropython BINARY (`make sim MICROPYTHON=…`) runs the firmware on another MicroPython,
e.g. the 32-bit build with the firmware frozen in (`make image`). When the firmware is frozen
into it, the frozen copy runs: only ".frozen" is on MICROPYPATH and main.py puts it first.
"""

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

# The heap the simulator gives the firmware when HEAP is not set. The firmware runs from
# source here (compiled on load), which costs more heap than the .mpy files of a board
# deployment; `make bench` measures the real minimum (min_heap_kib) from .mpy.
DEFAULT_HEAP = "512k"
REBOOT_STATUS = 3


def micropython(exe=""):
    if exe:
        found = shutil.which(exe)
        if not found:
            sys.exit("MicroPython binary not found: %s" % exe)
        return os.path.abspath(found)
    exe = shutil.which("micropython", path=os.path.dirname(sys.executable))
    if not exe:
        sys.exit("micropython not found: run `make venv`")
    return exe


def has_frozen_firmware(exe):
    """True when the firmware is frozen into the MicroPython binary `exe`."""
    env = dict(os.environ, MICROPYPATH=".frozen")
    try:
        r = subprocess.run([exe, "-c", "import firmware.app"], env=env, capture_output=True,
                           cwd="/", timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def firmware_env(data, api_port, csms="", meter="", meter_type="sdm630", meter_addr="1",
                 api_host="127.0.0.1", frozen=False):
    import webpage

    webpage.build()  # the web page from web/index.html, fresh at every start
    env = dict(os.environ)
    path = [".frozen"] if frozen else [".frozen", os.path.join(ROOT, "lib"), ROOT]
    env.update(
        MICROPYPATH=os.pathsep.join(path),
        WB_DATA=os.path.abspath(data),
        WB_API_PORT=str(api_port),
        WB_API_HOST=api_host,
        WB_CSMS=csms,
        WB_METER=meter,
        WB_METER_TYPE=meter_type,
        WB_METER_ADDR=str(meter_addr),
        WB_PAGE=webpage.DEFAULT_OUT,
    )
    return env


def firmware_cmd(heap=None, exe=None):
    main_py = os.path.join(ROOT, "main.py")
    return [exe or micropython(), "-X", "heapsize=" + (heap or DEFAULT_HEAP), main_py]


def _free_port(preferred):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", preferred))
        return preferred
    except OSError:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def start_demo_csms(port=9000):
    """Run the demo central system in a background thread; returns its ws:// base URL."""
    from csms import DemoCSMS

    port = _free_port(port)
    ready = threading.Event()

    def run():
        async def go():
            csms = DemoCSMS()
            await csms.start("127.0.0.1", port)
            ready.set()
            await asyncio.Future()

        asyncio.run(go())

    threading.Thread(target=run, daemon=True).start()
    if not ready.wait(10):
        sys.exit("the demo central system did not start")
    print("sim: demo central system on ws://127.0.0.1:%d/ocpp/" % port, flush=True)
    return "ws://127.0.0.1:%d/ocpp/CP1" % port


def _wait(child, stopping, grace_s=5.0):
    """The child's exit status; once `stopping()`, it gets grace_s to shut down in order."""
    deadline = None
    while True:
        try:
            return child.wait(0.2)
        except subprocess.TimeoutExpired:
            pass
        if stopping():
            if deadline is None:
                deadline = time.monotonic() + grace_s
            elif time.monotonic() > deadline:
                child.kill()


def main():
    ap = argparse.ArgumentParser(description="Run the firmware in the simulator.")
    ap.add_argument("--data", default=".sim/")
    ap.add_argument("--api-port", default="8080")
    ap.add_argument("--csms", default="")
    ap.add_argument("--heap", default="")
    ap.add_argument("--meter", default="")
    ap.add_argument("--meter-type", default="sdm630")
    ap.add_argument("--meter-addr", default="1")
    ap.add_argument("--micropython", default="", help="MicroPython binary (default: the venv's)")
    a = ap.parse_args()

    exe = micropython(a.micropython)
    frozen = has_frozen_firmware(exe)
    if frozen:
        print("sim: the firmware frozen into %s runs (not the source files)" % exe, flush=True)
    os.makedirs(a.data, exist_ok=True)
    csms = a.csms or start_demo_csms()
    env = firmware_env(a.data, a.api_port, csms, a.meter, a.meter_type, a.meter_addr,
                       frozen=frozen)
    print("sim: firmware data in %s, local API on http://127.0.0.1:%s/api/status"
          % (os.path.abspath(a.data), a.api_port), flush=True)
    print("sim: web page on http://127.0.0.1:%s/ (plug in a car there)" % a.api_port,
          flush=True)
    child = None
    stopping = False

    def stop(signum, frame):
        # SIGINT is the firmware's orderly shutdown on the unix port (KeyboardInterrupt:
        # settings kept in RAM are written); the MicroPython unix port cannot catch SIGTERM.
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        child = subprocess.Popen(firmware_cmd(a.heap, exe), env=env, cwd=ROOT)
        status = _wait(child, lambda: stopping)
        if stopping:
            return 0
        if status == REBOOT_STATUS:
            print("sim: firmware rebooting", flush=True)
            time.sleep(0.2)
            continue
        print("sim: firmware exited with status %d" % status, flush=True)
        return status


if __name__ == "__main__":
    sys.exit(main())
