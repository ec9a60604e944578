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
    assert "Energy.Active.Export.Register" not in by  # no source: skipped
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
