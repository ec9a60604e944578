"""firmware/evse/faultlog.py: the charger's fault counters survive reboots; written atomically,
only when changed, at most once a minute, never while energised. Fake clock throughout; the
counts come from the real Charger on the simulated hardware."""

import json
import os

import pytest
from conftest import mp_run

import log
from firmware.evse import faultlog
from firmware.evse.charger import Charger
from hal.sim import SimHal


class Clock:
    def __init__(self):
        self.t = 0

    def __call__(self):
        return self.t


class Defaults:
    def get(self, name):
        return None


def charger(clock):
    hal = SimHal(now_ms=clock)
    c = Charger(hal, Defaults(), now_ms=clock)
    c.auth_required = False
    return c


def trip_rcd(c, clock):
    """An RCD trip seen by the charger's safety tick, then the deliberate reset."""
    c.hal.control({"rcd": "trip"})
    for _ in range(3):
        clock.t += 20
        c.tick()
    c.hal.control({"rcd": "ok"})
    assert c.reset_fault()
    clock.t += 20
    c.tick()


def stored(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / faultlog.FILE)


def test_counts_survive_a_reboot(path):
    clock = Clock()
    c = charger(clock)
    fl = faultlog.FaultLog(c.counters, path, now_ms=clock)
    fl.load()
    trip_rcd(c, clock)
    assert c.counters == {"rcd_trips": 1, "welds": 0, "rcd_resets": 1}
    assert fl.step(c.energized) is True
    assert stored(path) == {"rcd_trips": 1, "welds": 0, "rcd_resets": 1}

    # Reboot: a new charger on the same data starts from the stored counts and adds to them.
    clock2 = Clock()
    c2 = charger(clock2)
    fl2 = faultlog.FaultLog(c2.counters, path, now_ms=clock2)
    assert fl2.load() is c2.counters
    assert c2.counters == {"rcd_trips": 1, "welds": 0, "rcd_resets": 1}
    trip_rcd(c2, clock2)
    assert fl2.step() is True
    assert stored(path) == {"rcd_trips": 2, "welds": 0, "rcd_resets": 2}
    assert [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")] == []


def test_no_write_without_a_change(path):
    clock = Clock()
    fl = faultlog.FaultLog({"rcd_trips": 0, "welds": 0}, path, now_ms=clock)
    fl.load()
    for _ in range(5):
        clock.t += 120000
        assert fl.step() is False
    assert not os.path.exists(path) and fl.writes == 0
    # A stored file is not rewritten at boot either.
    with open(path, "w") as f:
        f.write('{"welds": 3}')
    fl2 = faultlog.FaultLog({"rcd_trips": 0, "welds": 0}, path, now_ms=clock)
    assert fl2.load() == {"rcd_trips": 0, "welds": 3}
    os.remove(path)
    clock.t += 120000
    assert fl2.step() is False and not os.path.exists(path)


def test_at_most_one_write_a_minute(path):
    clock = Clock()
    counters = {"rcd_trips": 0, "welds": 0}
    fl = faultlog.FaultLog(counters, path, now_ms=clock)
    fl.load()
    counters["welds"] += 1
    assert fl.step() is True  # the first change goes out at once
    for k in range(1, 6):
        clock.t += 10000
        counters["rcd_trips"] += 1
        assert fl.step() is False, k  # within the minute: only RAM
    assert stored(path) == {"rcd_trips": 0, "welds": 1}
    clock.t += 10000  # 60 s after the first write
    assert fl.step() is True
    assert stored(path) == {"rcd_trips": 5, "welds": 1}
    assert fl.writes == 2


def test_the_minute_survives_the_ticks_ms_wrap(path):
    period = 1 << 30
    clock = Clock()
    clock.t = period - 1000
    counters = {"welds": 0}
    fl = faultlog.FaultLog(counters, path, now_ms=clock)
    counters["welds"] = 1
    assert fl.step() is True
    counters["welds"] = 2
    clock.t = 20000  # wrapped: 21 s later
    assert fl.step() is False
    clock.t = 59000  # 60 s later
    assert fl.step() is True and stored(path) == {"welds": 2}


def test_never_writes_while_energised(path):
    clock = Clock()
    counters = {"rcd_trips": 0}
    fl = faultlog.FaultLog(counters, path, now_ms=clock)
    counters["rcd_trips"] = 1
    for _ in range(3):
        clock.t += 120000
        assert fl.step(energized=True) is False
    assert not os.path.exists(path)
    assert fl.step(energized=False) is True
    assert stored(path) == {"rcd_trips": 1}


def test_corrupt_or_foreign_file_counts_as_nothing_and_is_repaired(path, monkeypatch):
    errors = []
    monkeypatch.setattr(log, "error", lambda *a: errors.append(a))
    with open(path, "w") as f:
        f.write('{"rcd_trips": 4, "welds')
    counters = {"rcd_trips": 0, "welds": 0}
    fl = faultlog.FaultLog(counters, path, now_ms=Clock())
    assert fl.load() == {"rcd_trips": 0, "welds": 0}
    assert errors  # reported, not raised
    counters["welds"] = 1
    assert fl.step() is True and stored(path) == {"rcd_trips": 0, "welds": 1}

    # Bad values are ignored, unknown counters (a newer firmware's) are kept.
    with open(path, "w") as f:
        json.dump({"rcd_trips": -2, "welds": True, "miss": 2, "x": "y", "rcd_resets": 1.5}, f)
    c2 = {"rcd_trips": 0, "welds": 0, "rcd_resets": 0}
    faultlog.FaultLog(c2, path).load()
    assert c2 == {"rcd_trips": 0, "welds": 0, "rcd_resets": 0, "miss": 2}
    with open(path, "w") as f:
        f.write("[1, 2]")
    c3 = {"welds": 0}
    faultlog.FaultLog(c3, path).load()
    assert c3 == {"welds": 0}


def test_failed_write_is_retried_a_minute_later(tmp_path, monkeypatch):
    errors = []
    monkeypatch.setattr(log, "error", lambda *a: errors.append(a))
    clock = Clock()
    counters = {"welds": 0}
    bad = str(tmp_path / "missing-dir" / faultlog.FILE)  # the write raises OSError
    fl = faultlog.FaultLog(counters, bad, now_ms=clock)
    counters["welds"] = 1
    assert fl.step() is False and errors
    fl.path = str(tmp_path / faultlog.FILE)
    clock.t += 30000
    assert fl.step() is False  # not hammering the flash
    clock.t += 30000
    assert fl.step() is True and stored(fl.path) == {"welds": 1}


class _CP:
    def __init__(self, data_dir, c):
        self.data_dir = data_dir
        self.charger = c


def test_attach_loads_at_boot_and_save_writes_a_change(tmp_path):
    with open(str(tmp_path / faultlog.FILE), "w") as f:
        json.dump({"rcd_trips": 7, "welds": 1, "rcd_resets": 3}, f)
    clock = Clock()
    c = charger(clock)
    cp = _CP(str(tmp_path) + "/", c)
    assert faultlog.attach(cp) == []  # no task: the app's housekeeping asks (app._faults)
    assert c.counters == {"rcd_trips": 7, "welds": 1, "rcd_resets": 3}
    assert cp.faultlog[0] == c.counters and cp.faultlog[0] is not c.counters
    assert not faultlog.save(cp)  # nothing new
    c.counters["welds"] += 1
    assert faultlog.save(cp)
    assert stored(str(tmp_path / faultlog.FILE))["welds"] == 2
    c.counters["welds"] += 1
    assert not faultlog.save(cp)  # a minute between writes, kept in the state
    assert stored(str(tmp_path / faultlog.FILE))["welds"] == 2
    assert cp.faultlog[2] == 1


class _Ch:
    def __init__(self):
        self.counters = {"rcd_trips": 0, "welds": 0, "rcd_resets": 0}
        self.energized = False


def test_the_app_loads_the_module_only_for_a_change_it_may_write(tmp_path, monkeypatch):
    """app._faults (every second): nothing of firmware/evse/faultlog.py is imported while the
    counts are as written, while the contactor is closed or within the minute after a
    write; for a change it may write, the module is imported, writes and goes again."""
    import builtins
    import sys

    import firmware.evse
    from compat import ticks_add, ticks_ms
    from firmware import app

    name = "firmware.evse.faultlog"
    monkeypatch.setitem(sys.modules, name, faultlog)  # put back as it was afterwards
    # (raising=False: app.attach in an earlier test may have let it go, router.forget)
    monkeypatch.setattr(firmware.evse, "faultlog", faultlog, raising=False)
    imports = []
    real_import = builtins.__import__

    def spy(mod, *a, **k):
        fromlist = (a[2] if len(a) > 2 else k.get("fromlist")) or ()
        if mod == name or (mod == "firmware.evse" and "faultlog" in fromlist):
            imports.append(mod)
        return real_import(mod, *a, **k)

    monkeypatch.setattr(builtins, "__import__", spy)
    path = str(tmp_path / faultlog.FILE)
    cp = _CP(str(tmp_path) + "/", _Ch())
    faultlog.attach(cp)
    sys.modules.pop(name)  # as app.attach leaves it
    ch = cp.charger
    app._faults(cp, ticks_ms())
    assert imports == [] and not os.path.exists(path)
    ch.counters["rcd_trips"] += 1
    ch.energized = True
    app._faults(cp, ticks_ms())
    assert imports == [] and not os.path.exists(path)
    ch.energized = False
    app._faults(cp, ticks_ms())
    assert len(imports) == 1 and name not in sys.modules and stored(path)["rcd_trips"] == 1
    ch.counters["welds"] += 1
    app._faults(cp, ticks_ms())  # within the minute: not even imported
    assert len(imports) == 1 and stored(path)["welds"] == 0
    cp.faultlog[1] = ticks_add(ticks_ms(), -1)  # the minute is over
    app._faults(cp, ticks_ms())
    assert len(imports) == 2 and name not in sys.modules and stored(path)["welds"] == 1
    assert cp.faultlog[1] is not None  # a write: the next minute starts
    # Weeks later (far past a ticks wrap): the minute was cleared as soon as it was over.
    cp.faultlog[1] = ticks_add(ticks_ms(), -1)
    app._faults(cp, ticks_ms())
    assert cp.faultlog[1] is None and len(imports) == 2


_MP = """
import json, os
from firmware.evse import faultlog
d = %r
class CP:
    pass
class Ch:
    counters = {"rcd_trips": 0, "welds": 0, "rcd_resets": 0}
    energized = False
cp = CP(); cp.data_dir = d; cp.charger = Ch()
faultlog.attach(cp)
Ch.counters["rcd_trips"] += 1
assert faultlog.save(cp)
Ch.counters = {"rcd_trips": 0, "welds": 0, "rcd_resets": 0}  # reboot: fresh RAM
cp2 = CP(); cp2.data_dir = d; cp2.charger = Ch()
faultlog.attach(cp2)
print(json.dumps(cp2.charger.counters))
print(json.dumps(sorted(os.listdir(d))))
"""


def test_micropython_vm_persists_and_reloads(tmp_path):
    with open(str(tmp_path / faultlog.FILE), "w") as f:
        json.dump({"rcd_trips": 2}, f)
    r = mp_run(_MP % str(tmp_path), heap="256k")
    assert r.returncode == 0, r.stderr + r.stdout
    counts, names = r.stdout.strip().splitlines()[-2:]
    # 2 stored + 1 counted on the first boot = 3 on the second boot.
    assert json.loads(counts) == {"rcd_trips": 3, "welds": 0, "rcd_resets": 0}
    assert json.loads(names) == ["faults.json"]  # replaced atomically: no .tmp left
