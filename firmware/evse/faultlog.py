"""Fault counters persisted across reboots (REFERENCE.md section 2 rule 12).

The charger counts faults in RAM (`Charger.counters`: rcd_trips, welds, rcd_resets) and never
writes flash from its 20 ms safety tick. The counters are copied to `<data dir>/faults.json`
with `fs.write_atomic`: only when they changed, at most once a minute, and never while the
contactor is closed (flash writes stall the CPU). At boot the stored counts are added to the
charger's, so a count survives any number of reboots.

Nothing of this module stays loaded (its heap is for the rare moment a count changes): at
boot attach() loads the counters and leaves `cp.faultlog` as plain data, [the counts as last
written, the ticks_ms of the earliest next write (None: at once), writes]; the app's
housekeeping compares the charger's counters with it every second and only when they
differ, the contactor is open and the minute is over, imports this module for save(cp)
and lets it go again (app._faults).

Decisions: the first change after boot is written at once (a trip right before a power cut
is the count that matters most); a failed write is logged and tried again a minute later;
counters in the file that this firmware does not know are kept (a downgrade loses nothing).
"""

import fs
import log
from compat import const, ticks_add, ticks_diff, ticks_ms

FILE = "faults.json"
_SAVE_MS = const(60000)  # at most one write a minute


class FaultLog:
    def __init__(self, counters, path, now_ms=ticks_ms, save_ms=_SAVE_MS):
        self.counters = counters  # the charger's dict, updated in place
        self.path = path
        self._now = now_ms
        self._save_ms = save_ms
        self._saved = dict(counters)  # what the file holds (or held at boot)
        self._saved_at = None  # ticks of the last write attempt
        self.writes = 0

    def load(self):
        """Add the stored counts to `counters`; a missing or corrupt file counts as none."""
        data = fs.read_json(self.path, None)
        c = self.counters
        if isinstance(data, dict):
            for k in data:
                v = data[k]
                if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                    c[k] = c.get(k, 0) + v
        elif data is not None:
            log.error("faultlog", "not a dict:", self.path)
        self._saved = dict(c)  # nothing new to write until a count changes
        return c

    def step(self, energized=False):
        """Write the counters when they changed, the last write is a minute old and the
        contactor is open. Returns True when the file was written."""
        c = self.counters
        if c == self._saved or energized:
            return False
        now = self._now()
        if self._saved_at is not None and ticks_diff(now, self._saved_at) < self._save_ms:
            return False
        self._saved_at = now
        snap = dict(c)
        try:
            fs.write_json(self.path, snap)
        except OSError as e:  # flash full or failing: keep counting in RAM, retry later
            log.error("faultlog", "write failed:", e)
            return False
        self._saved = snap
        self.writes += 1
        return True


OPS = ()


def _log(cp):
    return FaultLog(cp.charger.counters, cp.data_dir.rstrip("/") + "/" + FILE)


def attach(cp):
    """Load the stored counters into `cp.charger.counters`; `cp.faultlog` is the state
    save() goes on from. No task: the app's housekeeping asks (see the module's doc)."""
    fl = _log(cp)
    fl.load()
    cp.faultlog = [fl._saved, None, 0]
    return []


def save(cp):
    """One FaultLog.step from the state in `cp.faultlog`, which it updates; True when the
    file was written."""
    st = cp.faultlog
    fl = _log(cp)
    fl._saved, fl.writes = st[0], st[2]
    fl._saved_at = None if st[1] is None else ticks_add(st[1], -fl._save_ms)
    wrote = fl.step(cp.charger.energized)
    st[0], st[2] = fl._saved, fl.writes
    st[1] = None if fl._saved_at is None else ticks_add(fl._saved_at, fl._save_ms)
    return wrote
