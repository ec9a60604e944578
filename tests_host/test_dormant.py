"""Dormant features (firmware/app.py DORMANT): reservation, firmware update, remote logging and
solar are attached at boot only when they have work, else on their first use, and behave then
exactly as if they had been there all along."""

import asyncio
import json
import subprocess
import sys

import pytest
from conftest import ROOT

import slots
from firmware import app, app_boot
from firmware.api import Api
from firmware.config import Config
from hal.sim import SimHal

RSV = "firmware.reservation"
FW = "firmware.firmware_update.service"
LOG = "firmware.remote_log"
SOLAR = "firmware.solar"


def _cp(data, hal=None, **cfg):
    config = Config(str(data))
    if cfg:
        assert config.update(cfg, "api") == {}
    hal = hal or SimHal()
    cp = app.ChargePoint(hal, str(data), app_boot.info("1.0", "T-1", hal.board), lambda: None,
                         config)
    cp.api = Api(config)
    return cp


def _boot(cp, then=None):
    """app.attach in a running loop (features start tasks); `then(cp)` runs inside it."""

    async def go():
        app_boot.attach(cp)
        try:
            if then is not None:
                r = then(cp)
                if asyncio.iscoroutine(r):
                    await r
        finally:
            for t in cp.tasks:
                t.cancel()
            await asyncio.sleep(0)

    asyncio.run(go())
    return cp


def _write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def test_a_fresh_charger_attaches_none_of_them(tmp_path):
    cp = _boot(_cp(tmp_path))
    assert cp.awake == []
    assert cp.reservation is None and cp.firmware is None and cp.solar is None
    # Their keys read as they would with the features there.
    assert cp.config.get("ReserveConnectorZeroSupported") is True
    assert cp.config.get("SupportedFileTransferProtocols") == "FTP,HTTP,HTTPS"
    assert cp.config.get("ocpprl") is False and cp.config.get("fup") is False
    st = cp.api.status(["rsv", "ids", "inva", "ocpprl", "fup"])
    assert st["rsv"] is None and st["ids"] is None and st["inva"] is None
    assert st["ocpprl"] is False and st["fup"] is False


def test_each_is_attached_at_boot_when_it_has_work(tmp_path):
    # A reservation on flash (or only its .tmp, left by a FAT rename cut short).
    for name in ("reservation.json", "reservation.json.tmp"):
        d = tmp_path / name
        d.mkdir()
        _write(str(d / name), {"v": 1, "id": 4, "c": 1, "tag": "R4", "p": None,
                               "exp": 4102444800, "t0": 1700000000})
        cp = _boot(_cp(d))
        assert cp.awake == [RSV] and cp.reservation.r["id"] == 4
    # An update under way.
    d = tmp_path / "fw"
    d.mkdir()
    _write(str(d / "fwupdate.json"), {"v": 1, "loc": "http://h/f", "at": 0, "tries": 1,
                                      "gap": 0, "stage": "wait"})
    cp = _boot(_cp(d))
    assert cp.awake == [FW] and cp.firmware.state["loc"] == "http://h/f"
    # The settings that turn them on.
    d = tmp_path / "cfg"
    d.mkdir()
    cp = _boot(_cp(d, ocpprl=True, fup=True))
    assert sorted(cp.awake) == [LOG, SOLAR] and cp.solar is not None


def test_the_firmware_update_is_there_for_a_slot_on_trial_a_rollback_or_ota(tmp_path):
    # on_accepted confirms a slot on trial, reports a rollback, confirms an OTA image.
    for name, pointer in (("trial", {"run": "app_a", "prev": "", "ok": False, "try": 1}),
                          ("failed", {"run": "", "prev": "", "ok": True, "failed": "app_b"})):
        d = tmp_path / name
        d.mkdir()
        slots.write(str(d), pointer)
        cp = _boot(_cp(d))
        assert cp.awake == [FW], name
        assert cp.firmware.on_accepted in cp.session.on_accepted
    d = tmp_path / "ota"
    d.mkdir()
    hal = SimHal()
    hal.ota = object()
    assert _boot(_cp(d, hal=hal)).awake == [FW]
    d = tmp_path / "confirmed"  # a confirmed slot has nothing to confirm
    d.mkdir()
    slots.write(str(d), {"run": "app_a", "prev": "", "ok": True, "try": 0})
    assert _boot(_cp(d)).awake == []


def test_a_setting_turned_on_wakes_its_feature(tmp_path):
    def on(cp):
        assert cp.config.update({"fup": True}, "api") == {}
        assert cp.awake == [SOLAR] and cp.solar is not None
        assert any(cp.makers[t] == cp.solar.run for t in cp.makers)  # its loop runs
        assert cp.config.update({"ocpprl": True}, "api") == {}
        assert cp.awake == [SOLAR, LOG]
        assert cp.config.update({"ocpprl": False}, "api") == {}
        assert cp.config.update({"ocpprl": True}, "api") == {}
        assert cp.awake == [SOLAR, LOG]  # attached once

    _boot(_cp(tmp_path), on)


def test_an_api_write_wakes_solar_and_is_applied(tmp_path):
    def on(cp):
        assert cp.api.status(["ids"]) == {"ids": None}
        code, body = cp.api.set({"ids": '{"pGrid": -2300, "pPv": 5200}'})
        assert (code, body) == (200, {"ids": True})
        assert cp.awake == [SOLAR]
        assert cp.api.status(["ids", "pgrid"]) == {
            "ids": {"pGrid": -2300, "pPv": 5200, "pAkku": None}, "pgrid": -2300}
        # The solar feature's own checks answer, through the sleeping provider or not.
        code, body = cp.api.set({"pgrid": "5"})
        assert code == 400 and body == {"pgrid": "read-only"}

    _boot(_cp(tmp_path), on)


def test_a_bad_api_write_to_a_sleeping_feature_is_refused_whole(tmp_path):
    def on(cp):
        code, body = cp.api.set({"ids": '{"pPv": 1}', "amp": "10"})
        assert code == 400 and "ids" in body
        assert cp.config.get("amp") == 16  # the default: nothing applied
        assert cp.solar is None or cp.solar.data is None

    _boot(_cp(tmp_path), on)


def test_a_wake_that_fails_leaves_it_asleep_for_the_next_use(tmp_path, monkeypatch):
    cp = _boot(_cp(tmp_path))
    real = app.feature

    def short(name):
        raise MemoryError("heap full")

    monkeypatch.setattr(app, "feature", short)
    try:
        cp.wake(RSV)
    except MemoryError:
        pass
    else:
        raise AssertionError("the MemoryError must reach the caller (a CALLERROR)")
    assert cp.awake == [] and cp.reservation is None
    monkeypatch.setattr(app, "feature", real)

    async def later():
        cp.wake(RSV)
        assert cp.awake == [RSV] and cp.reservation is not None

    asyncio.run(later())


def test_a_booted_charger_does_not_import_them(tmp_path):
    # In a fresh interpreter (the other tests import everything): what boot loads.
    code = """
import asyncio, sys
sys.path[:0] = ["lib", "."]
from firmware import app, app_boot
from firmware.api import Api
from firmware.config import Config
from hal.sim import SimHal
cfg = app_boot.load_config(%r)
hal = SimHal()
cp = app.ChargePoint(hal, %r, app_boot.info("1", "T", hal.board), lambda: None, cfg)
cp.api = Api(cfg)
async def go():
    app_boot.attach(cp)
    for t in cp.tasks:
        t.cancel()
asyncio.run(go())
print("LOADED:" + ",".join(m for m in %r if m in sys.modules))
""" % (str(tmp_path), str(tmp_path),
       (RSV, FW, LOG, SOLAR, "firmware.ops.reserve_now", "firmware.goe"))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "LOADED:\n" in r.stdout, r.stdout


@pytest.fixture
def modules_back(monkeypatch):
    """cp.rest lets a feature's module go (sys.modules, its package): put back afterwards, so
    the other tests keep the module objects they imported. No CALL is in hand (other tests
    look actions up without answering them)."""
    from cpkit import modules_kept

    from firmware.ocpp import router

    monkeypatch.setattr(router, "LOADED", {})
    import firmware
    from firmware import firmware_update

    with modules_kept(firmware, firmware_update):
        yield


def _reserve(cp, rid, secs=600):
    from firmware import clock
    from firmware.ops import reserve_now

    return reserve_now.reserve(cp, {"connectorId": 1, "idTag": "R", "reservationId": rid,
                                    "expiryDate": clock.rfc3339(clock.now() + secs)})


def test_a_woken_reservation_rests_again_once_none_is_left(tmp_path, modules_back):
    async def on(cp):
        assert _reserve(cp, 1, secs=-10) == "Rejected" and cp.awake == [RSV]  # expired
        assert cp.rest(RSV) is True
        assert cp.awake == [] and cp.reservation is None and RSV not in sys.modules
        assert cp.api.status(["rsv"]) == {"rsv": None}
        assert _reserve(cp, 2) == "Accepted" and cp.awake == [RSV]  # attached anew
        assert cp.rest(RSV) is False  # a reservation holds it (on flash too)
        assert cp.reservation.r["id"] == 2
        cp.reservation.end("cancelled")
        assert cp.rest(RSV) is False  # its watcher still runs
        for _ in range(30):
            await asyncio.sleep(0.1)
            if cp.reservation._task is None:
                break
        assert cp.rest(RSV) is True and cp.reservation is None

    _boot(_cp(tmp_path), on)


def test_a_woken_firmware_update_rests_only_when_nothing_is_under_way(tmp_path, modules_back,
                                                                     monkeypatch):
    monkeypatch.setitem(sys.modules, "slots", slots)  # (put back after the test)

    async def on(cp):
        cp.wake(FW)
        fw = cp.firmware
        loop = [t for t in cp.makers if cp.makers[t] == fw.run]
        assert len(loop) == 1 and fw.on_accepted in cp.session.on_accepted
        assert cp.rest(FW) is False  # its loop has not reached its wait yet
        await asyncio.sleep(0)
        assert fw.idle
        fw.state = {"stage": "wait"}  # an update waits for its retrieveDate
        assert cp.rest(FW) is False
        fw.state = None
        assert cp.rest(FW) is True
        await asyncio.sleep(0)
        assert cp.firmware is None and loop[0].cancelled() and loop[0] not in cp.tasks
        assert loop[0] not in cp.makers and fw.on_accepted not in cp.session.on_accepted
        assert cp.awake == [] and FW not in sys.modules
        assert "slots" not in sys.modules  # imported for it, let go with it (0.3 KiB, 32-bit)

    _boot(_cp(tmp_path), on)


def test_a_firmware_update_never_rests_while_a_slot_is_on_trial(tmp_path, modules_back):
    async def on(cp):
        await asyncio.sleep(0)
        mod = sys.modules["slots"]
        assert cp.firmware.idle and cp.rest(FW) is False
        # asked every second while it is awake: the slots module it imported stays the one
        # in sys.modules, never imported anew each time
        assert sys.modules["slots"] is mod

    slots.write(str(tmp_path), {"run": "app_a", "prev": "", "ok": False, "try": 1})
    _boot(_cp(tmp_path), on)


def test_the_boot_check_lets_go_of_slots_only_if_it_imported_it(tmp_path, monkeypatch):
    row = app._dormant(FW)
    monkeypatch.delitem(sys.modules, "slots")
    assert app._wanted(_cp(tmp_path), row) is False
    assert "slots" not in sys.modules  # imported for the check only (0.4 KiB, 32-bit)
    monkeypatch.setitem(sys.modules, "slots", slots)
    assert app._wanted(_cp(tmp_path), row) is False
    assert sys.modules["slots"] is slots


def test_the_go_e_keys_load_their_module_while_they_are_asked_for(tmp_path, modules_back):
    """app.LAZY_API: firmware/goe.py is imported by the first read of one of its keys and let
    go after router.IDLE_MS without one (at once on a tight heap), never while an unplugging
    it started runs."""
    from compat import ticks_add, ticks_ms
    from firmware.ocpp import router

    async def on(cp):
        (lazy,) = [p for p in cp.api.providers
                   if isinstance(p, app._Lazy) and p.row[0] == "firmware.goe"]
        assert lazy.p is None
        assert cp.api.status(["amp"]) == {"amp": 16} and lazy.p is None  # not its keys
        st = cp.api.status(["typ", "modelStatus"])
        assert st["typ"] == "OWB-11" and isinstance(st["modelStatus"], int)
        assert lazy.p is not None and "firmware.goe" in sys.modules
        app._lazy_sweep(cp, ticks_add(ticks_ms(), router.IDLE_MS // 2), router.IDLE_MS)
        assert lazy.p is not None  # used a moment ago
        app._lazy_sweep(cp, ticks_add(ticks_ms(), router.IDLE_MS + 1000), router.IDLE_MS)
        assert lazy.p is None and "firmware.goe" not in sys.modules
        assert cp.api.set({"su": "true"}) == (200, {"su": True})  # loaded anew
        busy = lazy.p
        assert busy.unplugging
        app._lazy_sweep(cp, ticks_add(ticks_ms(), router.IDLE_MS + 1000), router.IDLE_MS)
        assert lazy.p is busy  # the simulated unplugging runs: it stays
        code, body = cp.api.set({"typ": '"x"'})
        assert code == 400 and body == {"typ": "read-only"}

    _boot(_cp(tmp_path), on)


def test_no_rest_while_a_call_is_in_hand(tmp_path, modules_back):
    """A handler may have woken the feature and its after-handler still needs it: nothing
    rests while a CALL is being handled or answered."""
    from firmware.ocpp import router

    async def on(cp):
        cp.wake(FW)
        await asyncio.sleep(0)
        cp.session.rpc = type("R", (), {"answering": 1})()
        assert cp.rest(FW) is False and cp.firmware is not None
        cp.session.rpc.answering = 0
        router.LOADED["GetDiagnostics"] = ["get_diagnostics", None]  # an async one in hand
        assert cp.rest(FW) is False
        router.LOADED["GetDiagnostics"][1] = 0
        assert cp.rest(FW) is True
        cp.session.rpc = None

    _boot(_cp(tmp_path), on)


def test_a_wake_whose_tasks_cannot_be_made_is_undone_for_the_next_use(tmp_path, monkeypatch,
                                                                      modules_back):
    async def on(cp):
        real = asyncio.create_task
        n = len(cp.tasks)

        def short(coro):
            coro.close()
            raise MemoryError("heap full")

        monkeypatch.setattr(asyncio, "create_task", short)
        with pytest.raises(MemoryError):
            cp.wake(SOLAR)
        monkeypatch.setattr(asyncio, "create_task", real)
        assert cp.solar is None and cp.awake == [] and len(cp.tasks) == n
        cp.wake(SOLAR)  # the next use attaches it whole
        assert cp.solar is not None and cp.awake == [SOLAR]
        assert any(cp.makers[t] == cp.solar.run for t in cp.makers)

    _boot(_cp(tmp_path), on)


def test_rest_all_never_raises(tmp_path, monkeypatch, modules_back):
    async def on(cp):
        cp.wake(RSV)

        def broken(cp):
            raise OSError(5, "flash")

        monkeypatch.setattr(sys.modules[RSV], "detach", broken)
        cp.rest_all()  # logged; it stays awake
        assert cp.awake == [RSV]

    _boot(_cp(tmp_path), on)


def test_a_read_only_key_of_a_sleeping_feature_is_refused_without_waking_it(tmp_path):
    def on(cp):
        for key, value in (("rsv", "null"), ("pgrid", "5"), ("inva", "1")):
            assert cp.api.set({key: value}) == (400, {key: "read-only"})
        assert cp.awake == []

    _boot(_cp(tmp_path), on)
