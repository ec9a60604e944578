"""UnlockConnector (OCPP 1.6 §5.17): Unlocked / UnlockFailed / NotSupported.

NotSupported without a lock (a tethered cable). UnlockFailed for a connector other than 1,
or while the lock reports a fault (jammed). Otherwise the station stops a running
transaction with reason UnlockCommand, waits until the charger has de-energised (never
unlocks under power; up to 10 s), asks the charger to release the lock (`release_lock()`:
an override of the `ust` rule until the cable is removed) and answers with the real
outcome: Unlocked once the lock's feedback says so, else UnlockFailed
(firmware/station.py Station.unlock).

The handler returns a coroutine: the RPC layer answers when it finishes, in its own task,
so other frames keep flowing meanwhile (firmware/ocpp/rpc.py).
"""

from firmware.ocpp import router

ACTION = "UnlockConnector"


def _precheck(cp, connector_id):
    if connector_id != 1:
        return "UnlockFailed"
    if not cp.hal.lock.present:
        return "NotSupported"
    faults = cp.charger.faults
    if "lock" in faults or "unlock" in faults:
        return "UnlockFailed"
    return None


@router.on(ACTION)
def unlock_connector(cp, payload):
    status = _precheck(cp, payload["connectorId"])
    if status is not None:
        return {"status": status}
    return _unlock(cp, payload["connectorId"])


async def _unlock(cp, connector_id):
    return {"status": await cp.station.unlock(connector_id)}
