"""Charger.__init__ (firmware/evse/charger.py): every field of the state machine, then the
outputs fail safe from the first instant (contactor open, no charging offered). Lent for
the boot (compat.lend) and let go after: its bytecode is not held for good."""

from firmware.evse.charger import ERR_NONE


def init(c, hal, config, now_ms):
    c.hal = hal
    c.config = config
    c._now = now_ms
    c._subs = []
    now = now_ms()
    c._tick_ms = now  # the last safety tick (run(), _busy())
    # inputs
    c.auth_required = True
    c.authorized = False
    c.available = True
    c._limits = {}
    # status
    c.state = "A"
    c.iec = "A"
    c.car = 1
    c.err = ERR_NONE
    c.acu = None
    c.alw = False
    c.energized = False
    c.session_wh = 0.0
    c.energy_wh = None
    c.export_wh = None  # the meter's export register, Wh (None: not read)
    c.nrg = [0] * 16
    c.tma = ()
    c.cus = 0
    c.status = "available"
    c.offered = None
    c.meter_ok = True
    c.faults = {}
    c._unlatched = False  # a failed tick whose fault "tick" had no room yet: no power
    c.counters = {"rcd_trips": 0, "welds": 0, "rcd_resets": 0}
    # the car, as the pilot shows it
    c._cp = "A"  # accepted pilot state (A..E, X invalid); kept while in state F
    c._cand = None  # a different reading seen once (needs a second one)
    c._pilot_low = 0.0  # the negative half of the last reading (diode check)
    c._plugged = False
    # the pilot output
    c._duty = -2  # permille, -1 state F; -2 forces the first set_duty
    c._diode = False  # a diode check passed on the current PWM
    c._diode_bad = 0  # failed diode checks in a row
    # the RCD
    c._rcd_ok = False  # a self-test passed for this session
    c._rcd_resets = 0
    c._rcd_in_session = False
    # Time windows: the time an event happened, None once the window has passed (a
    # latch, judged every tick by _age(); see the module docstring).
    c._settling_ms = now  # PWM started or stopped; None: settled (>= 40 ms)
    c._raise_hold_ms = now  # last duty change; None: a raise may act (>= 5 s)
    c._closing_ms = now  # contactor closed; None: the feedback must show power
    c._opening_ms = now  # contactor opened; None: the feedback must show none
    c._reclose_hold_ms = None  # contactor opened; None: it may close again (>= 1 s)
    c._lock_hold_ms = None  # a closed contactor opened; None: the lock may let go
    c._lock_pulse_ms = None  # last lock motor pulse; None: its feedback is due
    c._rcd_test_ms = None  # last RCD self-test; None: >= 24 h ago (or never)
    c._meter_ms = now  # last good meter reading; None: > 5 s ago (meter lost)
    c._ps_pause_ms = None  # state F of a phase switch began; None: >= 3 s ago
    c._temp_ms = None  # temperatures read; None: due (>= 1 s ago)
    c._evse_stop_ms = None  # PWM stopped with the contactor closed (rule 3), since
    c._amps_open_ms = None  # metered current with the contactor open, since
    # the cable lock
    c._lock_target = None
    c._lock_tries = 0
    c._release = False  # release_lock() pending until the cable is removed
    # the session
    c._temp_level = 0  # 0 normal, 1 half, 2 quarter, 3 stop
    c._temp_cap = 0  # the current (A) of levels 1 and 2, set when the level changes
    c._start_wh = None
    c._charged = False
    c._done = False
    c._last_err = ERR_NONE
    # Phases the smart charging profiles ask for (1, or None: the board's default); the
    # user's phase mode `psm` 1 or 2 wins, psm 0 (auto) follows it.
    c.phases_asked = None
    c._phases = None  # position of the phase switch, unknown until first set
    c._ps = 0  # the phase switch sequence (charger._PS_*): _PS_IDLE
    # Fail safe from the first instant: contactor open, no charging offered.
    hal.relay.open()
    c._set_duty(1000, now)
