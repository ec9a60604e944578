"""IEC 61851-1 charging state machine with the safety behaviours of REFERENCE.md section 2.

Hardware (`hal`, see hal/base.py) and time (`now_ms`) are injected. `tick()` runs every
20 ms from `run()`; it does no flash writes and no allocation beyond small tuples.

Two kinds of reasons stop the power:
- hard (safety): the car leaves C (or D with ventilation), RCD trip, diode or pilot fault,
  any latched fault, lock not confirmed: the contactor opens in the same tick.
- soft (EVSE-initiated): authorization withdrawn, frc=1, unavailable, limit below 6 A,
  energy limit (dwo) reached, over-temperature stop, phase switch: the pilot goes to 100 %
  duty, and the contactor opens when the car leaves C/D or after 6 s anyway.

Decisions where the spec leaves a choice:
- Meter lost (board with a meter): the offered current falls back to 6 A until it answers.
- Over-temperature (hottest sensor): >= 65 C half, >= 75 C quarter of the board maximum,
  >= 85 C stop (err 13); each level clears 5 C below its threshold. A failed sensor
  (read_c() None) is a fault (err 12).
- err codes: RCD trip 2 (FiDc, the 6 mA DC monitor), failed RCD self-test 11, welded 9,
  contactor miss 10, diode 6, PP invalid 7, pilot E / invalid level 12, lock 15 / 16.
- RCD trip latches until reset_fault(); at most 3 resets until a session ends without a trip.
- A welded contactor clears only by reset_fault() once the feedback shows no power.
- frc=2 charges without authorization (never without the safety conditions).
- The duty changes at most once per 5 s: a raise waits until 5 s after the last change
  (any change, the start of PWM included); decreases, starts and stops of PWM act at once.
- Time windows ("since" timestamps) are latches: each is judged every tick and becomes None
  once its window has passed, so no ticks_ms difference ever spans more than a few seconds
  (ticks_diff is only valid within 2**29 ms, about 6.2 days).
- The contactor closes only on PWM that has run >= 40 ms with a diode check passed on it,
  and never within 1 s of an open (no chatter).
- A tick that raises (a HAL call, a bug): contactor open, pilot off, fault "tick" (err 12)
  latched until reset_fault() or unplug. The watchdog is fed only by a completed tick.
- Meter: a reading with a non-finite number counts as lost; no good reading for 5 s counts
  as lost (a stuck meter task). Current > 0.5 A on any phase for >= 1 s with the contactor
  open is a weld (the only weld detection on boards without relay feedback).
- release_lock() (UnlockConnector) unlocks regardless of `ust` until the cable is removed
  (unplug; with PP, no cable), never while power may be on the output.
"""

import compat
import log
from compat import const, ticks_diff
from firmware.evse import pilot as _pilot

_STOP_MS = const(6000)  # EVSE stop: the car has this long to go to B (Table A.6 seq. 10.2)
_RAISE_MS = const(5000)  # a higher duty at most once per 5 s (seq. 6)
_SETTLE_MS = const(40)  # PWM settle time before the diode is judged
_WELD_MS = const(200)  # feedback must show no power this long after opening
_MISS_MS = const(500)  # feedback must show power within this after closing
_RECLOSE_MS = const(1000)  # no close within this after an open
_METER_STALE_MS = const(5000)  # no good meter reading this long: meter lost
_WELD_MA = const(500)  # metered current with the contactor open: welded ...
_WELD_CUR_MS = const(1000)  # ... when seen this long
_LOCK_MS = const(1000)  # wait for lock feedback per motor pulse
_LOCK_TRIES = const(3)
_RCD_RESETS = const(3)
_RCD_PERIOD_MS = const(86400000)  # RCD self-test every 24 h (when the contactor is open)
_PS_F_MS = const(3000)  # pilot disconnect (state F) around a phase switch
_T_HALF = const(65)
_T_QUARTER = const(75)
_T_STOP = const(85)
_T_HYST = const(5)
_SAFE_AMPS = const(6)

ERR_NONE = const(0)
ERR_FI_DC = const(2)
ERR_DIODE = const(6)
ERR_PP = const(7)
ERR_WELD = const(9)
ERR_MISS = const(10)
ERR_FI_UNKNOWN = const(11)
ERR_UNKNOWN = const(12)
ERR_OVERTEMP = const(13)
ERR_LOCK_OPEN = const(15)
ERR_LOCK_LOCKED = const(16)

# Fault name -> err code, in priority order (the first active one is reported).
_FAULTS = (
    ("weld", ERR_WELD),
    ("rcd", ERR_FI_DC),
    ("rcd_test", ERR_FI_UNKNOWN),
    ("miss", ERR_MISS),
    ("pilot", ERR_UNKNOWN),
    ("tick", ERR_UNKNOWN),
    ("diode", ERR_DIODE),
    ("pp", ERR_PP),
    ("sensor", ERR_UNKNOWN),
    ("lock", ERR_LOCK_OPEN),
    ("unlock", ERR_LOCK_LOCKED),
)
_CUS = {"unlocked": 1, "locked": 3}


def _left(t, now, ms):
    """A "since" timestamp, or None once `ms` have passed (judged every tick: a latch)."""
    if t is not None and ticks_diff(now, t) >= ms:
        return None
    return t


def _fin(x):
    """x as a finite float; raises ValueError for NaN, infinities and non-numbers."""
    x = float(x)
    if x - x != 0:
        raise ValueError("not finite")
    return x


def _vec(v):
    if not v:
        return (0.0, 0.0, 0.0)
    return (_fin(v[0]), _fin(v[1]), _fin(v[2]))


class Charger:
    def __init__(self, hal, config, now_ms=compat.ticks_ms):
        self.hal = hal
        self.config = config
        self._now = now_ms
        self._subs = []
        now = now_ms()
        # inputs
        self.auth_required = True
        self.authorized = False
        self.available = True
        self._limits = {}
        # status
        self.state = "A"
        self.iec = "A"
        self.car = 1
        self.err = ERR_NONE
        self.acu = None
        self.alw = False
        self.energized = False
        self.session_wh = 0.0
        self.energy_wh = None
        self.export_wh = None  # the meter's export register, Wh (None: not read)
        self.nrg = [0] * 16
        self.tma = []
        self.cus = 0
        self.status = "available"
        self.offered = None
        self.meter_ok = True
        self.faults = {}
        self.counters = {"rcd_trips": 0, "welds": 0, "rcd_resets": 0}
        # internals
        self._cp = "A"
        self._cand = None
        self._duty = -2  # forces the first set_duty
        self._pwm_ms = now  # PWM (re)started; None: settled (>= 40 ms)
        self._raise_ms = now  # last duty change; None: >= 5 s ago
        self._diode = False  # a diode check passed on the current PWM
        self._diode_bad = 0
        self._rcd_ok = False
        self._rcd_ms = None  # last self-test; None: >= 24 h ago (or never)
        self._rcd_resets = 0
        self._rcd_in_session = False
        self._closed_ms = now  # None: closed >= 500 ms (miss check armed)
        self._opened_ms = now  # None: open >= 200 ms (weld check armed)
        self._reclose_ms = None  # last open; None: >= 1 s ago
        self._unlock_ms = None  # last open of a closed contactor; None: >= 200 ms ago
        self._stop_ms = None
        self._meter_ms = now  # last good meter reading; None: > 5 s ago
        self._amps_open_ms = None  # metered current with the contactor open, since
        self._lock_target = None
        self._lock_tries = 0
        self._lock_ms = None  # last lock pulse; None: >= 1 s ago
        self._release = False  # release_lock() pending until the cable is removed
        self._temp_level = 0
        self._plugged = False
        # Phases the smart charging profiles ask for (1, or None: the board's default); the
        # user's phase mode `psm` 1 or 2 wins, psm 0 (auto) follows it.
        self.phases_asked = None
        self._start_wh = None
        self._charged = False
        self._done = False
        self._ps_ms = None
        self._phases = None  # position of the phase switch, unknown until first set
        self._low = 0.0
        self._last_err = ERR_NONE
        # Fail safe from the first instant: contactor open, no charging offered.
        hal.relay.open()
        self._set_duty(1000, now)

    # -- inputs from the app, API and OCPP
    @property
    def plugged(self):
        """A car is connected (pilot not in state A): the one owner of this fact."""
        return self._plugged

    def subscribe(self, fn):
        self._subs.append(fn)

    def authorize(self, ok):
        self.authorized = bool(ok)

    def set_available(self, ok):
        self.available = bool(ok)

    def set_limit(self, amps, source):
        """A current limit (A) from `source` ("ocpp", "api", ...); None removes it."""
        if amps is None:
            self._limits.pop(source, None)
        else:
            if not amps >= 0:
                amps = 0  # NaN or negative: no charging (min() would ignore a NaN)
            self._limits[source] = amps

    def release_lock(self):
        """Operator unlock (OCPP UnlockConnector): unlock the socket whatever `ust` says,
        until the cable is removed. Never under power: while energised the lock stays and the
        unlock follows once the contactor is open (the caller stops a running session
        first). The next ticks drive the lock with the usual bounded retries; `cus` follows.
        While released the lock is not confirmed, so no charging is offered."""
        self._release = True
        if self._lock_target != "unlocked":
            self._lock_target = None  # a fresh set of retries

    def reset_fault(self):
        """Deliberate user/operator reset. Returns True when every fault it may clear is
        gone."""
        f = self.faults
        hal = self.hal
        ok = True
        if "rcd" in f:
            if self._rcd_resets >= _RCD_RESETS:
                log.error("charger", "RCD reset refused: too many retries")
                return False
            self._rcd_resets += 1
            self.counters["rcd_resets"] += 1
            hal.rcd.reset()
            if hal.rcd.tripped():
                ok = False
            else:
                del f["rcd"]
                self._rcd_ok = False  # test again before the next close
        if "weld" in f:
            if hal.relay.closed or hal.relay.feedback():
                ok = False
            else:
                del f["weld"]
        for name in ("miss", "rcd_test", "lock", "unlock", "tick"):
            if name in f:
                del f[name]
                if name == "rcd_test":
                    self._rcd_ok = False
        self._lock_tries = 0
        return ok

    # -- helpers
    def _cfg(self, name, default):
        try:
            v = self.config.get(name)
        except Exception:
            return default
        return default if v is None else v

    def _emit(self, event, data=None):
        for fn in self._subs:
            try:
                fn(event, data)
            except Exception as e:  # a broken listener must not stop the safety tick
                log.error("charger", "listener", event, e)

    def _fault(self, name, code):
        if name not in self.faults:
            self.faults[name] = code
            log.error("charger", "fault", name, code)

    def _clear(self, name):
        if name in self.faults:
            del self.faults[name]
            log.info("charger", "fault cleared", name)

    def _set_duty(self, d, now):
        """d: permille, or -1 for state F."""
        if d == self._duty:
            return
        pwm_before = 0 < self._duty < 1000
        pwm = 0 < d < 1000
        if d < 0:
            self.hal.pilot.set_f()
        else:
            self.hal.pilot.set_duty(d)
        if pwm != pwm_before:
            # PWM starts or stops: the diode is judged anew on the new PWM, after it settled.
            # (A closed contactor keeps the last result: it cannot be judged at 100 %.)
            self._pwm_ms = now
            if not self.hal.relay.closed:
                self._diode = False
        if pwm:
            self._raise_ms = now  # every change counts, decreases included (seq. 6)
        self._duty = d

    def _open(self, now, why):
        if self.hal.relay.closed:
            log.info("charger", "open", why)
            self._unlock_ms = now
        self.hal.relay.open()
        self._opened_ms = now
        self._reclose_ms = now
        self._stop_ms = None

    def _weld(self):
        if "weld" not in self.faults:
            self.counters["welds"] += 1
        self._fault("weld", ERR_WELD)

    def _age(self, now):
        """Close every time window that has passed (see the module docstring)."""
        self._pwm_ms = _left(self._pwm_ms, now, _SETTLE_MS)
        self._raise_ms = _left(self._raise_ms, now, _RAISE_MS)
        self._closed_ms = _left(self._closed_ms, now, _MISS_MS)
        self._opened_ms = _left(self._opened_ms, now, _WELD_MS)
        self._reclose_ms = _left(self._reclose_ms, now, _RECLOSE_MS)
        self._unlock_ms = _left(self._unlock_ms, now, _WELD_MS)
        self._lock_ms = _left(self._lock_ms, now, _LOCK_MS)
        self._rcd_ms = _left(self._rcd_ms, now, _RCD_PERIOD_MS)
        if self._meter_ms is not None and ticks_diff(now, self._meter_ms) > _METER_STALE_MS:
            self._meter_ms = None
            if self.meter_ok:
                log.error("charger", "meter lost: no reading")
            self.meter_ok = False

    # -- the 20 ms safety tick
    def tick(self):
        hal = self.hal
        relay = hal.relay
        now = self._now()
        faults = self.faults
        board = hal.board
        self._age(now)

        # RCD: the hardware opened the contactor already; latch and follow.
        if hal.rcd.tripped():
            if "rcd" not in faults:
                self.counters["rcd_trips"] += 1
                self._rcd_in_session = True
            self._fault("rcd", ERR_FI_DC)

        cp = self._read_pilot(now)
        plugged = cp != "A"
        if plugged and not self._plugged:
            self._on_plug()
        elif cp == "A" and self._plugged:
            self._on_unplug()

        tag = hal.reader.poll()
        if tag:
            self._emit("card", tag)

        # Contactor feedback: welded, or failed to close.
        fb = relay.feedback()
        if fb is not None:
            if fb and not relay.closed and self._opened_ms is None:
                self._weld()
            if not fb and relay.closed and self._closed_ms is None:
                self._fault("miss", ERR_MISS)

        # Pilot level faults (E, invalid), diode.
        if cp == "E" or cp == "X":
            self._fault("pilot", ERR_UNKNOWN)
        elif "pilot" in faults and cp in ("A", "B"):
            self._clear("pilot")
        self._check_diode(cp, now)

        # Temperatures.
        temps = hal.temp.read_c()
        if temps is None:
            self._fault("sensor", ERR_UNKNOWN)
            self.tma = []
        else:
            self._clear("sensor")
            self.tma = temps
            self._temp(temps)

        # Cable rating.
        cable = None
        ohms = hal.pp.read_ohms()
        if ohms is not None and self._release and _pilot.pp_amps(ohms) == 0:
            self._release = False  # the cable is out: the operator unlock has done its job
        if ohms is not None and plugged:
            cable = _pilot.pp_amps(ohms)
            if cable <= 0:
                self._fault("pp", ERR_PP)
                cable = None
            else:
                self._clear("pp")

        # RCD self-test before each session and every 24 h, contactor open only.
        if plugged and not relay.closed and "rcd" not in faults and "rcd_test" not in faults:
            if not self._rcd_ok or self._rcd_ms is None:
                self._rcd_ok = bool(hal.rcd.self_test())
                self._rcd_ms = now
                if not self._rcd_ok:
                    self._fault("rcd_test", ERR_FI_UNKNOWN)

        # Energy limit.
        dwo = self._cfg("dwo", None)
        if dwo and self.session_wh >= dwo and plugged:
            self._done = True

        amps = self._offer(cable)
        self.offered = amps
        frc = self._cfg("frc", 0)
        authed = frc == 2 or not self.auth_required or self.authorized
        lock = hal.lock
        locked = not lock.present or lock.state() == "locked"
        vent_ok = cp == "C" or (cp == "D" and board["ventilation"])
        clean = not faults and self._rcd_ok

        phases = self._phase_target()
        ps_busy = phases is not None and plugged

        soft_ok = (
            plugged
            and cp in ("B", "C", "D")
            and self.available
            and frc != 1
            and authed
            and not self._done
            and self._temp_level < 3
            and amps is not None
            and not ps_busy
        )
        want_pwm = soft_ok and clean and locked

        # Lock: locked whenever power may be on the output; otherwise per `ust`.
        self._drive_lock(plugged, soft_ok, fb, now)

        # Contactor.
        hard_ok = vent_ok and clean and locked and self._diode and "rcd" not in faults
        if relay.closed:
            if not hard_ok:
                self._open(now, "safety")
            elif not want_pwm:
                if self._stop_ms is None:
                    self._stop_ms = now
                elif ticks_diff(now, self._stop_ms) >= _STOP_MS:
                    self._open(now, "stop timeout")
            else:
                self._stop_ms = None

        # Pilot output.
        if want_pwm:
            d = _pilot.duty_for_current(amps)
            cur = self._duty
            if 0 < cur < 1000 and d > cur and self._raise_ms is not None:
                d = cur  # a raise waits until 5 s after the last change
            self._set_duty(d, now)
        elif relay.closed:
            self._set_duty(1000, now)
        elif phases is not None and self._ps_ms is not None:
            self._phase_switch(phases, now)
        elif phases is not None and not self.available:
            # Unavailable: the pilot is at -12 V (state F) and the car cannot be seen, so a
            # phase switch waits until the charger is available and the car is back in B
            # (rule 11); the last state seen before F may be stale.
            self._set_duty(-1, now)
        elif phases is not None and (fb or "weld" in faults or self._unlock_ms is not None):
            self._set_duty(1000, now)  # power may still be on the output: no switching
        elif phases is not None and ps_busy:
            if self._cp in ("A", "B"):
                self._phase_switch(phases, now)  # the car is back in B (rule 11)
            else:
                self._set_duty(1000, now)  # wait for the car to leave C/D
        elif phases is not None:
            hal.phase_switch.set(phases)  # no car: no pilot disconnect needed
            self._phases = phases
            self._set_duty(1000 if self.available else -1, now)
        elif not self.available:
            self._set_duty(-1, now)
        else:
            self._set_duty(1000, now)
        pwm = 0 < self._duty < 1000

        # Close on settled PWM with a diode check passed on it (re-read: starting PWM above
        # clears it), never within 1 s of an open.
        if (
            not relay.closed
            and want_pwm
            and pwm
            and hard_ok
            and self._diode
            and self._pwm_ms is None
            and self._reclose_ms is None
        ):
            relay.close()
            self._closed_ms = now
            self._charged = True
            log.info("charger", "close", amps, "A")

        self._status(cp, plugged, authed and not soft_ok, want_pwm, pwm)
        hal.wdt.feed()  # only a completed safety tick feeds the watchdog

    def _read_pilot(self, now):
        if self._duty < 0:
            return self._cp  # state F: the car cannot be read
        high, low = self.hal.pilot.read()
        self._low = low
        c = _pilot.classify(high, self._cp)
        prev = self._cp
        if c == prev:
            self._cand = None
        elif prev in ("C", "D") and c not in ("C", "D"):
            self._cp = c  # power request gone: act at once (open within 100 ms)
            self._cand = None
        elif self._cand == c:
            self._cp = c  # two equal readings in a row
            self._cand = None
        else:
            self._cand = c
        return self._cp

    def _check_diode(self, cp, now):
        d = self._duty
        if not (0 < d < 1000) or cp not in ("B", "C", "D"):
            self._diode_bad = 0
            return
        if self._pwm_ms is not None:
            return  # not settled yet
        if _pilot.diode_ok(self._low):
            self._diode = True
            self._diode_bad = 0
        else:
            self._diode = False  # never close, open at once
            self._diode_bad += 1
            if self._diode_bad >= 2:
                self._fault("diode", ERR_DIODE)

    def _temp(self, temps):
        t = max(temps) if temps else None
        if t is None:
            self._temp_level = 0
            return
        up = 3 if t >= _T_STOP else 2 if t >= _T_QUARTER else 1 if t >= _T_HALF else 0
        t += _T_HYST
        down = 3 if t >= _T_STOP else 2 if t >= _T_QUARTER else 1 if t >= _T_HALF else 0
        lv = max(up, min(self._temp_level, down))
        if lv != self._temp_level:
            log.info("charger", "temperature level", lv, temps)
        self._temp_level = lv

    def _offer(self, cable):
        """Current to offer (A) or None when below 6 A."""
        board = self.hal.board
        bmax = board["max_current"]
        a = min(bmax, self._cfg("ama", bmax), self._cfg("amp", bmax))
        if cable is not None:
            a = min(a, cable)
        for k in self._limits:
            a = min(a, self._limits[k])
        lv = self._temp_level
        if lv == 1:
            a = min(a, bmax / 2)
        elif lv == 2:
            a = min(a, bmax / 4)
        elif lv >= 3:
            a = 0
        if not self.meter_ok and board.get("meter", "none") not in ("none", "", None):
            a = min(a, _SAFE_AMPS)
        if not a >= _pilot.MIN_AMPS:  # NaN included
            return None
        if a == int(a):
            a = int(a)
        return a

    def _drive_lock(self, plugged, soft_ok, fb, now):
        lock = self.hal.lock
        if not lock.present:
            self.cus = 1
            return
        ust = self._cfg("ust", 0)
        if ust == 2:
            want = True
        elif ust == 1:
            want = plugged and not self._done and (soft_ok or not self._charged)
        else:
            want = plugged
        if self._release:
            want = False
        if (
            self.hal.relay.closed
            or self.energized
            or fb
            or "weld" in self.faults
            or self._unlock_ms is not None
        ):
            want = True  # never unlock while power may be on the output
        target = "locked" if want else "unlocked"
        st = lock.state()
        if target != self._lock_target:
            self._lock_target = target
            self._lock_tries = 0
            self._lock_ms = None
        if st == target:
            self._lock_tries = 0
            self._lock_ms = None
            self.cus = _CUS[st]
            if not want:
                self._clear("unlock")
            return
        self.cus = 0
        name = "lock" if want else "unlock"
        if name in self.faults:
            self.cus = 4 if want else 2
            return
        if self._lock_ms is not None:
            return  # waiting for the feedback of the last pulse
        if self._lock_tries >= _LOCK_TRIES:
            self._fault(name, ERR_LOCK_OPEN if want else ERR_LOCK_LOCKED)
            return
        lock.drive(want)
        self._lock_tries += 1
        self._lock_ms = now

    def _phase_target(self):
        ps = self.hal.phase_switch
        if ps is None:
            return None
        psm = self._cfg("psm", 0)
        if psm == 0 and self.phases_asked == 1:
            psm = 1  # auto: smart charging asks for one phase
        n = 1 if psm == 1 else 3 if psm == 2 else self.hal.board["phases"]
        if self._phases == n and self._ps_ms is None:
            return None
        return n

    def _phase_switch(self, phases, now):
        """Contactor open: pilot disconnect (F) for 3 s, switch, then resume."""
        if self._ps_ms is None:
            self._ps_ms = now
            self._set_duty(-1, now)
            self.hal.phase_switch.set(phases)
            self._phases = phases
            log.info("charger", "phases", phases)
        elif ticks_diff(now, self._ps_ms) >= _PS_F_MS:
            self._ps_ms = None
            self._set_duty(1000, now)

    def _on_plug(self):
        self._plugged = True
        self._start_wh = self.energy_wh
        self.session_wh = 0.0
        self._charged = False
        self._done = False
        self._rcd_ok = False
        self._rcd_in_session = False
        self._lock_tries = 0
        self._diode = False
        self._release = False  # released with no car: a cable is in again
        self._emit("plugged")

    def _on_unplug(self):
        self._plugged = False
        self.authorized = False
        self._diode = False
        self._release = False  # the cable is out
        for name in ("diode", "miss", "pp", "lock", "rcd_test", "pilot", "tick"):
            self._clear(name)
        if not self._rcd_in_session and "rcd" not in self.faults:
            self._rcd_resets = 0
        self._done = False
        self._emit("unplugged")

    def _status(self, cp, plugged, evse_stop, want_pwm, pwm):
        relay = self.hal.relay
        if relay.closed != self.energized:
            self.energized = relay.closed
            self._emit("energized" if self.energized else "deenergized")
        err = ERR_NONE
        for name, code in _FAULTS:
            if name in self.faults:
                err = code
                break
        if err == ERR_NONE and self._temp_level >= 3:
            err = ERR_OVERTEMP
        self.err = err
        if err != self._last_err:
            if err:
                self._emit("fault", err)
            else:
                self._emit("fault_cleared")
            self._last_err = err
        self.alw = pwm
        self.acu = None
        if pwm and self.offered is not None:
            a = self.offered
            if self._duty < _pilot.duty_for_current(a):
                # A raise still held back (5 s rule): the current of the duty in force,
                # rounded to the amps it was set for (8 A is 133 permille, read 7.98 A).
                a = int(_pilot.current_for_duty(self._duty) + 0.5)
            self.acu = int(a)
        if self._duty < 0:
            self.state = "F"
        else:
            self.state = "E" if cp == "X" else cp
        s = self.state
        self.iec = s + ("2" if pwm else "1") if s in ("B", "C", "D") else s
        if err:
            self.car = 5
        elif not plugged:
            self.car = 1
        elif self.energized:
            self.car = 2
        elif self._charged or self._done:
            self.car = 4
        else:
            self.car = 3
        if err and err != ERR_OVERTEMP:
            st = "faulted"
        elif not plugged:
            st = "available" if self.available else "unavailable"
        elif want_pwm and self.energized:
            st = "charging"
        elif want_pwm and cp == "B":
            st = "suspended_ev"
        elif evse_stop:
            st = "suspended_evse"
        else:
            st = "preparing"
        if st != self.status:
            self.status = st
            if st in ("charging", "suspended_ev", "suspended_evse"):
                self._emit(st)

    # -- meter
    def on_meter(self, m):
        """Feed one meter reading (dict as hal/base.py Meter.read, or None). A reading that
        is not a dict of finite numbers counts as None (lost): never raises."""
        if m is not None:
            try:
                u = m.get("u") or (0, 0, 0)
                i = m.get("i") or (0, 0, 0)
                p = m.get("p") or (0, 0, 0)
                pf = m.get("pf") or (0, 0, 0)
                pt = m.get("p_total", 0)
                e = m.get("e_wh")
                ex = m.get("e_exp_wh")
                for v in (u, i, p, pf):
                    _vec(v)
                _fin(pt)
                if e is not None:
                    _fin(e)
                if ex is not None:
                    _fin(ex)
                imax = max(_vec(i))
            except Exception as ex:
                log.error("charger", "bad meter reading", ex)
                m = None
        if m is None:
            if self.meter_ok:
                log.error("charger", "meter lost")
            self.meter_ok = False
            return
        now = self._now()
        self.meter_ok = True
        self._meter_ms = now
        # Current with the contactor open (for >= 1 s): welded. Boards without feedback
        # have no other way to see it (hal/esp32/board_config.py).
        if not self.hal.relay.closed and self._opened_ms is None and imax * 1000 > _WELD_MA:
            if self._amps_open_ms is None:
                self._amps_open_ms = now
            elif ticks_diff(now, self._amps_open_ms) >= _WELD_CUR_MS:
                self._amps_open_ms = None
                self._weld()
        else:
            self._amps_open_ms = None
        n = self.nrg
        for k in range(3):
            n[k] = u[k]
            n[4 + k] = i[k]
            n[7 + k] = p[k]
            n[12 + k] = round(pf[k] * 100)
        n[3] = 0
        n[10] = 0
        n[11] = pt
        n[15] = 0
        if ex is not None:
            self.export_wh = ex
        if e is not None:
            self.energy_wh = e
            if self._plugged:
                if self._start_wh is None:
                    self._start_wh = e
                self.session_wh = e - self._start_wh

    async def poll_meter(self):
        """One meter reading into on_meter(); never raises (the meter task must live)."""
        try:
            m = await self.hal.meter.read()
        except Exception as e:
            log.error("charger", "meter", e)
            m = None
        self.on_meter(m)

    async def run_meter(self):
        import asyncio

        while True:
            await self.poll_meter()
            await asyncio.sleep(1)

    def safe_tick(self):
        """tick() with the fail safe: when it raises, the contactor opens, the pilot goes to
        100 % and the fault "tick" (err 12) latches until reset_fault() or unplug. Returns
        False after a failed tick."""
        try:
            self.tick()
            return True
        except Exception as e:
            self._fail_safe(e)
            return False

    def _fail_safe(self, e):
        hal = self.hal
        try:
            now = self._now()
            if hal.relay.closed:
                self._unlock_ms = now  # the lock holds while the contacts open
            hal.relay.open()  # never raises (hal/base.py)
            self._opened_ms = now
            self._reclose_ms = now
        except Exception:
            pass
        self._stop_ms = None
        self._diode = False  # judged again on fresh PWM
        self._fault("tick", ERR_UNKNOWN)
        try:
            hal.pilot.set_duty(1000)
            self._duty = 1000
        except Exception:
            self._duty = -2  # unknown: the next tick sets the pilot again
        if self.energized and not hal.relay.closed:
            self.energized = False
            self._emit("deenergized")
        log.error("charger", "tick", e)

    async def run(self):
        import asyncio

        while True:
            self.safe_tick()
            await asyncio.sleep(0.02)
