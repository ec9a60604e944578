"""Simulated hardware: a car on the control pilot, a meter, and injectable faults.

Used by `make sim` (real ticks) and the tests (an injected clock). Never deployed.
`SimHal.control(params)` implements the /api/sim names of CONTRACT.md section 3.
The meter integrates lazily: every change of anything that affects the power first books
the energy of the interval since the last change, so the integral is exact at any tick rate.
What the charger's 20 ms tick reads (pilot levels, temperatures) comes from objects made
once, so a heap measurement of the tick on the MicroPython VM sees the charger's own
allocations only (tests_host/test_charger_alloc.py).
"""

import compat
from firmware.evse import pilot as _pilot

_V_NOM = 230.0
_HIGH = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0, "E": 0.0}
# The negative half without a diode: -12 V divided by 1 kOhm (EVSE) and the car's resistor.
_LOW_NO_DIODE = {"B": -8.8, "C": -5.6, "D": -2.4}
# pilot.read() answers, made once: steady +12 V (low = high), PWM with the car's diode (low
# -12 V), PWM without it, state F or a 0 % duty, a shorted pilot (E) on PWM.
_READ_STEADY = {s: (v, v) for s, v in _HIGH.items()}
_READ_DIODE = {s: (v, -12.0) for s, v in _HIGH.items()}
_READ_NO_DIODE = {s: (_HIGH[s], v) for s, v in _LOW_NO_DIODE.items()}
_READ_F = (-12.0, -12.0)
_READ_E = (0.0, 0.0)
_LOCK_MS = 300  # lock motor travel time


class SimRelay:
    def __init__(self, hal):
        self._hal = hal
        self.closed = False

    def close(self):
        self._hal._book()
        self.closed = True

    def open(self):
        self._hal._book()
        self.closed = False

    def contact(self):
        """Physical state: the hardware RCD interrupts the coil by itself; welded stays shut."""
        h = self._hal
        if h.weld:
            return True
        return self.closed and not h.rcd_latched

    def feedback(self):
        if not self._hal.board["has_relay_feedback"]:
            return None
        return self.contact()


class SimPilot:
    def __init__(self, hal):
        self._hal = hal
        self.duty = 1000
        self.f = False

    def set_duty(self, permille):
        if not 0 <= permille <= 1000:
            raise ValueError("duty")
        self._hal._book()
        self.duty = int(permille)
        self.f = False

    def set_f(self):
        self._hal._book()
        self.f = True

    def read(self):
        h = self._hal
        h._let_go(h.now_ms())
        if self.f or self.duty == 0:
            return _READ_F
        if self.duty >= 1000:
            return _READ_STEADY[h.cp]
        if h.cp == "E":
            return _READ_E
        if h.cp == "A" or h.diode:
            return _READ_DIODE[h.cp]
        return _READ_NO_DIODE[h.cp]


class SimPP:
    def __init__(self, hal):
        self._hal = hal
        self.ohms = 220  # a 32 A cable, inserted

    def read_ohms(self):
        if not self._hal.board["has_pp"]:
            return None
        return self.ohms


class SimRcd:
    def __init__(self, hal):
        self._hal = hal
        self.tests = 0

    def tripped(self):
        return self._hal.rcd_latched

    def self_test(self):
        self.tests += 1
        return not self._hal.rcd_fault and not self._hal.rcd_latched

    def reset(self):
        h = self._hal
        h._book()
        h.rcd_latched = h.rcd_fault


class SimMeter:
    def __init__(self, hal):
        self._hal = hal
        self.online = True

    async def read(self):
        return self.read_now()

    def read_now(self):
        h = self._hal
        if not h.meter_ok:
            self.online = False
            return None
        self.online = True
        h._book()
        h.save_register()
        amps = h.amps()
        n = h.active_phases()
        i = [amps if k < n else 0.0 for k in range(3)]
        p = [x * _V_NOM for x in i]
        if h.meter_nan:  # a meter answering garbage: not-a-number power factors and power
            nan = float("nan")
            return {"u": [_V_NOM] * 3, "i": i, "p": [nan] * 3, "pf": [nan] * 3,
                    "p_total": nan, "e_wh": h.e_wh}  # fmt: skip
        return {
            "u": [_V_NOM, _V_NOM, _V_NOM],
            "i": i,
            "p": p,
            "pf": [1.0 if x else 0.0 for x in i],
            "p_total": p[0] + p[1] + p[2],
            "e_wh": h.e_wh,
            "e_exp_wh": 0.0,  # a car never feeds back here
        }


class SimLock:
    def __init__(self, hal):
        self._hal = hal
        self.present = bool(hal.board["has_lock"])
        self._pos = "unlocked"
        self._target = None
        self._since = 0
        self.pulses = 0

    def drive(self, locked):
        h = self._hal
        self.pulses += 1
        self._target = "locked" if locked else "unlocked"
        self._since = h.now_ms()
        if h.lock_jam:
            self._pos = "unknown"
            self._target = None

    def state(self):
        if not self.present:
            return "unlocked"
        h = self._hal
        if self._target is not None:
            if compat.ticks_diff(h.now_ms(), self._since) >= _LOCK_MS:
                self._pos = self._target
                self._target = None
            else:
                return "unknown"
        return self._pos


class SimTemp:
    def __init__(self, hal):
        self._hal = hal
        self._out = [0.0]  # one list, updated in place

    def read_c(self):
        t = self._hal.temp_c
        if t is None:
            return None
        self._out[0] = t
        return self._out


class SimReader:
    def __init__(self):
        self.card = None

    def poll(self):
        c = self.card
        self.card = None
        return c


class SimWdt:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class SimPhaseSwitch:
    def __init__(self, hal):
        self._hal = hal
        self.phases = hal.board["phases"]
        self.switches = 0

    def set(self, phases):
        if phases not in (1, 3):
            raise ValueError("phases")
        self._hal._book()
        self.phases = phases
        self.switches += 1


class SimHal:
    """The Hal bundle for the simulator. `board` overrides entries of the default board
    (3 phases, 16 A, relay feedback, lock, PP all present); `now_ms` is the clock."""

    def __init__(self, board=None, now_ms=compat.ticks_ms, phase_switch=False, e_wh=0.0,
                 register=None):
        # Its fields and parts (hal/sim_init.py, lent for the start).
        compat.lend("hal.sim_init").init(self, board, now_ms, phase_switch, e_wh, register)

    # -- physics
    def active_phases(self):
        n = self.board["phases"]
        if self.phase_switch is not None:
            n = self.phase_switch.phases
        return min(n, self.car_phases)

    def advertised(self):
        """Current (A) the pilot allows the car right now."""
        p = self.pilot
        if p.f:
            return 0
        return _pilot.current_for_duty(p.duty)

    def amps(self):
        """Current per phase the car draws: only in C/D with power on, never above the
        advertised current."""
        if self.cp not in ("C", "D") or not self.relay.contact():
            return 0.0
        return float(min(self.load, self.advertised()))

    def _let_go(self, now):
        """The ballast goes once its time is up: checked on every pilot reading (the safety
        tick, which allocates nothing and runs whatever else is short of memory)."""
        if self._ballast_end is not None and compat.ticks_diff(now, self._ballast_end) >= 0:
            self.ballast = []
            self._ballast_end = None

    def _book(self):
        """Book the energy since the last change at the power drawn during that interval."""
        now = self.now_ms()
        self._let_go(now)
        dt = compat.ticks_diff(now, self._t)
        self._t = now
        if dt > 0:
            self.e_wh += self.amps() * _V_NOM * self.active_phases() * dt / 3600000.0

    # -- /api/sim
    def save_register(self):
        """Persist the energy register before a reading leaves the meter, so a reading the
        firmware has seen is never ahead of what survives a power cut (whole Wh)."""
        if self._register is None:
            return
        wh = int(self.e_wh)
        if wh != self._saved_wh:
            import fs

            fs.write_atomic(self._register, str(wh))
            self._saved_wh = wh

    def control(self, params):
        """Apply CONTRACT.md section 3 names (plain string values); all or nothing.
        Returns state(); raises ValueError(reason) for an unknown name or a bad value.
        (hal/sim_control.py, lent for the call.)"""
        return compat.lend("hal.sim_control").control(self, params)

    def state(self):
        """The simulated car, faults and readings, as /api/sim answers them."""
        return compat.lend("hal.sim_control").state(self)


def main(data):
    """The simulator's launcher (main.py on the unix port, once the A/B slot is chosen): the
    simulated hardware (or a real meter on a serial port: WB_METER), settings from WB_*
    environment variables (hal/sim_boot.py, lent for the start), exit status 3 for a reboot
    (tools/sim.py starts it again)."""
    import sys

    from firmware import app

    hal, info, cfg, where = compat.lend("hal.sim_boot").setup(data)
    app.run(hal, data, info, reboot=lambda: sys.exit(3), config=cfg, sim=hal, **where)
