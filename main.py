# main.py: entry point on the board and in the simulator. It stays this small because it is
# the one module MicroPython compiles from source onto the heap, frozen image or not: the
# launchers it calls (hal/esp32/board.py main(): real drivers, WiFi, machine.reset for a
# reboot; hal/sim.py main(): the simulated car and meter, WB_* environment variables, exit
# status 3 for a reboot so that tools/sim.py starts the firmware again on the same data)
# are frozen or .mpy modules like the rest.
import sys

# An image with the firmware frozen in runs that frozen copy, not source files that happen
# to lie beside this script (MicroPython puts the script's folder first on sys.path).
if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")


def _launch(data, start, reboot):
    # Before any other import: the A/B slot of an installed update (lib/slots.py), so the
    # launcher and everything it imports come from that slot. A slot on trial that fails to
    # start reboots, which counts as one of its failed boots.
    import slots

    trial = not slots.boot(data).get("ok")
    # Let go (0.4 KiB 32-bit): this frame lives as long as the firmware runs; the firmware
    # update imports it anew when it needs it.
    del sys.modules["slots"], slots
    # The text constants of the modules that stay loaded, interned before any of them loads,
    # the launcher too (lib/compat.py intern_texts).
    __import__("compat").intern_texts(start != "hal.sim")
    try:
        __import__(start, None, None, ("main",)).main(data)
    except Exception as e:
        if not trial:
            raise
        print("E main: the slot on trial failed:", repr(e))
        reboot()


if sys.platform == "esp32":
    import machine

    _launch("/", "hal.esp32.board", machine.reset)
else:
    import os

    _data = os.getenv("WB_DATA") or ".sim"
    try:
        os.mkdir(_data)
    except OSError:
        pass
    _launch(_data, "hal.sim", lambda: sys.exit(3))
