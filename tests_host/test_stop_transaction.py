"""StopTransaction (firmware/ops/stop_transaction.py): reasons, transactionData, answer."""

import json
import os

import ocpp.v16
from conftest import check_ocpp
from txnkit import drain, events, make, run

from firmware.ops import stop_transaction


def test_reasons_are_the_schema_enum():
    path = os.path.join(os.path.dirname(ocpp.v16.__file__), "schemas", "StopTransaction.json")
    with open(path) as f:
        enum = json.load(f)["properties"]["reason"]["enum"]
    assert sorted(stop_transaction.REASONS) == sorted(enum)


def test_transaction_data_has_begin_and_end_samples(tmp_path):
    cp, txn = make(tmp_path, StopTxnSampledData="Energy.Active.Import.Register,Voltage")
    cp.charger.nrg[0] = 231.0

    async def go():
        await events(txn, "plugged", ("card", "A"))
        cp.charger.energy_wh = 1100.0
        await events(txn, "unplugged")
        await drain(txn)

    run(go())
    stop = cp.session.sent("StopTransaction")[0]
    check_ocpp("StopTransaction", stop)
    data = stop["transactionData"]
    ctx = [mv["sampledValue"][0]["context"] for mv in data]
    assert ctx == ["Transaction.Begin", "Transaction.End"]
    assert data[0]["sampledValue"][0]["value"] == "1000"
    assert data[1]["sampledValue"][0]["value"] == "1100"


def test_no_transaction_data_by_default(tmp_path):
    cp, txn = make(tmp_path)
    run(events(txn, "plugged", ("card", "A"), "unplugged"))
    run(drain(txn))
    assert "transactionData" not in cp.session.sent("StopTransaction")[0]


def test_on_conf_caches_the_stopping_id_tag(tmp_path):
    cp, txn = make(tmp_path)
    stop_transaction.on_conf(cp, {"payload": {"idTag": "Z"}},
                             {"idTagInfo": {"status": "Blocked"}})
    stop_transaction.on_conf(cp, {"payload": {}}, {})
    assert txn.auth.cache.get("Z", 0)["status"] == "Blocked"
