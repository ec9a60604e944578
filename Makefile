# Open wallbox firmware: MicroPython on ESP32, OCPP 1.6J.
# `make test` and `make sim` are the two commands a newcomer needs.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= /dev/ttyUSB0
DATA ?= .sim/
API_PORT ?= 8080
CSMS ?=
HEAP ?=
METER ?=
METER_TYPE ?= sdm630
METER_ADDR ?= 1
VERSION ?=
RELEASE_DIR ?= build/release
MICROPYTHON ?=
BENCH_ARGS ?=
MPY_DIR ?=
BOARD ?= ESP32_GENERIC
# mpy-cross -O level of every .mpy built (tools/build.py OPT): 0 keeps line numbers in
# tracebacks, at ~6 KB of heap on a board running from .mpy files.
MPY_OPT ?= 3
export MPY_OPT

.PHONY: all test lint typecheck pytest mpy sim bench image deploy repl setup clean release browser

all: test

$(STAMP): requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP) lint typecheck mpy pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/python tools/typecheck.py

mpy: $(STAMP)
	$(BIN)/python tools/build.py mpy build/board

# Most of the suite's wall time is the firmware's own real-time waits (meter intervals,
# reconnect backoffs, power cuts at random moments), not CPU: pytest-xdist workers overlap
# them, more workers than cores. Every test already uses free ports and its own temporary
# directories. PYTEST_WORKERS=0 runs it in one process (to see prints with -s, or to debug).
PYTEST_WORKERS ?= 4

pytest: $(STAMP) browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

# Debian's chromium and chromium-driver for the web page test (tests_host/test_web_browser.py),
# installed with apt-get when missing; where that cannot be done it prints why and the test
# is skipped with the same reason.
browser: $(STAMP)
	$(BIN)/python tools/browser.py install

sim: $(STAMP)
	$(BIN)/python tools/sim.py --data "$(DATA)" --api-port "$(API_PORT)" \
		--csms "$(CSMS)" --heap "$(HEAP)" --meter "$(METER)" \
		--meter-type "$(METER_TYPE)" --meter-addr "$(METER_ADDR)" \
		--micropython "$(MICROPYTHON)"

# make bench [BENCH_ARGS="--only heap32 --detail"]  (python tools/bench.py --help)
bench: $(STAMP)
	$(BIN)/python tools/bench.py $(BENCH_ARGS)

# The firmware frozen into a MicroPython image. Without MPY_DIR: the unix port, 32-bit, with
# the simulator's hardware (manifest_unix.py), into build/mp32-frozen/micropython; run it
# with make sim MICROPYTHON=build/mp32-frozen/micropython. With MPY_DIR=<a MicroPython
# checkout> (and ESP-IDF set up): the ESP32 image of BOARD with manifest.py, by the port's own
# make; flash it as that port says, then copy only boot.py and main.py.
image: $(STAMP)
ifeq ($(MPY_DIR),)
	$(BIN)/python tools/mp32.py image
else
	$(MAKE) -C "$(MPY_DIR)/ports/esp32" BOARD="$(BOARD)" FROZEN_MANIFEST="$(CURDIR)/manifest.py"
endif

deploy: $(STAMP) mpy
	$(BIN)/python tools/build.py deploy build/board --port "$(PORT)"

# The UpdateFirmware bundle (lib/bundle.py reads it); its path is the last line printed.
release: $(STAMP)
	$(BIN)/python tools/release.py --version "$(VERSION)" --out "$(RELEASE_DIR)"

repl: $(STAMP)
	$(BIN)/mpremote connect "$(PORT)" repl

# First-time setup of a board: make setup PORT=... WIFI_SSID=... WIFI_PASS=... OCPP_URL=... API_PASS=...
setup: $(STAMP)
	$(BIN)/python tools/setup_board.py --port "$(PORT)" --ssid "$(WIFI_SSID)" \
		--wifi-pass "$(WIFI_PASS)" --ocpp-url "$(OCPP_URL)" --api-pass "$(API_PASS)"

clean:
	rm -rf build .pytest_cache .hypothesis .mypy_cache .ruff_cache
