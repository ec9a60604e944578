"""firmware/goe.py: the go-e API v2 keys of the whole charger (sse, typ, oem, modelStatus,
pha, pnp, lck, cbl) and the actions su (simulate unplugging) and rst (reboot)."""

import asyncio

import pytest
from txnkit import make

from firmware import goe


@pytest.fixture
def rig(tmp_path):
    cp, txn = make(tmp_path, ocppe=False)
    cp.info = {"vendor": "OpenWallbox", "model": "OWB-11", "serial": "SIM-0001", "fw": "0.1.0"}
    keys = goe.GoeKeys(cp)
    return cp, keys


def status(keys):
    out = {}
    keys.status(out)
    return out


def plug(cp, state="B"):
    cp.hal.lock.present = False
    cp.hal.cp = state
    for _ in range(3):
        cp.charger.tick()


def test_identity_keys(rig):
    cp, keys = rig
    s = status(keys)
    assert (s["sse"], s["typ"], s["oem"]) == ("SIM-0001", "OWB-11", "OpenWallbox")
    for k in ("sse", "typ", "oem", "modelStatus", "pha", "pnp", "lck", "cbl"):
        assert keys.check(k, 1) == "read-only"


def test_pha_pnp_cbl_without_and_with_a_car(rig):
    cp, keys = rig
    s = status(keys)
    # Wired to three phases, nothing after the open contactor; no cable plugged.
    assert s["pha"] == [False, False, False, True, True, True]
    assert s["pnp"] == 3 and s["cbl"] is None and s["lck"] == 0
    plug(cp, "C")
    s = status(keys)
    assert s["cbl"] == 32  # the simulated socket cable codes 220 Ohm
    c = cp.charger
    c.energized = True
    for k in range(3):
        c.nrg[k] = 230.0
    c.nrg[4] = 16.0  # a one-phase car
    s = status(keys)
    assert s["pha"] == [True, True, True, True, True, True] and s["pnp"] == 1


def test_lck_is_the_effective_lock_mode(rig):
    cp, keys = rig
    assert cp.config.update({"ust": 2}, "api") == {}
    assert status(keys)["lck"] == 2
    cp.charger.release_lock()  # an operator unlock (OCPP UnlockConnector) holds
    assert status(keys)["lck"] == 3


def test_model_status_tells_why_the_car_may_or_may_not_charge(rig):
    cp, keys = rig
    ms = lambda: status(keys)["modelStatus"]  # noqa: E731
    assert ms() == goe.MS_DEFAULT
    assert cp.config.update({"acs": 1}, "api") == {}
    cp.charger.auth_required = True
    assert ms() == goe.MS_ACCESS
    assert cp.config.update({"frc": 2}, "api") == {}
    assert ms() == goe.MS_FORCE_ON  # standalone frc=2 charges without a card
    assert cp.config.update({"frc": 1}, "api") == {}
    assert ms() == goe.MS_FORCE_OFF
    assert cp.config.update({"frc": 0, "acs": 0}, "api") == {}
    cp.charger.auth_required = False
    assert cp.config.update({"dwo": 100}, "api") == {}
    plug(cp)
    cp.charger.session_wh = 150.0
    assert ms() == goe.MS_ENERGY_LIMIT
    assert cp.config.update({"dwo": None}, "api") == {}
    cp.charger.err = 13
    assert ms() == goe.MS_OVERTEMP
    cp.charger.err = 2
    assert ms() == goe.MS_ERROR
    cp.charger.err = 0
    keys.unplugging = True
    assert ms() == goe.MS_SIMULATE_UNPLUG


def test_model_status_with_ocpp_waits_for_a_card_even_with_frc_on(tmp_path):
    cp, txn = make(tmp_path, frc=2)
    cp.info = {}
    assert goe.model_status(cp) == goe.MS_ACCESS


@pytest.mark.parametrize("value,ok", [(True, True), (1, True), (False, False), (0, False),
                                      (2, False), ("1", False), (1.5, False)])
def test_su_and_rst_take_true_or_1(rig, value, ok):
    _, keys = rig
    assert (keys.check("su", value) is None) == ok
    assert (keys.check("rst", value) is None) == ok


def test_su_pauses_the_pilot_in_state_f_then_resumes(rig, monkeypatch):
    cp, keys = rig
    monkeypatch.setattr(goe, "_SU_MS", 50)
    plug(cp)
    assert cp.charger.alw  # PWM on: the car may charge

    async def go():
        keys.apply({"su": 1})
        await asyncio.sleep(0.02)
        cp.charger.tick()
        seen = (cp.charger.state, status(keys)["modelStatus"], cp.charger.alw)
        for _ in range(50):
            await asyncio.sleep(0.01)
            if not keys.unplugging:
                break
        return seen

    seen = asyncio.run(go())
    assert seen == ("F", goe.MS_SIMULATE_UNPLUG, False)
    assert cp.charger.available and not keys.unplugging
    cp.charger.tick()
    assert cp.charger.state == "B" and cp.charger.alw


def test_rst_reboots_through_the_station_reset(rig, monkeypatch):
    cp, keys = rig
    monkeypatch.setattr(goe, "_RST_DELAY_MS", 1)
    resets = []

    class Station:
        def reset(self, kind):
            resets.append(kind)
            return True

        def available(self, c):
            return True

    cp.station = Station()

    async def go():
        keys.apply({"rst": True})
        await asyncio.sleep(0.05)

    asyncio.run(go())
    assert resets == ["Soft"]
