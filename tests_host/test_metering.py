"""Meter values (firmware/transactions/metering.py): measurands, units, phases, alignment."""

from conftest import check_ocpp
from txnkit import make

from firmware.transactions import metering

ALL = ["Energy.Active.Import.Register", "Energy.Active.Export.Register", "Power.Active.Import",
       "Current.Import", "Current.Offered", "Voltage", "Power.Factor", "Temperature"]


def _charger(tmp_path):
    cp, _ = make(tmp_path)
    c = cp.charger
    c.energy_wh = 12345.6
    c.export_wh = 321.9
    c.nrg[:] = [230, 231, 229.5, 0, 16, 15.5, 0, 3680, 3580, 0, 0, 7260, 100, 99, 0, 0]
    c.acu = 16
    c.tma = [31.5, 40]
    return cp, c


def test_every_provided_measurand_with_unit_phase_and_context(tmp_path):
    cp, c = _charger(tmp_path)
    mv = metering.meter_value(c, ALL, "Sample.Periodic", 1700000000, phases=3)
    check_ocpp("MeterValues", {"connectorId": 1, "meterValue": [mv]})
    sv = mv["sampledValue"]
    by = {}
    for s in sv:
        assert s["context"] == "Sample.Periodic" and isinstance(s["value"], str)
        by.setdefault(s["measurand"], []).append(s)
    # Issue 14 item 9: the meter's export register is reported (it was accepted, never sent).
    assert by["Energy.Active.Export.Register"] == [{
        "value": "321", "context": "Sample.Periodic", "measurand":
        "Energy.Active.Export.Register", "unit": "Wh", "location": "Outlet"}]
    assert by["Energy.Active.Import.Register"][0]["value"] == "12345"
    assert by["Energy.Active.Import.Register"][0]["unit"] == "Wh"
    assert [s["phase"] for s in by["Current.Import"]] == ["L1", "L2", "L3"]
    assert [s["value"] for s in by["Current.Import"]] == ["16", "15.5", "0"]
    assert [s["phase"] for s in by["Voltage"]] == ["L1-N", "L2-N", "L3-N"]
    assert by["Voltage"][2]["value"] == "229.5" and by["Voltage"][0]["unit"] == "V"
    assert by["Power.Active.Import"][0] == {"value": "7260", "context": "Sample.Periodic",
                                            "measurand": "Power.Active.Import", "unit": "W",
                                            "location": "Outlet"}
    assert by["Temperature"][0]["unit"] == "Celsius" and by["Temperature"][0]["value"] == "40"
    assert by["Current.Offered"][0]["value"] == "16"
    assert by["Power.Factor"][1]["value"] == "0.99"
    assert mv["timestamp"] == "2023-11-14T22:13:20Z"


def test_single_phase_board_and_silent_meter(tmp_path):
    cp, c = _charger(tmp_path)
    sv = metering.sampled_values(c, ["Current.Import"], "Sample.Clock", phases=1)
    assert [s["phase"] for s in sv] == ["L1"]
    c.meter_ok = False
    sv = metering.sampled_values(c, ["Energy.Active.Import.Register", "Voltage"], "Sample.Clock")
    assert [s["measurand"] for s in sv] == ["Energy.Active.Import.Register"]
    c.energy_wh = None
    assert metering.meter_value(c, ["Energy.Active.Import.Register"], "Sample.Clock") is None


def test_clock_alignment_from_midnight_utc():
    day = 1700006400  # 2023-11-15T00:00:00Z
    assert metering.next_aligned(day, 900) == day + 900
    assert metering.next_aligned(day + 899, 900) == day + 900
    assert metering.next_aligned(day + 86399, 900) == day + 86400
    # 7 h does not divide the day: 07:00, 14:00, 21:00, then midnight.
    assert metering.next_aligned(day + 21 * 3600 + 5, 7 * 3600) == day + 86400


def test_configured_measurands(tmp_path):
    cp, _ = make(tmp_path)
    assert metering.measurands(cp.config, "StopTxnSampledData") == []
    assert metering.measurands(cp.config, "MeterValuesSampledData")[0] == \
        "Energy.Active.Import.Register"


def test_clock_aligned_task_sends_outside_and_journals_inside_a_transaction(tmp_path):
    import asyncio

    from txnkit import events, run

    cp, txn = make(tmp_path, ClockAlignedDataInterval="1",
                   StopTxnAlignedData="Energy.Active.Import.Register")

    async def go():
        task = asyncio.create_task(txn.metering.run_aligned())
        try:
            for _ in range(40):
                await asyncio.sleep(0.1)
                if cp.session.sent("MeterValues"):
                    break
            assert txn.pending() == 0  # outside a transaction: not journaled
            await events(txn, "plugged", ("card", "A"))
            n = txn.pending()
            for _ in range(40):
                await asyncio.sleep(0.1)
                if txn.pending() > n:
                    break
        finally:
            task.cancel()

    run(go())
    mv = cp.session.sent("MeterValues")[0]
    assert "transactionId" not in mv
    assert mv["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
    assert mv["meterValue"][0]["timestamp"].endswith("Z")
    assert txn.pending() >= 2  # Start + the clock-aligned MeterValues
    assert cp.tx.aligned["sampledValue"][0]["context"] == "Sample.Clock"


def test_export_register_follows_the_meter(tmp_path):
    """From the meter reading through the charger to the MeterValues: skipped while the
    meter has not given it (a meter without the register), then reported; a silent meter
    sends no stale export reading."""
    cp, c = _charger(tmp_path)
    c.export_wh = None
    names = ["Energy.Active.Export.Register"]
    assert metering.sampled_values(c, names, "Sample.Periodic") == []
    c.on_meter({"u": [230] * 3, "i": [0] * 3, "p": [0] * 3, "pf": [1] * 3, "p_total": 0,
                "e_wh": 2000.0, "e_exp_wh": 45.5})
    assert c.export_wh == 45.5
    (sv,) = metering.sampled_values(c, names, "Sample.Periodic")
    assert sv["value"] == "45" and sv["unit"] == "Wh"
    c.on_meter({"u": [230] * 3, "i": [0] * 3, "p": [0] * 3, "pf": [1] * 3, "p_total": 0,
                "e_wh": 2000.0, "e_exp_wh": float("nan")})  # garbage: the reading is lost
    assert not c.meter_ok and c.export_wh == 45.5
    assert metering.sampled_values(c, names, "Sample.Periodic") == []
