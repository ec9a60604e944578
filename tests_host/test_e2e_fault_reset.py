"""End-to-end: a latched RCD trip is reset only by a deliberate action (`/api/set?frs=true`),
only once the fault is gone, and charging resumes (REFERENCE §2 rule 6); the trip is counted
on flash (faults.json, REFERENCE §2 rule 12) by the app's housekeeping."""

import json
import os
import time

import pytest

pytestmark = pytest.mark.e2e


def test_rcd_trip_latches_until_a_deliberate_reset(start_firmware):
    fw = start_firmware()
    fw.sim(cp="B")
    fw.sim(cp="C", load=16)
    fw.wait_status(lambda s: s["car"] == 2, keys=("car",))
    time.sleep(1)  # past the 500 ms in which the contactor feedback may still lag
    fw.sim(rcd="trip")
    st = fw.wait_status(lambda s: s["err"] == 2, keys=("err", "car", "alw", "ocpple"))
    assert st["car"] == 5
    # The RCD opened the contactor by hardware: not also a contactor that failed to
    # close (err 10, which the last error showed as "charger: fault miss 10").
    assert st["ocpple"] == "charger: fault rcd 2", st
    # Counted on flash once the contactor is open, within a few seconds.
    path = os.path.join(fw.data_dir, "faults.json")
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.2)
    with open(path) as f:
        assert json.load(f)["rcd_trips"] == 1
    # The residual current is still there: a reset cannot clear the latch.
    assert fw.set(frs=True) == (200, {"frs": True})
    assert fw.status("err")["err"] == 2
    # The fault is gone, but the latch holds until somebody resets it.
    fw.sim(rcd="ok")
    assert fw.status("err")["err"] == 2
    # Only `true` is an action; anything else is refused and changes nothing.
    code, body = fw.set(frs=1)
    assert code == 400 and "frs" in body
    assert fw.set(frs=True)[0] == 200
    fw.wait_status(lambda s: s["err"] == 0 and s["car"] == 2, keys=("err", "car"),
                   timeout=20)
