"""A Reset's work (Station.reset starts it; lent: the task holds this module until the
reboot). The running transaction is stopped (reason SoftReset / HardReset), the journal
gets up to 7 s to deliver (a Soft reset also waits for the contactor to open), then
cp.reboot(); a reboot that returns failed is tried ResetRetries more times, 5 s apart,
then the station reports ResetFailure and goes back to normal."""

import log
from compat import asleep_ms, const, ticks_diff
from firmware import station

_WAIT_MS = const(7000)  # journal delivery, de-energising (6 s EVSE stop) before a reboot
_RETRY_MS = const(5000)
_STEP_MS = const(100)


def _pending(st):
    f = station.txn(st.cp, "pending")
    if f is None:
        return 0
    n = f()
    return n if isinstance(n, int) else len(n)


async def run(st, kind):
    cp = st.cp
    stop = station.txn(cp, "stop")
    if stop is not None and st.tx(1):
        try:
            stop(1, kind + "Reset")
        except Exception as e:
            log.error("station", "stop before reset: %r" % (e,))
    t0 = st._now()
    while ticks_diff(st._now(), t0) < _WAIT_MS:
        if not _pending(st) and (kind == "Hard" or not cp.charger.energized):
            break
        await asleep_ms(_STEP_MS)
    log.info("station", kind, "reset")
    retries = cp.config.get("ResetRetries") or 0
    for _ in range(1 + retries):
        try:
            cp.reboot()  # does not return on a board (or exits the simulator)
        except Exception as e:
            log.error("station", "reboot failed: %r" % (e,))
        await asleep_ms(_RETRY_MS)
    log.error("station", "reset failed after", 1 + retries, "attempts")
    st.reset_failed = True
    st.resetting = False
    st.reset_task = None
    st.apply()
