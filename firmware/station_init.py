"""Station.__init__ (firmware/station.py): its fields and the availability the file keeps.
Lent for the boot (compat.lend) and let go after: its bytecode is not held for good."""

import asyncio

import fs
import log
from firmware.station import FILE


def init(st, cp, now_ms):
    st.cp = cp
    st._now = now_ms
    st.path = cp.data_dir.rstrip("/") + "/" + FILE
    op = [True, True]
    d = fs.read_json(st.path, None)
    try:
        if d is not None:
            op = [bool(d["op"][0]), bool(d["op"][1])]
    except Exception as e:  # wrong shape: operative, never a failed boot
        log.error("station", "availability file unreadable:", e)
    st.op = op  # wanted (persisted)
    st.on = [True, True]  # applied
    st.sched = False
    st.resetting = False
    st.held = False
    st.reset_failed = False
    st.reset_task = None
    st.unlock_task = None
    st._had_tx = False
    st._finishing = False
    st._ev_left = False
    st._cand = [None, None]  # (status, since ticks, since clock or None)
    st._sent = [None, None]  # last status sent on the current connection
    st._urgent = [False, False]
    st._conn = None  # accepted_ms of the connection the statuses were announced on
    st._wake = asyncio.Event()
    st._lock = asyncio.Lock()
    st.apply()
