"""UnlockConnector (OCPP 1.6 §5.17): Unlocked / UnlockFailed / NotSupported.

NotSupported without a lock (a tethered cable). UnlockFailed for a connector other than 1,
or while the lock reports a fault (jammed). Otherwise the station stops a running
transaction with reason UnlockCommand, waits until the charger has de-energised (never
unlocks under power; up to 10 s), asks the charger to release the lock (`release_lock()`:
an override of the `ust` rule until the cable is removed) and answers with the real
outcome: Unlocked once the lock's feedback says so, else UnlockFailed
(unlock() below, with cp.station).

The handler returns a coroutine: the RPC layer answers when it finishes, in its own task,
so other frames keep flowing meanwhile (firmware/ocpp/rpc.py).
"""

import log
from compat import asleep_ms, const, ticks_diff
from firmware import station
from firmware.ocpp import router

ACTION = "UnlockConnector"
_POWER_MS = const(10000)  # the charger opens within 6 s of an EVSE stop
_LOCK_MS = const(3000)  # lock feedback (3 motor pulses of 1 s in firmware/evse/charger.py)
_STEP_MS = const(100)


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
    return _unlock(cp)


async def _unlock(cp):
    return {"status": await unlock(cp.station)}


async def unlock(st):
    """Connector 1, once _precheck passed (it has a lock that reports no fault): stop the
    transaction (UnlockCommand), wait until de-energised, release the lock: "Unlocked" |
    "UnlockFailed"."""
    cp = st.cp
    lock = cp.hal.lock
    stop = station.txn(cp, "stop")
    if stop is not None and st.tx(1):
        stop(1, "UnlockCommand")
    ch = cp.charger
    if not await _until(st, lambda: not ch.energized, _POWER_MS):
        log.error("station", "unlock refused: still energised")
        return "UnlockFailed"
    # The charger owns the lock motor (it would undo a pulse of ours at its next tick):
    # ask it to let go where it can, else its own rule (`ust`) must unlock by itself.
    release = getattr(ch, "release_lock", None)
    if release is not None:
        release()
    if await _until(st, lambda: lock.state() == "unlocked", _LOCK_MS):
        return "Unlocked"
    log.error("station", "unlock failed, lock", lock.state())
    return "UnlockFailed"


async def _until(st, pred, ms):
    t0 = st._now()
    while not pred():
        if ticks_diff(st._now(), t0) >= ms:
            return False
        await asleep_ms(_STEP_MS)
    return True
