"""The simulated hardware: pilot voltages follow the car, the meter integrates, control()."""

import asyncio

import pytest

from hal.sim import SimHal


def make():
    t = [0]
    return SimHal(now_ms=lambda: t[0]), t


def test_pilot_voltages_follow_car_state_and_diode():
    h, _ = make()
    assert h.pilot.read() == (12.0, 12.0)
    h.control({"cp": "B"})
    assert h.pilot.read() == (9.0, 9.0)  # steady +12 V: low equals high
    h.pilot.set_duty(266)
    assert h.pilot.read() == (9.0, -12.0)
    h.control({"diode": "missing", "cp": "C"})
    assert h.pilot.read()[1] > -10
    h.pilot.set_f()
    assert h.pilot.read() == (-12.0, -12.0)


def test_meter_integrates_energy_never_above_advertised_current():
    h, t = make()
    h.control({"cp": "C", "load": "32", "phases": "1"})
    h.pilot.set_duty(166)  # 10 A (9.96 A)
    h.relay.close()
    t[0] += 3600 * 1000
    m = asyncio.run(h.meter.read())
    assert m["i"][0] == pytest.approx(9.96) and m["i"][1] == 0
    assert m["e_wh"] == pytest.approx(9.96 * 230)
    h.relay.open()
    t[0] += 3600 * 1000
    assert asyncio.run(h.meter.read())["e_wh"] == pytest.approx(9.96 * 230)


def test_rcd_trip_opens_contactor_by_hardware_and_latches():
    h, _ = make()
    h.relay.close()
    h.control({"rcd": "trip"})
    assert h.rcd.tripped() and h.relay.feedback() is False
    h.control({"rcd": "ok"})
    assert h.rcd.tripped()
    h.rcd.reset()
    assert not h.rcd.tripped() and h.rcd.self_test()


def test_weld_reports_power_while_open():
    h, _ = make()
    h.control({"weld": "1"})
    assert h.relay.feedback() is True and not h.relay.closed


def test_lock_moves_after_travel_time_and_jams():
    h, t = make()
    h.lock.drive(True)
    assert h.lock.state() == "unknown"
    t[0] += 300
    assert h.lock.state() == "locked"
    h.control({"lock": "jam"})
    h.lock.drive(False)
    t[0] += 1000
    assert h.lock.state() == "unknown"


def test_meter_offline_card_temp():
    h, _ = make()
    h.control({"meter": "offline", "card": "TAG1", "temp": "71.5"})
    assert asyncio.run(h.meter.read()) is None and not h.meter.online
    assert h.reader.poll() == "TAG1" and h.reader.poll() is None
    assert h.temp.read_c() == [71.5]


@pytest.mark.parametrize(
    "params",
    [{"cp": "Z"}, {"diode": "yes"}, {"load": "x"}, {"load": "-1"}, {"phases": "2"},
     {"rcd": "1"}, {"weld": "2"}, {"lock": "open"}, {"meter": "on"}, {"temp": "hot"},
     {"bogus": "1"}, {"cp": "C", "load": "nan"}, {"ballast": "x"}, {"ballast": "-4"},
     {"ballast": "8:y"}, {"ballast": "9999"}],
)
def test_control_rejects_bad_names_and_values_and_applies_nothing(params):
    h, _ = make()
    before = h.state()
    with pytest.raises(ValueError):
        h.control(params)
    assert h.state() == before


def test_the_simulator_holds_its_control_code_only_while_it_answers():
    # /api/sim (hal/sim_control.py) is lent for each call, as the start (hal/sim_boot.py):
    # a running simulator holds neither between the test driver's requests.
    import sys

    h, _ = make()
    assert h.control({"cp": "B"})["cp"] == "B" and h.state()["cp"] == "B"
    assert "hal.sim_control" not in sys.modules and "hal.sim_boot" not in sys.modules
    import hal.sim

    assert not hasattr(hal.sim, "_parse") and not hasattr(hal.sim.SimHal, "_hold")


def test_meter_nan_extension_answers_with_not_a_number_values():
    h, _ = make()
    h.control({"meter": "nan"})
    m = asyncio.run(h.meter.read())
    assert m["pf"][0] != m["pf"][0] and m["p_total"] != m["p_total"]
    assert h.state()["meter"] == "nan"
    h.control({"meter": "ok"})
    assert asyncio.run(h.meter.read())["pf"] == [0.0, 0.0, 0.0]


def test_the_simulated_meter_register_survives_a_power_cut(tmp_path):
    import asyncio

    from hal.sim import SimHal

    t = [0]
    reg = str(tmp_path / "sim_meter.json")
    hal = SimHal(now_ms=lambda: t[0], register=reg)
    hal.control({"cp": "C", "load": "16"})
    hal.pilot.set_duty(266)  # 16 A offered
    hal.relay.close()
    t[0] += 60000  # a minute at 16 A on three phases: about 184 Wh
    seen = asyncio.run(hal.meter.read())["e_wh"]
    assert seen > 150
    # Power cut: a new process, the same "meter".
    again = SimHal(now_ms=lambda: t[0], register=reg)
    assert asyncio.run(again.meter.read())["e_wh"] >= int(seen)


def test_ballast_holds_heap_then_lets_go_by_itself():
    h, t = make()
    assert h.control({"ballast": "8"})["ballast"] == 8
    t[0] += 3600 * 1000
    h._book()
    assert h.state()["ballast"] == 8  # without seconds: held until changed
    assert h.control({"ballast": "12:5"})["ballast"] == 12
    t[0] += 4000
    h._book()
    assert h.state()["ballast"] == 12
    t[0] += 1000
    h._book()  # the meter's next reading
    assert h.state()["ballast"] == 0
    assert h.control({"ballast": "0"})["ballast"] == 0



def test_the_simulator_does_not_import_the_interface_classes():
    """hal/base.py documents the HAL and gives null parts to boards that lack one; the
    simulator's parts do not subclass it, so the firmware on the simulator holds none of its
    ten classes (issue 9: 1.6 KiB of the 32-bit frozen heap)."""
    from conftest import mp_run

    r = mp_run("import sys\nfrom hal.sim import SimHal\nh = SimHal()\n"
               "print('hal.base' in sys.modules, h.board['phases'], h.lock.present)")
    assert r.stdout.split() == ["False", "3", "True"], r.stdout + r.stderr
