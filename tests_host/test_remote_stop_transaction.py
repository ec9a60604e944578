"""RemoteStopTransaction (firmware/ops/remote_stop_transaction.py)."""

from conftest import check_ocpp
from txnkit import drain, events, make, run

from firmware.ocpp import router
from firmware.ops import remote_stop_transaction as op


def call(cp, txid):
    payload = {"transactionId": txid}
    check_ocpp(op.ACTION, payload)
    res = router.HANDLERS[op.ACTION](cp, payload)
    check_ocpp(op.ACTION, res, response=True)
    router.AFTER[op.ACTION](cp, payload, res)
    return res["status"]


def test_running_transaction_accepted_and_stopped_remote(tmp_path):
    cp, txn = make(tmp_path)
    assert call(cp, 101) == "Rejected"  # nothing runs
    run(events(txn, "plugged", ("card", "A")))
    assert call(cp, 101) == "Rejected"  # id not known before StartTransaction.conf
    run(drain(txn))
    assert call(cp, 7) == "Rejected"
    assert cp.tx is not None
    assert call(cp, 101) == "Accepted"
    assert cp.tx is None
    run(drain(txn))
    stop = cp.session.sent("StopTransaction")[0]
    assert stop["reason"] == "Remote" and stop["transactionId"] == 101
