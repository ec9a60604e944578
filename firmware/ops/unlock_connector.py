"""UnlockConnector (OCPP 1.6 §5.17): Unlocked / UnlockFailed / NotSupported.

NotSupported without a lock (a tethered cable). UnlockFailed for a connector other than 1,
while the lock reports a fault (jammed), or when the charger would lock again at once: it
owns the lock motor, and until it offers `release_lock()` (an override until the cable is
removed) its `ust` rule decides (2: always locked; 0: locked while a car is plugged).
Otherwise Unlocked, and once the answer is sent the station stops a running transaction
with reason UnlockCommand, waits until the charger has de-energised (never unlocks under
power; up to 10 s), then releases the lock (firmware/station.py Station.unlock); a failure
there is logged and reaches the central system as a ConnectorLockFailure StatusNotification.

Why the answer comes first: message handlers are synchronous (firmware/ocpp/rpc.py), and
stopping a session takes up to 6 s. `unlock_connector_deferred` is the coroutine that answers
with the real outcome, ready for when the RPC layer can await a handler.
"""

from firmware.ocpp import router

ACTION = "UnlockConnector"


def _precheck(cp, connector_id):
    if connector_id != 1:
        return "UnlockFailed"
    if not cp.hal.lock.present:
        return "NotSupported"
    ch = cp.charger
    faults = ch.faults
    if "lock" in faults or "unlock" in faults:
        return "UnlockFailed"
    if getattr(ch, "release_lock", None) is None:
        # The charger keeps the lock by its `ust` rule: 2 always locked, 0 while a car is
        # plugged. It would lock again at once: say so.
        ust = cp.config.get("ust")
        if ust == 2 or (ust == 0 and cp.station.plugged):
            return "UnlockFailed"
    return None


@router.on(ACTION)
def unlock_connector(cp, payload):
    return {"status": _precheck(cp, payload["connectorId"]) or "Unlocked"}


@router.after(ACTION)
def unlock_connector_after(cp, payload, response):
    if response["status"] == "Unlocked":
        import asyncio

        st = cp.station
        st.unlock_task = asyncio.create_task(st.unlock(payload["connectorId"]))


async def unlock_connector_deferred(cp, payload):
    """The answer after the work is done (see the module docstring)."""
    status = _precheck(cp, payload["connectorId"])
    if status is None:
        status = await cp.station.unlock(payload["connectorId"])
    return {"status": status}
