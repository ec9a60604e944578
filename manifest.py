# ruff: noqa: F821  (include/freeze/package are provided by MicroPython's makemanifest)
# Freeze the firmware into a MicroPython image: the deployment that fits a board without
# PSRAM, since frozen bytecode runs from flash instead of the heap. With ESP-IDF set up:
#
#   make image MPY_DIR=/path/to/micropython BOARD=ESP32_GENERIC
#   (= make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/this/manifest.py)
#
# Then copy only boot.py, main.py and the web page to the board: the page is a data file
# (lib/web/index.html.gz, read from flash in pieces), which a manifest cannot freeze:
#
#   make mpy && python tools/build.py deploy --frozen --port /dev/ttyUSB0
# tests_host/test_manifest.py checks that this freezes exactly what `make deploy` copies.
include("$(PORT_DIR)/boards/manifest.py")

# lib/: generic pieces, imported by file name (import ws, import compat, ...).
freeze("lib")

# The charger firmware: every module under firmware/.
package("firmware")

# The hardware layer without the host-only parts (hal/sim.py, hal/serial_unix.py).
package(
    "hal",
    files=[
        "__init__.py",
        "base.py",
        "meters.py",
        "esp32/__init__.py",
        "esp32/board.py",
        "esp32/board_config.py",
        "esp32/lock.py",
        "esp32/meter.py",
        "esp32/ota.py",
        "esp32/pilot.py",
        "esp32/pilot_viper.py",
        "esp32/rcd.py",
        "esp32/reader.py",
        "esp32/relay.py",
        "esp32/temp.py",
        "esp32/wdt.py",
    ],
)
