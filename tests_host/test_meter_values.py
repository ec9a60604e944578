"""MeterValues (firmware/ops/meter_values.py) and their journaling in a transaction."""

from conftest import check_ocpp
from txnkit import drain, events, make, run

from firmware.ops import meter_values
from firmware.transactions import metering


def _mv(cp, ctx="Sample.Clock"):
    return metering.meter_value(cp.charger, ["Energy.Active.Import.Register"], ctx, 0)


def test_payload_with_and_without_transaction(tmp_path):
    cp, _ = make(tmp_path)
    check_ocpp("MeterValues", meter_values.payload(1, _mv(cp)))
    p = meter_values.payload(1, _mv(cp), 9)
    check_ocpp("MeterValues", p)
    assert p["transactionId"] == 9


def test_outside_a_transaction_sent_directly_not_journaled(tmp_path):
    cp, txn = make(tmp_path)
    run(meter_values.send(cp, 1, _mv(cp)))
    sent = cp.session.sent("MeterValues")
    assert len(sent) == 1 and "transactionId" not in sent[0] and txn.pending() == 0


def test_inside_a_transaction_journaled_with_its_id_and_monotonic(tmp_path):
    cp, txn = make(tmp_path)

    async def go():
        await events(txn, "plugged", ("card", "A"))
        for wh in (1010.5, 1020.0, 1020.9):
            cp.charger.energy_wh = wh
            txn.journal_meter_values(cp.tx, _mv(cp, "Sample.Periodic"))
        assert txn.pending() == 4  # Start + 3, before anything is sent
        await drain(txn)

    run(go())
    mvs = cp.session.sent("MeterValues")
    assert [m["transactionId"] for m in mvs] == [101] * 3
    vals = [int(m["meterValue"][0]["sampledValue"][0]["value"]) for m in mvs]
    assert vals == [1010, 1020, 1020]
