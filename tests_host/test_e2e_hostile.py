"""End-to-end, issue 14 (defects found by a hostile central system): the firmware on the
MicroPython unix port against the demo central system (tools/csms.py, which checks every
message against the official schemas; each recorded CALL is checked again here).

- Provisioning: BootNotification Pending with a long interval, configuration by the central
  system, TriggerMessage(BootNotification) answered Accepted: `ocppa` turns true at once
  (not at the next scheduled retry) and a card charges.
- A central system that answers StartTransaction with CALLERROR for a while: the session's
  Start, MeterValues and Stop all reach it in the end, in order, under one transactionId.
"""

import time

import pytest
from conftest import check_ocpp
from e2e import CsmsThread, Firmware
from ocpp.v16 import call

pytestmark = pytest.mark.e2e


@pytest.fixture
def csms(request):
    """The demo central system; a test passes its settings with
    @pytest.mark.parametrize("csms", [{...}], indirect=True)."""
    c = CsmsThread(**getattr(request, "param", {}))
    c.start()
    yield c
    c.close()


@pytest.fixture
def fw(tmp_path, csms):
    """The firmware connected to `csms`."""
    f = Firmware(tmp_path / "data", csms.url())
    f.start()
    yield f
    f.stop()
    print("---- firmware log ----\n" + f.output())


def online(fw):
    fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",))


def received(c, action):
    return [p for _, a, p in c.csms.received if a == action]


def all_valid(c):
    for _, action, payload in c.csms.received:
        check_ocpp(action, payload)


# Pending with a retry interval far beyond the test: only the trigger can end it.
@pytest.mark.parametrize("csms", [{"boot_statuses": ["Pending", "Accepted"],
                                   "retry_interval": 600}], indirect=True)
def test_provisioning_pending_configure_trigger_accepted(csms, fw):
    c = csms
    c.wait_for(lambda: c.csms.boots == 1 and "CP1" in c.csms.charge_points)
    # Configure while Pending (§4.2.1: the central system may send requests).
    r = c.call("CP1", call.ChangeConfiguration(key="MeterValueSampleInterval", value="1"))
    assert r.status == "Accepted"
    assert fw.status("ocppa")["ocppa"] is False
    r = c.call("CP1", call.TriggerMessage(requested_message="BootNotification"))
    assert r.status == "Accepted"
    c.wait_for(lambda: c.csms.boots == 2)
    t0 = time.monotonic()
    fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=10)
    assert time.monotonic() - t0 < 10
    assert c.csms.boots == 2  # no further BootNotification: the triggered one counted
    # The accepted session runs: statuses, then a card charges.
    c.wait_for(lambda: received(c, "StatusNotification"), timeout=10)
    fw.sim(cp="B")
    fw.sim(card="CARD1")
    c.wait_for(lambda: received(c, "StartTransaction"), timeout=10)
    assert received(c, "Authorize") == [{"idTag": "CARD1"}]
    fw.sim(cp="C")
    fw.wait_status(lambda s: s["car"] == 2, keys=("car",))
    c.wait_for(lambda: received(c, "MeterValues"), timeout=10)
    all_valid(c)


def test_start_refused_for_a_while_the_whole_session_arrives(csms, fw):
    c = csms
    online(fw)
    for key, value in (("TransactionMessageRetryInterval", "1"),
                       ("MeterValueSampleInterval", "1")):
        assert c.call("CP1", call.ChangeConfiguration(key=key, value=value)).status \
            == "Accepted"
    # More refusals than TransactionMessageAttempts (3): the old firmware dropped the
    # Start here, and its MeterValues and Stop with it, while the car charged.
    c.csms.refuse["StartTransaction"] = 4
    fw.sim(cp="B")
    fw.sim(card="CARD2")
    fw.sim(cp="C")
    fw.wait_status(lambda s: s["car"] == 2, keys=("car",))
    # Retried, and visible as such: jr counts the refusals of the head.
    fw.wait_status(lambda s: s["jr"] >= 3, keys=("jr",), timeout=20)
    c.wait_for(lambda: c.csms.refuse["StartTransaction"] == 0, timeout=30)
    c.wait_for(lambda: c.csms.transactions, timeout=30)
    c.wait_for(lambda: received(c, "MeterValues"), timeout=20)
    fw.sim(cp="A")
    c.wait_for(lambda: received(c, "StopTransaction"), timeout=20)
    (txid,) = c.csms.transactions
    starts = received(c, "StartTransaction")
    assert len(starts) == 5 and all(s == starts[0] for s in starts)  # byte-identical
    acts = [a for _, a, p in c.csms.received if a in ("StartTransaction", "MeterValues",
                                                       "StopTransaction")]
    assert acts[:5] == ["StartTransaction"] * 5 and acts[-1] == "StopTransaction"
    assert set(acts[5:-1]) == {"MeterValues"}
    assert all(p["transactionId"] == txid for p in received(c, "MeterValues"))
    assert received(c, "StopTransaction")[0]["transactionId"] == txid
    st = fw.wait_status(lambda s: s["jq"] == 0, keys=("jq", "jd", "jr"))
    assert st == {"jq": 0, "jd": 0, "jr": 0}
    all_valid(c)


def test_remote_logging_sends_log_lines_as_data_transfer(csms, fw):
    c = csms
    online(fw)
    assert fw.set(ocpprl=True) == (200, {"ocpprl": True})
    c.send_raw("CP1", '[2, "x1", "FlyToTheMoon", {}]')  # logs a line
    logs = c.wait_for(lambda: [p for p in received(c, "DataTransfer")
                               if p.get("messageId") == "Log"], timeout=20)
    assert logs[0]["vendorId"] == "OpenWallbox"
    lines = logs[0]["data"].split("\n")
    assert any(" I rpc: FlyToTheMoon x1 -> NotImplemented" in x for x in lines), lines
    all_valid(c)
