# ruff: noqa: F821  (freeze/package are provided by MicroPython's makemanifest)
# The firmware frozen into the MicroPython unix port, with the simulator's hardware layer
# (hal/sim.py, hal/serial_unix.py) instead of the ESP32 drivers: what `make image` builds,
# 32-bit, to measure what a frozen ESP32 image pays (tools/mp32.py). main.py stays a file
# outside the image, as on a board. Whole packages, so that moving a module inside
# firmware/ needs no change here; tests_host/test_manifest.py checks the list.
import os

# lib/: generic pieces, imported by file name (import ws, import compat, ...).
freeze("lib")

# The charger firmware: every module under firmware/.
package("firmware")

# The hardware layer's top level: interfaces, meter maps and the simulated hardware; not
# the ESP32 drivers in hal/esp32/ (they import `machine`, which the unix port lacks).
package("hal", files=sorted(n for n in os.listdir("hal") if n.endswith(".py")))
