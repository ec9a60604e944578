"""End-to-end, Reservation profile: the firmware on the MicroPython unix port against the demo
central system (the `ocpp` package validates every frame strictly), on 127.0.0.1.

ReserveNow (StatusNotification Reserved, the `rsv` API key, Occupied for a second id), a
wrong card refused with no energy and RemoteStartTransaction for it Rejected, the reserved
card starting with the reservationId in StartTransaction, expiry across a SIGKILL restart
(StatusNotification Available at the expiry, to the second), CancelReservation.
"""

import datetime
import os
import time

import pytest
from conftest import check_ocpp
from e2e import CsmsThread, Firmware
from ocpp.v16 import call

pytestmark = pytest.mark.e2e


@pytest.fixture
def csms():
    c = CsmsThread(heartbeat_interval=600)
    c.start()
    yield c
    c.close()


@pytest.fixture
def fw_factory(tmp_path):
    started = []

    def make(url):
        d = tmp_path / "data"
        os.makedirs(d, exist_ok=True)
        fw = Firmware(d, url)
        started.append(fw)
        return fw.start()

    yield make
    for fw in started:
        fw.stop()
        print("---- firmware log ----\n" + fw.output())


def received(csms, action, since=0):
    return [p for _, a, p in csms.csms.received[since:] if a == action]


def statuses(csms, connector, since=0):
    return [p["status"] for p in received(csms, "StatusNotification", since)
            if p["connectorId"] == connector]


def wait_status(csms, connector, status, since=0, timeout=20):
    csms.wait_for(lambda: status in statuses(csms, connector, since), timeout=timeout)
    return [p for p in received(csms, "StatusNotification", since)
            if p["connectorId"] == connector and p["status"] == status][0]


def at(seconds):
    """An expiryDate `seconds` from now (the firmware's clock is the central system's)."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(ts):
    return datetime.datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def reserve(csms, rid, tag, seconds, connector=1):
    r = csms.call("CP1", call.ReserveNow(connector_id=connector, expiry_date=at(seconds),
                                         id_tag=tag, reservation_id=rid))
    return r.status


def cancel(csms, rid):
    return csms.call("CP1", call.CancelReservation(reservation_id=rid)).status


def all_valid(csms):
    for _, action, payload in csms.csms.received:
        check_ocpp(action, payload)
    for _, frame in csms.csms.answers:
        assert frame[0] == 3, frame


def test_reserve_refuse_start_expire_across_a_power_cut_cancel(csms, fw_factory):
    fw = fw_factory(csms.url())
    fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",))
    wait_status(csms, 1, "Available")
    r = csms.call("CP1", call.GetConfiguration(key=["SupportedFeatureProfiles"]))
    assert "Reservation" in r.configuration_key[0]["value"].split(",")

    # Reserve: Reserved at the central system and on the local API.
    n = len(csms.csms.received)
    assert reserve(csms, 7, "R1", 300) == "Accepted"
    wait_status(csms, 1, "Reserved", n)
    rsv = fw.status("rsv")["rsv"]
    assert (rsv["id"], rsv["idTag"], rsv["connectorId"]) == (7, "R1", 1)
    assert abs(unix(rsv["expiryDate"]) - (time.time() + 300)) < 5
    assert reserve(csms, 8, "R2", 300) == "Occupied"

    # A wrong card: refused, the car asking for power gets none, no transaction.
    fw.sim(cp="C", load=16)
    fw.sim(card="X9")
    csms.wait_for(lambda: received(csms, "Authorize"), timeout=10)
    time.sleep(2.0)
    s = fw.status("car", "alw", "acu", "wh", "rsv")
    assert s["car"] != 2 and s["alw"] is False and s["wh"] == 0, s
    assert received(csms, "StartTransaction") == [] and s["rsv"]["id"] == 7
    r = csms.call("CP1", call.RemoteStartTransaction(id_tag="X9", connector_id=1))
    assert r.status == "Rejected"

    # The reserved card: charging, its StartTransaction carries the reservationId.
    fw.sim(card="R1")
    csms.wait_for(lambda: received(csms, "StartTransaction"), timeout=10)
    (start,) = received(csms, "StartTransaction")
    assert (start["idTag"], start["reservationId"]) == ("R1", 7)
    fw.wait_status(lambda s: s["car"] == 2 and s["rsv"] is None, keys=("car", "rsv"))
    n = len(csms.csms.received)
    fw.sim(cp="A")
    csms.wait_for(lambda: received(csms, "StopTransaction"), timeout=10)
    wait_status(csms, 1, "Available", n)

    # Expiry across a power cut: back with Reserved, Available at the expiry.
    n = len(csms.csms.received)
    assert reserve(csms, 9, "R1", 10) == "Accepted"
    exp = unix(fw.status("rsv")["rsv"]["expiryDate"])
    wait_status(csms, 1, "Reserved", n)
    fw.kill()
    n = len(csms.csms.received)
    fw = fw_factory(csms.url())
    fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",))
    first = wait_status(csms, 1, "Reserved", n)
    assert unix(first["timestamp"]) < exp
    assert fw.status("rsv")["rsv"]["id"] == 9
    wait_status(csms, 1, "Available", n, timeout=exp - time.time() + 10)
    seen = time.time()
    assert exp - 0.5 <= seen <= exp + 3.0, (seen, exp)
    assert fw.status("rsv") == {"rsv": None}

    # Cancel (this time the station: connector 0, its one connector shows Reserved).
    n = len(csms.csms.received)
    assert reserve(csms, 10, "R5", 300, connector=0) == "Accepted"
    wait_status(csms, 1, "Reserved", n)
    assert statuses(csms, 0, n) == []
    assert cancel(csms, 11) == "Rejected"
    n = len(csms.csms.received)
    assert cancel(csms, 10) == "Accepted"
    wait_status(csms, 1, "Available", n)
    assert cancel(csms, 10) == "Rejected"
    assert fw.status("rsv") == {"rsv": None}
    all_valid(csms)
