"""IEC 61851-1 charging state machine with the safety behaviours of REFERENCE.md section 2.

Hardware (`hal`, see hal/base.py) and time (`now_ms`) are injected. `tick()` runs every
20 ms from `run()`. It writes no flash, and on the MicroPython VM it allocates no heap in
steady state (integers, interned strings, constant tables; measured by
tests_host/test_charger_alloc.py), so the garbage collector never runs because of it.

The tick reads as sense, decide, actuate: the `_sense_*` steps read every input once and
latch the faults they show; the predicates `_may_offer` (soft conditions), `_want_pwm`,
`_safe_to_power` (hard conditions) and `_may_close` decide; the `_drive_*` steps set the
lock, the contactor and the pilot. A phase switch is a sequence of its own (`_ps`:
`_PS_IDLE`, `_PS_WAIT`, `_PS_PAUSE`).

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
  (read_c() None) is a fault (err 12). Temperatures are read once a second (in the tick):
  they change slowly, and a sensor driver's float math would allocate at 50 Hz. The tick
  that would close the contactor reads them afresh, and closes only when that reading
  changes nothing (else the next tick decides on it): power never comes on a stale reading.
- err codes: RCD trip 2 (FiDc, the 6 mA DC monitor), failed RCD self-test 11, welded 9,
  contactor miss 10, diode 6, PP invalid 7, pilot E / invalid level 12, lock 15 / 16.
- Contactor miss (err 10): no power on the feedback 500 ms after closing, unless the RCD
  shows a trip: the RCD hardware opens the contactor by itself, which is its fault (err 2),
  not the contactor's. The feedback is read before the RCD in each tick, so a trip between
  the two reads is seen as such.
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
- Meter: a reading with a non-finite number (or a non-number) counts as lost; no good reading
  for 5 s counts as lost (a stuck meter task). Current > 0.5 A on any phase for >= 1 s with
  the contactor open is a weld (the only weld detection on boards without relay feedback).
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
_WELD_A = 0.5  # metered current (A) with the contactor open: welded ...
_WELD_CUR_MS = const(1000)  # ... when seen this long
_LOCK_MS = const(1000)  # wait for lock feedback per motor pulse
_LOCK_TRIES = const(3)
_RCD_RESETS = const(3)
_RCD_PERIOD_MS = const(86400000)  # RCD self-test every 24 h (when the contactor is open)
_PS_F_MS = const(3000)  # pilot disconnect (state F) around a phase switch
_TEMP_MS = const(1000)  # temperatures are read once a second
_TICK_MS = const(20)  # the safety tick's period (run())
_T_HALF = const(65)
_T_QUARTER = const(75)
_T_STOP = const(85)
_T_HYST = const(5)
_SAFE_AMPS = const(6)

# `nrg`, the go-e layout of the readings (16 numbers), owned here; other modules index it with
# these: U L1 L2 L3 N (V), I L1 L2 L3 (A), P L1 L2 L3 N total (W), power factor L1 L2 L3 N (%).
NRG_U = const(0)
NRG_I = const(4)
NRG_P = const(7)
NRG_P_TOTAL = const(11)
NRG_PF = const(12)

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
_IEC = ("B1", "B2", "C1", "C2", "D1", "D2")  # `iec` in B, C, D: without and with PWM
_INF = float("inf")
_NINF = -_INF

# The phase switch sequence (rule 11), Charger._ps:
_PS_IDLE = const(0)  # the switch is where the phase mode wants it
_PS_WAIT = const(1)  # another phase count is wanted: no charging offered until the contactor
#                      is open, no power may be on the output and the car is in B (or gone)
_PS_PAUSE = const(2)  # switched with a car present: the pilot holds state F for 3 s


def _left(t, now, ms):
    """A "since" timestamp, or None once `ms` have passed (judged every tick: a latch)."""
    if t is not None and ticks_diff(now, t) >= ms:
        return None
    return t


def _finite(x):
    """Raises ValueError for NaN and infinities, TypeError for a non-number (comparisons
    only: no float is made)."""
    if not _NINF < x < _INF:
        raise ValueError("not finite")


def _finite3(v):
    _finite(v[0])
    _finite(v[1])
    _finite(v[2])


class Charger:
    def __init__(self, hal, config, now_ms=compat.ticks_ms):
        # Its fields, and the outputs fail safe (charger_init.py, lent for the boot).
        compat.lend("firmware.evse.charger_init").init(self, hal, config, now_ms)

    # -- inputs from the app, API and OCPP
    @property
    def plugged(self):
        """A car is connected (pilot not in state A): the one owner of this fact."""
        return self._plugged

    def subscribe(self, fn):
        self._subs.append(fn)

    def unsubscribe(self, fn):
        if fn in self._subs:
            self._subs.remove(fn)

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

    # -- the 20 ms safety tick: sense, decide, actuate
    def tick(self):
        now = self._now()
        if self._unlatched:  # a failed tick had no room to latch its fault: first that
            self._fault("tick", ERR_UNKNOWN)
            self._unlatched = False
        self._age(now)

        # Sense: read every input once; latch the faults it shows. The contactor feedback
        # is read before the RCD, so a trip that opens the contacts in between shows in the
        # RCD's latch (it is never taken for a contactor that failed, err 10).
        fb = self.hal.relay.feedback()
        self._sense_rcd()
        cp = self._read_pilot()
        plugged = cp != "A"
        if plugged and not self._plugged:
            self._on_plug()
        elif not plugged and self._plugged:
            self._on_unplug()
        tag = self.hal.reader.poll()
        if tag:
            self._emit("card", tag)
        self._judge_contactor(fb)
        self._sense_pilot(cp)
        self._sense_temps(now)
        cable = self._sense_cable(plugged)
        self._self_test_rcd(plugged, now)

        # Decide.
        dwo = self._cfg("dwo", None)
        if dwo and self.session_wh >= dwo and plugged:
            self._done = True  # the energy limit is reached
        amps = self._offer(cable)
        self.offered = amps
        frc = self._cfg("frc", 0)
        authed = frc == 2 or not self.auth_required or self.authorized
        lock = self.hal.lock
        locked = not lock.present or lock.state() == "locked"
        phases = self._plan_phases()
        offer = self._may_offer(cp, frc, authed, amps)
        want_pwm = self._want_pwm(offer, locked)
        safe = self._safe_to_power(cp, locked)

        # Actuate: the lock, the contactor, the pilot, then close on settled PWM.
        self._drive_lock(plugged, offer, fb, now)
        self._drive_contactor(safe, want_pwm, now)
        self._drive_pilot(want_pwm, amps, phases, plugged, fb, now)
        if self._may_close(want_pwm, safe) and self._temps_confirm(now):
            self._close(amps, now)

        self._status(cp, plugged, authed and not offer, want_pwm)
        self.hal.wdt.feed()  # only a completed safety tick feeds the watchdog

    # -- sense
    def _age(self, now):
        """Close every time window that has passed (see the module docstring)."""
        self._settling_ms = _left(self._settling_ms, now, _SETTLE_MS)
        self._raise_hold_ms = _left(self._raise_hold_ms, now, _RAISE_MS)
        self._closing_ms = _left(self._closing_ms, now, _MISS_MS)
        self._opening_ms = _left(self._opening_ms, now, _WELD_MS)
        self._reclose_hold_ms = _left(self._reclose_hold_ms, now, _RECLOSE_MS)
        self._lock_hold_ms = _left(self._lock_hold_ms, now, _WELD_MS)
        self._lock_pulse_ms = _left(self._lock_pulse_ms, now, _LOCK_MS)
        self._rcd_test_ms = _left(self._rcd_test_ms, now, _RCD_PERIOD_MS)
        self._ps_pause_ms = _left(self._ps_pause_ms, now, _PS_F_MS)
        self._temp_ms = _left(self._temp_ms, now, _TEMP_MS)
        if self._meter_ms is not None and ticks_diff(now, self._meter_ms) > _METER_STALE_MS:
            self._meter_ms = None
            if self.meter_ok:
                log.error("charger", "meter lost: no reading")
            self.meter_ok = False

    def _sense_rcd(self):
        """A trip: the hardware opened the contactor already; latch it and follow."""
        if self.hal.rcd.tripped():
            if "rcd" not in self.faults:
                self.counters["rcd_trips"] += 1
                self._rcd_in_session = True
            self._fault("rcd", ERR_FI_DC)

    def _read_pilot(self):
        """The accepted pilot state: a change needs two equal readings in a row, except
        leaving C/D (acted on at once: open within 100 ms). In state F the car cannot be
        read and the last state stays."""
        if self._duty < 0:
            return self._cp
        high, low = self.hal.pilot.read()
        self._pilot_low = low
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

    def _judge_contactor(self, fb):
        """The contactor feedback (None on boards without): welded, or failed to close. No
        power with the contactor commanded closed is the contactor's fault only when no
        hardware protection opened it: a tripped RCD interrupts the coil by itself."""
        if fb is None:
            return
        relay = self.hal.relay
        if fb and not relay.closed and self._opening_ms is None:
            self._weld()
        if not fb and relay.closed and self._closing_ms is None and "rcd" not in self.faults:
            self._fault("miss", ERR_MISS)

    def _sense_pilot(self, cp):
        """Pilot level faults (state E, an invalid level) and the diode check."""
        faults = self.faults
        if cp == "E" or cp == "X":
            self._fault("pilot", ERR_UNKNOWN)
        elif "pilot" in faults and cp in ("A", "B"):
            self._clear("pilot")
        d = self._duty
        if not (0 < d < 1000) or cp not in ("B", "C", "D"):
            self._diode_bad = 0
            return
        if self._settling_ms is not None:
            return  # the PWM has not settled yet
        if _pilot.diode_ok(self._pilot_low):
            self._diode = True
            self._diode_bad = 0
        else:
            self._diode = False  # never close, open at once
            self._diode_bad += 1
            if self._diode_bad >= 2:
                self._fault("diode", ERR_DIODE)

    def _sense_temps(self, now):
        """Once a second: the temperatures, a failed sensor, the derating level."""
        if self._temp_ms is not None:
            return
        temps = self.hal.temp.read_c()
        self._temp_ms = now  # after the read: a read that raises is tried again next tick
        if temps is None:
            self._fault("sensor", ERR_UNKNOWN)
            self.tma = ()
        else:
            self._clear("sensor")
            self.tma = temps
            self._derate(temps)

    def _derate(self, temps):
        lv = 0
        if temps:
            t = max(temps)
            up = 3 if t >= _T_STOP else 2 if t >= _T_QUARTER else 1 if t >= _T_HALF else 0
            # A level clears 5 C below its threshold.
            down = (
                3 if t >= _T_STOP - _T_HYST
                else 2 if t >= _T_QUARTER - _T_HYST
                else 1 if t >= _T_HALF - _T_HYST
                else 0
            )  # fmt: skip
            lv = max(up, min(self._temp_level, down))
        if lv != self._temp_level:
            bmax = self.hal.board["max_current"]
            self._temp_cap = bmax / 2 if lv == 1 else bmax / 4  # made once per change
            if temps:
                log.info("charger", "temperature level", lv, temps)
        self._temp_level = lv

    def _sense_cable(self, plugged):
        """The cable rating (A) from the proximity pilot, or None (no PP, invalid coding)."""
        ohms = self.hal.pp.read_ohms()
        if ohms is not None and self._release and _pilot.pp_amps(ohms) == 0:
            self._release = False  # the cable is out: the operator unlock has done its job
        if ohms is None or not plugged:
            return None
        cable = _pilot.pp_amps(ohms)
        if cable <= 0:
            self._fault("pp", ERR_PP)
            return None
        self._clear("pp")
        return cable

    def _self_test_rcd(self, plugged, now):
        """RCD self-test before each session and every 24 h, contactor open only."""
        faults = self.faults
        if (
            plugged
            and not self.hal.relay.closed
            and "rcd" not in faults
            and "rcd_test" not in faults
            and (not self._rcd_ok or self._rcd_test_ms is None)
        ):
            self._rcd_ok = bool(self.hal.rcd.self_test())
            self._rcd_test_ms = now
            if not self._rcd_ok:
                self._fault("rcd_test", ERR_FI_UNKNOWN)

    # -- decide
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
        if lv >= 3:
            a = 0
        elif lv:
            a = min(a, self._temp_cap)  # half or a quarter of the board maximum
        if not self.meter_ok and board.get("meter", "none") not in ("none", "", None):
            a = min(a, _SAFE_AMPS)
        if not a >= _pilot.MIN_AMPS:  # NaN included
            return None
        if a == int(a):
            a = int(a)
        return a

    def _plan_phases(self):
        """The phase count the phase mode wants (None: no phase switch on this board), and
        the sequence's state: waiting while the switch is elsewhere (a pause runs on)."""
        if self.hal.phase_switch is None:
            return None
        psm = self._cfg("psm", 0)
        if psm == 0 and self.phases_asked == 1:
            psm = 1  # auto: smart charging asks for one phase
        n = 1 if psm == 1 else 3 if psm == 2 else self.hal.board["phases"]
        if self._ps != _PS_PAUSE:
            self._ps = _PS_IDLE if n == self._phases else _PS_WAIT
        return n

    def _may_offer(self, cp, frc, authed, amps):
        """The soft (EVSE side) conditions: charging may be offered. When they fail the
        pilot goes to 100 % and the car has 6 s to stop (rule 3)."""
        return (
            self._plugged
            and cp in ("B", "C", "D")
            and self.available
            and frc != 1
            and authed
            and not self._done
            and self._temp_level < 3
            and amps is not None
            and self._ps == _PS_IDLE
        )

    def _clean(self):
        """No fault latched and the RCD self-test passed."""
        return not self.faults and self._rcd_ok

    def _want_pwm(self, offer, locked):
        """Offer charging on the pilot (PWM): soft conditions, no fault, lock confirmed."""
        return offer and self._clean() and locked

    def _safe_to_power(self, cp, locked):
        """The hard conditions (rules 1, 2, 5): power may be or stay on. When they fail the
        contactor opens in the same tick."""
        vent_ok = cp == "C" or (cp == "D" and self.hal.board["ventilation"])
        return (vent_ok and self._clean() and locked and self._diode and not self._unlatched
                and "rcd" not in self.faults)

    def _power_may_be_on(self, fb):
        """Power may still be on the output: the lock holds, the phases stay."""
        return (
            self.hal.relay.closed
            or self.energized
            or fb
            or "weld" in self.faults
            or self._lock_hold_ms is not None
        )

    def _may_close(self, want_pwm, safe):
        """Close on settled PWM with a diode check passed on it (re-read: starting the PWM
        this tick cleared it), never within 1 s of an open (no chatter), never while an
        operator unlock is pending (the lock read as confirmed before its unlock pulse of
        this very tick started)."""
        return (
            want_pwm
            and safe
            and not self._release
            and not self.hal.relay.closed
            and 0 < self._duty < 1000
            and self._diode
            and self._settling_ms is None
            and self._reclose_hold_ms is None
        )

    def _temps_confirm(self, now):
        """A fresh temperature reading in the tick that would close (they are read once a
        second): True when it changes nothing; else the next tick decides on it."""
        if self._temp_ms == now:
            return True  # read in this very tick
        lv = self._temp_level
        self._temp_ms = None
        self._sense_temps(now)
        return self._temp_level == lv and not self.faults

    # -- actuate
    def _drive_lock(self, plugged, offer, fb, now):
        """Locked whenever power may be on the output; otherwise as `ust` says."""
        lock = self.hal.lock
        if not lock.present:
            self.cus = 1
            return
        ust = self._cfg("ust", 0)
        if ust == 2:
            want = True
        elif ust == 1:
            want = plugged and not self._done and (offer or not self._charged)
        else:
            want = plugged
        if self._release:
            want = False
        if self._power_may_be_on(fb):
            want = True  # never unlock while power may be on the output
        target = "locked" if want else "unlocked"
        st = lock.state()
        if target != self._lock_target:
            self._lock_target = target
            self._lock_tries = 0
            self._lock_pulse_ms = None
        if st == target:
            self._lock_tries = 0
            self._lock_pulse_ms = None
            self.cus = _CUS[st]
            if not want:
                self._clear("unlock")
            return
        self.cus = 0
        name = "lock" if want else "unlock"
        if name in self.faults:
            self.cus = 4 if want else 2
            return
        if self._lock_pulse_ms is not None:
            return  # waiting for the feedback of the last pulse
        if self._lock_tries >= _LOCK_TRIES:
            self._fault(name, ERR_LOCK_OPEN if want else ERR_LOCK_LOCKED)
            return
        lock.drive(want)
        self._lock_tries += 1
        self._lock_pulse_ms = now

    def _drive_contactor(self, safe, want_pwm, now):
        """Open at once when unsafe; on an EVSE stop after the car went to B (it opens the
        contactor then by `safe`) or after 6 s anyway (rule 3)."""
        if not self.hal.relay.closed:
            return
        if not safe:
            self._open(now, "safety")
        elif want_pwm:
            self._evse_stop_ms = None
        elif self._evse_stop_ms is None:
            self._evse_stop_ms = now
        elif ticks_diff(now, self._evse_stop_ms) >= _STOP_MS:
            self._open(now, "stop timeout")

    def _drive_pilot(self, want_pwm, amps, phases, plugged, fb, now):
        """PWM for `amps` while charging is offered (a raise held back 5 s after the last
        change); 100 % while the contactor is still closed (EVSE stop); else the phase
        switch sequence, or 100 % (state F while unavailable)."""
        if want_pwm:
            d = _pilot.duty_for_current(amps)
            cur = self._duty
            if 0 < cur < 1000 and d > cur and self._raise_hold_ms is not None:
                d = cur  # a raise waits until 5 s after the last change
            self._set_duty(d, now)
        elif self.hal.relay.closed:
            self._set_duty(1000, now)
        elif self._ps != _PS_IDLE:
            self._switch_phases(phases, plugged, fb, now)
        else:
            self._set_duty(1000 if self.available else -1, now)

    def _switch_phases(self, phases, plugged, fb, now):
        """One step of the phase switch sequence; the contactor is open (rule 11)."""
        if self._ps == _PS_PAUSE:
            if self._ps_pause_ms is None:  # 3 s in state F: the car saw a disconnect
                self._ps = _PS_IDLE
                self._set_duty(1000, now)
        elif not self.available:
            # Unavailable: the pilot is at -12 V (state F) and the car cannot be seen, so a
            # phase switch waits until the charger is available and the car is back in B
            # (rule 11); the last state seen before F may be stale.
            self._set_duty(-1, now)
        elif self._power_may_be_on(fb):
            self._set_duty(1000, now)  # power may still be on the output: no switching
        elif not plugged:
            self.hal.phase_switch.set(phases)  # no car: no pilot disconnect needed
            self._phases = phases
            self._ps = _PS_IDLE
            self._set_duty(1000, now)
        elif self._cp == "B":  # the car is back in B: pilot disconnect, switch, pause
            self._set_duty(-1, now)
            self.hal.phase_switch.set(phases)
            self._phases = phases
            self._ps = _PS_PAUSE
            self._ps_pause_ms = now
            log.info("charger", "phases", phases)
        else:
            self._set_duty(1000, now)  # wait for the car to leave C/D

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
            self._settling_ms = now
            if not self.hal.relay.closed:
                self._diode = False
        if pwm:
            self._raise_hold_ms = now  # every change counts, decreases included (seq. 6)
        self._duty = d

    def _close(self, amps, now):
        self.hal.relay.close()
        self._closing_ms = now
        self._charged = True
        log.info("charger", "close", amps, "A")

    def _open(self, now, why):
        if self.hal.relay.closed:
            log.info("charger", "open", why)
            self._lock_hold_ms = now
        self.hal.relay.open()
        self._opening_ms = now
        self._reclose_hold_ms = now
        self._evse_stop_ms = None

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

    def _weld(self):
        if "weld" not in self.faults:
            self.counters["welds"] += 1
        self._fault("weld", ERR_WELD)

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

    def _status(self, cp, plugged, evse_stop, want_pwm):
        relay = self.hal.relay
        pwm = 0 < self._duty < 1000
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
                a = _pilot.amps_for_duty(self._duty)
            self.acu = int(a)
        if self._duty < 0:
            self.state = "F"
        else:
            self.state = "E" if cp == "X" else cp
        s = self.state
        i = "BCD".find(s)
        self.iec = s if i < 0 else _IEC[2 * i + pwm]
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
                _finite3(u)
                _finite3(i)
                _finite3(p)
                _finite3(pf)
                _finite(pt)
                if e is not None:
                    _finite(e)
                ex = m.get("e_exp_wh")
                if ex is not None:
                    _finite(ex)
                imax = max(i[0], i[1], i[2])
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
        if not self.hal.relay.closed and self._opening_ms is None and imax > _WELD_A:
            if self._amps_open_ms is None:
                self._amps_open_ms = now
            elif ticks_diff(now, self._amps_open_ms) >= _WELD_CUR_MS:
                self._amps_open_ms = None
                self._weld()
        else:
            self._amps_open_ms = None
        n = self.nrg
        for k in range(3):
            n[NRG_U + k] = u[k]
            n[NRG_I + k] = i[k]
            n[NRG_P + k] = p[k]
            n[NRG_PF + k] = round(pf[k] * 100)
        n[NRG_U + 3] = 0
        n[NRG_P + 3] = 0
        n[NRG_P_TOTAL] = pt
        n[NRG_PF + 3] = 0
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
                self._lock_hold_ms = now  # the lock holds while the contacts open
            hal.relay.open()  # never raises (hal/base.py)
            self._opening_ms = now
            self._reclose_hold_ms = now
        except Exception:
            pass
        self._unlatched = True  # allocates nothing: holds until "tick" is latched below
        self._evse_stop_ms = None
        self._diode = False  # judged again on fresh PWM
        self._fault("tick", ERR_UNKNOWN)  # may need room (the dict grows, the log line)
        self._unlatched = False
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

        compat.BUSY[0] = self._busy
        try:
            while True:
                self._ticked()
                await asyncio.sleep(0.02)
        finally:  # (cancelled) no tick of a charger whose loop has ended
            if compat.BUSY[0] == self._busy:
                compat.BUSY[0] = None

    def _ticked(self):
        self._tick_ms = self._now()
        try:
            self.safe_tick()
        except MemoryError:
            # The fail safe opened the contactor first, then had no room to latch the
            # fault or log it (`_unlatched` keeps the power off until it can): the
            # safety loop goes on, never ends for want of memory.
            log.oom += 1

    def _busy(self):
        # compat.busy(), from long synchronous work that holds the loop: the tick run() would
        # have run meanwhile, once its 20 ms are due.
        if ticks_diff(self._now(), self._tick_ms) >= _TICK_MS:
            self._ticked()
