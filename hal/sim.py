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
from hal import board_defaults

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
        b = board_defaults(
            max_current=16, meter="sim", has_relay_feedback=True, has_lock=True, has_pp=True
        )
        if board:
            b.update(board)
        self.board = b
        self.now_ms = now_ms
        self.ballast = []  # heap held for memory-pressure tests (control ballast=)
        self._ballast_end = None
        # car
        self.cp = "A"
        self.diode = True
        self.load = 16.0
        self.car_phases = 3
        # faults
        self.rcd_fault = False
        self.rcd_latched = False
        self.weld = False
        self.lock_jam = False
        self.meter_ok = True
        self.meter_nan = False
        self.temp_c = 25.0
        # energy: a real meter's import register survives power cuts; `register` is the
        # file that stands in for it (make sim: in the data directory)
        self.e_wh = float(e_wh)
        self._register = register
        self._saved_wh = None
        if register is not None:
            import fs

            stored = fs.read_json(register, None)
            if isinstance(stored, (int, float)) and stored > self.e_wh:
                self.e_wh = float(stored)
            self._saved_wh = int(self.e_wh)
        self._t = now_ms()
        self._booking = False
        self.relay = SimRelay(self)
        self.pilot = SimPilot(self)
        self.pp = SimPP(self)
        self.rcd = SimRcd(self)
        self.meter = SimMeter(self)
        self.lock = SimLock(self)
        self.temp = SimTemp(self)
        self.reader = SimReader()
        self.wdt = SimWdt()
        self.phase_switch = SimPhaseSwitch(self) if phase_switch else None

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
        Returns state(); raises ValueError(reason) for an unknown name or a bad value."""
        todo = []
        for name in params:
            v = str(params[name])
            todo.append((name, _parse(name, v)))
        self._book()
        for name, v in todo:
            if name == "cp":
                self.cp = v
            elif name == "diode":
                self.diode = v
            elif name == "card":
                self.reader.card = v
            elif name == "load":
                self.load = v
            elif name == "phases":
                self.car_phases = v
            elif name == "rcd":
                self.rcd_fault = v
                if v:
                    self.rcd_latched = True
            elif name == "weld":
                self.weld = v
            elif name == "lock":
                self.lock_jam = v
            elif name == "meter":
                self.meter_ok = v != "offline"
                self.meter_nan = v == "nan"
            elif name == "temp":
                self.temp_c = v
            elif name == "ballast":
                self._hold(v[0], v[1])
        return self.state()

    def _hold(self, kib, seconds):
        """Extension for memory-pressure tests: hold `kib` KiB of the heap in 256-byte
        blocks (as much of it as there is room for) for `seconds` (0: until changed), so a
        test can squeeze the firmware at any moment of a session; the next pilot reading
        after that (the safety tick) lets go, even when the API has no room left to ask and
        the meter's task has none to read."""
        self.ballast = []
        self._ballast_end = None
        if seconds:
            self._ballast_end = compat.ticks_add(self.now_ms(), seconds * 1000)
        try:
            for _ in range(kib * 4):
                self.ballast.append(bytearray(240))
        except MemoryError:
            pass

    def state(self):
        p = self.pilot
        return {
            "cp": self.cp,
            "diode": "ok" if self.diode else "missing",
            "load": self.load,
            "phases": self.car_phases,
            "rcd": "trip" if self.rcd_fault else "ok",
            "rcd_latched": self.rcd_latched,
            "weld": 1 if self.weld else 0,
            "lock": "jam" if self.lock_jam else "ok",
            "lock_state": self.lock.state(),
            "meter": "nan" if self.meter_nan else "ok" if self.meter_ok else "offline",
            "temp": self.temp_c,
            "relay": self.relay.contact(),
            "duty": "F" if p.f else p.duty,
            "amps": self.amps(),
            "e_wh": round(self.e_wh, 3),
            "ballast": len(self.ballast) // 4,
        }


def _parse(name, v):
    if name == "cp":
        if v not in ("A", "B", "C", "D", "E"):
            raise ValueError("cp: A, B, C, D or E")
        return v
    if name == "diode":
        return _choice(name, v, "ok", "missing")
    if name == "card":
        if not 0 < len(v) <= 20:
            raise ValueError("card: 1 to 20 characters")
        return v
    if name == "load":
        a = _num(name, v)
        if not 0 <= a <= 80:
            raise ValueError("load: 0..80 A")
        return a
    if name == "phases":
        if v not in ("1", "3"):
            raise ValueError("phases: 1 or 3")
        return int(v)
    if name == "rcd":
        return _choice(name, v, "trip", "ok")
    if name == "weld":
        return _choice(name, v, "1", "0")
    if name == "lock":
        return _choice(name, v, "jam", "ok")
    if name == "meter":
        if v not in ("ok", "offline", "nan"):  # nan: extension, readings with NaN values
            raise ValueError("meter: ok or offline (or nan)")
        return v
    if name == "ballast":  # extension: KiB of heap held [for seconds] (SimHal._hold)
        kib, _, sec = v.partition(":")
        if not kib.isdigit() or int(kib) > 4096 or not (sec == "" or sec.isdigit()):
            raise ValueError("ballast: 0..4096 KiB, optionally :seconds")
        return int(kib), int(sec or 0)
    if name == "temp":
        if v in ("fail", "none"):
            return None  # extension: a failed sensor
        t = _num(name, v)
        if not -50 <= t <= 200:
            raise ValueError("temp: -50..200")
        return t
    raise ValueError("unknown name: " + name)


def _choice(name, v, yes, no):
    if v == yes:
        return True
    if v == no:
        return False
    raise ValueError(name + ": " + yes + " or " + no)


def _num(name, v):
    try:
        x = float(v)
    except ValueError:
        raise ValueError(name + ": not a number")
    if x != x:
        raise ValueError(name + ": not a number")
    return x


def main(data):
    """The simulator's launcher (main.py on the unix port, once the A/B slot is chosen): the
    simulated hardware (or a real meter on a serial port: WB_METER), settings from WB_*
    environment variables, exit status 3 for a reboot (tools/sim.py starts it again)."""
    import os
    import sys

    from firmware import app
    from version import VERSION

    boot = compat.lend("firmware.app_boot")  # let go before app.run (del boot)
    meter = os.getenv("WB_METER")
    hal = SimHal(register=data + "/sim_meter.json")
    if meter:
        from hal.serial_unix import open_meter

        hal.meter = open_meter(
            meter, os.getenv("WB_METER_TYPE") or "sdm630", int(os.getenv("WB_METER_ADDR") or 1)
        )
    cfg = boot.load_config(data)
    csms = os.getenv("WB_CSMS")
    if csms:
        errors = cfg.update({"ocppu": csms, "ocppe": True}, "api")
        if errors:
            print("E sim: WB_CSMS rejected:", errors)
    info = boot.info(VERSION, serial="SIM-0001", board=hal.board)
    del boot
    app.run(hal, data, info, reboot=lambda: sys.exit(3), config=cfg,
            api_host=os.getenv("WB_API_HOST") or "127.0.0.1",
            api_port=int(os.getenv("WB_API_PORT") or 8080), sim=hal,
            page=os.getenv("WB_PAGE") or "build/web/index.html.gz")
