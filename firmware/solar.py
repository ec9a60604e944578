"""Charging on the PV surplus, as a go-eCharger does it (go-e API v2 `ids`, `fup`).

A home controller (Home Assistant, an energy manager, a script) pushes the power flows at the
grid connection every few seconds:

    /api/set?ids={"pGrid":-2300,"pPv":5200,"pAkku":0}

pGrid: W from the grid (negative: export); pPv: W from the PV; pAkku: W from the home battery
(negative: charging it). With `fup=true` the charger follows the surplus by itself, through
its current limit (source "solar"; the offer stays min(amp, ama, cable, smart charging, ...)):

- surplus = what the car drew when the data came - pGrid - max(pAkku, 0): the export plus
  the car's own draw. A home battery keeps its charging power and is never discharged into
  the car.
- current = surplus / (voltage x phases in use), down to the ampere, from 6 to 32 A.
- start: a surplus worth at least 6 A for 30 s.
- below 6 A worth while charging: 6 A (a little from the grid) for up to 2 minutes, then a
  pause; the next start needs the start condition again.
- phases (a board with a phase switch, psm=0): one phase once the surplus has stayed below
  the three-phase minimum (6 A x 3) for 60 s, three again once it has stayed 500 W above it
  for 60 s; at most one change per 5 minutes. The switch itself follows the charger's rules
  (contactor open, the car back in B, a pilot disconnect).
- no `ids` for 60 s: the data are stale and charging pauses (nothing is drawn from the grid
  on old numbers) until fresh data come; `inva` tells their age.
- no car: the limit is 0 A, so a car plugged in waits for the start condition.
With `fup=false` (the default) the data are shown but nothing is limited.

API keys: `ids` R/W (the last object pushed, null when none; `ids=null` forgets it, pPv and
pAkku may be left out), `fup` R/W (kept in RAM and persisted like `amp`), `pgrid`, `ppv`,
`pakku` (R: W or null), `inva` (R: ms since the last `ids`, or null). `ids` is never written
to flash.

Its configuration key is a row of firmware/keys.py (a dormant feature of firmware/app.py).
"""

import asyncio

from compat import const, nap, ticks_diff, ticks_ms
from firmware.goe import phases_in_use

_SOURCE = "solar"
_MIN_A = const(6)
_MAX_A = const(32)
_V_NOM = 230
_START_MS = const(30000)
_STOP_MS = const(120000)
_STALE_MS = const(60000)
_PHASE_MS = const(60000)
_PHASE_GAP_MS = const(300000)
_PHASE_HYST_W = 500
_STEP_MS = const(1000)
_KEYS = ("ids", "pgrid", "ppv", "pakku", "inva")
_FIELDS = ("pGrid", "pPv", "pAkku")
OPS = ()  # no OCPP messages of its own



def _num(v):
    """True for a finite JSON number (not a bool)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return v - v == 0


class Solar:
    def __init__(self, cp, now_ms=ticks_ms):
        self.cp = cp
        self._now = now_ms
        self.data = None  # (pGrid, pPv, pAkku) as pushed (the last two may be None)
        self.data_ms = None
        self._car_w = 0  # what the car drew (W) when the data came
        self.amps = None  # the limit handed to the charger: None none, 0 paused, 6..32
        self.phases = None  # 1 when one phase is wanted, else None (the board's default)
        self._ok = None  # since when the surplus is enough to start
        self._low = None  # since when it is below 6 A while charging
        self._ph = None  # since when the surplus asks for the other phase count
        self._ph_last = None  # when the phases were last changed (None: long ago)
        self._seen = 0  # phases the car drew on in this session
        self._wake = asyncio.Event()

    # -- API ------------------------------------------------------------------------------
    def active(self):
        return bool(self.cp.config.get("fup")) and self.cp.charger.plugged

    def age(self):
        if self.data_ms is None:
            return None
        return ticks_diff(self._now(), self.data_ms)

    def status(self, out):
        d = self.data
        out["ids"] = None if d is None else {"pGrid": d[0], "pPv": d[1], "pAkku": d[2]}
        out["pgrid"] = None if d is None else d[0]
        out["ppv"] = None if d is None else d[1]
        out["pakku"] = None if d is None else d[2]
        out["inva"] = self.age()

    def owns(self, key):
        return key in _KEYS

    def check(self, key, value):
        if key != "ids":
            return "read-only"
        if value is None:
            return None
        if not isinstance(value, dict) or not _num(value.get("pGrid")):
            return 'expected {"pGrid": W, "pPv": W, "pAkku": W} (pGrid a number)'
        for k in ("pPv", "pAkku"):
            v = value.get(k)
            if v is not None and not _num(v):
                return k + ": a number of W or null"
        return None

    def apply(self, changes):
        v = changes["ids"]
        if v is None:
            self.data = None
            self.data_ms = None
        else:
            self.data = tuple(v.get(k) for k in _FIELDS)
            self.data_ms = self._now()
            c = self.cp.charger
            self._car_w = c.nrg[11] if c.meter_ok else 0  # in the grid figure pushed
        self._wake.set()
        return None

    # -- control --------------------------------------------------------------------------
    def _set(self, amps):
        if amps != self.amps:
            self.amps = amps
            self.cp.charger.set_limit(amps, _SOURCE)

    def _ask_phases(self, want):
        if want == self.phases:
            return
        self.phases = want
        self._ph_last = self._now()
        limits = self.cp.limits
        if limits is not None:
            limits.wake()  # smart charging merges the phases it hands the charger
        else:
            self.cp.charger.phases_asked = want

    def _volts(self):
        c = self.cp.charger
        s = 0.0
        n = 0
        if c.meter_ok:
            for k in range(3):
                if c.nrg[k] >= 100:
                    s += c.nrg[k]
                    n += 1
        return s / n if n else _V_NOM

    def _can_switch(self):
        cp = self.cp
        return cp.hal.phase_switch is not None and cp.config.get("psm") == 0

    def step(self):
        now = self._now()
        cp = self.cp
        c = cp.charger
        self._ph_last = _since(self._ph_last, now, _PHASE_GAP_MS)
        if not cp.config.get("fup"):
            self._set(None)
            self._ok = self._low = self._ph = None
            if self.phases is not None:
                self._ask_phases(None)
            return
        if not c.plugged:
            self._seen = 0
        elif c.energized:
            self._seen = phases_in_use(c)
        d = self.data
        if not c.plugged or d is None or ticks_diff(now, self.data_ms) >= _STALE_MS:
            self._set(0)
            self._ok = self._low = None
            return
        volts = self._volts()
        surplus = self._car_w - d[0] - max(d[2] or 0, 0)
        if self._can_switch():
            self._phases(surplus, volts, now)
        n = 1 if self.phases == 1 else (self._seen or phases_in_use(c))
        a = int(surplus // (volts * n))
        if not self.amps:  # paused (or just switched on)
            self._set(0)
            if a < _MIN_A:
                self._ok = None
            elif self._ok is None:
                self._ok = now
            elif ticks_diff(now, self._ok) >= _START_MS:
                self._ok = None
                self._low = None
                self._set(min(a, _MAX_A))
            return
        if a >= _MIN_A:
            self._low = None
            self._set(min(a, _MAX_A))
        elif self._low is None:
            self._low = now
            self._set(_MIN_A)
        elif ticks_diff(now, self._low) >= _STOP_MS:
            self._low = None
            self._set(0)

    def _phases(self, surplus, volts, now):
        three = _MIN_A * 3 * volts
        if self.phases == 1:
            other = surplus >= three + _PHASE_HYST_W
        else:
            other = surplus < three
        if not other:
            self._ph = None
        elif self._ph is None:
            self._ph = now
        elif ticks_diff(now, self._ph) >= _PHASE_MS and self._ph_last is None:
            self._ph = None
            self._ask_phases(None if self.phases == 1 else 1)

    async def run(self):
        while True:
            self.step()
            await nap(self._wake, _STEP_MS)
            self._wake.clear()


def _since(t, now, ms):
    """A "since" timestamp, or None once `ms` have passed (judged every step: a latch)."""
    if t is not None and ticks_diff(now, t) >= ms:
        return None
    return t


def attach(cp):
    solar = Solar(cp)
    cp.solar = solar
    cp.status_keys(solar)
    return [solar.run]
