"""Reset (OCPP 1.6 §5.14): Soft and Hard; Rejected while a Reset is already under way.

Once the answer is on the wire (after-handler): no new session, the running transaction is
stopped with reason SoftReset / HardReset (journaled), the journal gets up to 7 s to deliver
(a Soft reset also waits for the contactor to open), then `cp.reboot()` (a board restarts;
the simulator exits with status 3 and tools/sim.py starts it again on the same data). A
reboot that returns failed: it is tried ResetRetries more times, 5 s apart, then the
station reports ResetFailure on connector 0 and goes back to normal (a new Reset is
Accepted again). A second Reset while one runs is Rejected rather than Accepted and ignored:
the running one reboots the charger within seconds anyway, and the central system must not
believe a Hard reset it asked for was done when a Soft one is (the spec is silent).
"""

from firmware.ocpp import router

ACTION = "Reset"


@router.on(ACTION)
def reset(cp, payload):
    st = cp.station
    busy = st is not None and st.reset_task is not None
    return {"status": "Rejected" if busy else "Accepted"}


@router.after(ACTION)
def reset_after(cp, payload, response):
    if response["status"] == "Accepted":
        cp.station.reset(payload["type"])
