"""DataTransfer (vendor "OpenWallbox") through the real RPC path: GetStatus returns the live
charger keys, SetCurrent sets `amp` as the local API would (persisted, range-checked);
UnknownVendorId / UnknownMessageId otherwise."""

import json

import pytest
from test_status_notification import CP, rpc_call, run


def dt(cp, **payload):
    return run(rpc_call(cp, "DataTransfer", payload))


def test_get_status_returns_the_live_charger_keys(tmp_path):
    cp = CP(tmp_path)
    cp.sim(cp="C")
    cp.txn.start()
    cp.advance(3000)
    r = dt(cp, vendorId="OpenWallbox", messageId="GetStatus")
    assert r["status"] == "Accepted"
    s = json.loads(r["data"])
    assert s["car"] == 2 and s["alw"] is True and s["amp"] == 16 and s["err"] == 0
    assert s["ocs"] == ["Available", "Charging"]
    assert len(s["nrg"]) == 16 and s["fwv"] == "0.1.0"


def test_get_status_with_a_filter(tmp_path):
    cp = CP(tmp_path)
    r = dt(cp, vendorId="OpenWallbox", messageId="GetStatus", data="car,amp,nope")
    assert json.loads(r["data"]) == {"car": 1, "amp": 16}


def test_set_current_sets_amp_persisted(tmp_path):
    cp = CP(tmp_path)
    assert dt(cp, vendorId="OpenWallbox", messageId="SetCurrent", data="10") == {
        "status": "Accepted"}
    assert cp.config.get("amp") == 10
    cp.config.flush(force=True)  # on flash at a proper shutdown or 5 minutes later
    assert CP(tmp_path).config.get("amp") == 10
    cp.sim(cp="C")
    cp.txn.start()
    cp.advance(3000)
    assert cp.charger.acu == 10


@pytest.mark.parametrize("data", ["3", "99", "\"ten\"", "10.5", "", "{"])
def test_set_current_rejects_bad_values_and_changes_nothing(tmp_path, data):
    cp = CP(tmp_path)
    r = dt(cp, vendorId="OpenWallbox", messageId="SetCurrent", data=data)
    assert r["status"] == "Rejected" and "amp" in json.loads(r["data"])
    assert cp.config.get("amp") == 16


def test_unknown_vendor_and_message(tmp_path):
    cp = CP(tmp_path)
    assert dt(cp, vendorId="Acme", messageId="GetStatus") == {"status": "UnknownVendorId"}
    assert dt(cp, vendorId="OpenWallbox", messageId="Nope") == {"status": "UnknownMessageId"}
    assert dt(cp, vendorId="OpenWallbox") == {"status": "UnknownMessageId"}
