"""Hypothesis: random car actions, faults and time steps against the safety invariants.

Every step is one 20 ms tick on a simulated clock. The invariants are judged from the
simulated hardware's truth, not from the charger's own view of it.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_charger_scenarios import Rig

from firmware import pilot

ACTIONS = st.one_of(
    st.tuples(st.just("cp"), st.sampled_from("AABBCCCDE")),
    st.tuples(st.just("diode"), st.sampled_from(["ok", "ok", "missing"])),
    st.tuples(st.just("rcd"), st.sampled_from(["trip", "ok"])),
    st.tuples(st.just("weld"), st.sampled_from(["0", "0", "0", "1"])),
    st.tuples(st.just("lock"), st.sampled_from(["ok", "ok", "jam"])),
    st.tuples(st.just("meter"), st.sampled_from(["ok", "offline"])),
    st.tuples(st.just("temp"), st.sampled_from(["25", "70", "80", "90", "fail"])),
    st.tuples(st.just("auth"), st.booleans()),
    st.tuples(st.just("frc"), st.sampled_from([0, 0, 1, 2])),
    st.tuples(st.just("limit"), st.sampled_from([None, 0, 5, 6, 10, 13.5, 32])),
    st.tuples(st.just("reset"), st.just(True)),
    st.tuples(st.just("avail"), st.booleans()),
    st.tuples(st.just("unlockpos"), st.just(True)),
)
# Short gaps probe the 100 ms rules, long ones (6-7 s) the EVSE-stop timeout.
TICKS = st.one_of(st.integers(1, 10), st.integers(1, 60), st.integers(295, 350))
STEPS = st.lists(st.tuples(ACTIONS, TICKS), min_size=1, max_size=25)


class Checker:
    def __init__(self, r, vent):
        self.r = r
        self.vent = vent
        self.bad_since = None
        self.off_since = None
        self.was_closed = False
        self.drives = []
        lock = r.hal.lock
        orig = lock.drive

        def drive(locked):
            self.drives.append((locked, r.hal.relay.closed))
            return orig(locked)

        lock.drive = drive

    def hard_ok(self):
        h = self.r.hal
        cp_ok = h.cp == "C" or (h.cp == "D" and self.vent)
        diode = h.diode or h.pilot.duty == 1000
        return cp_ok and diode and not h.rcd_latched and h.lock.state() == "locked"

    def after_tick(self):
        r = self.r
        h = r.hal
        c = r.c
        now = r.t
        closed = h.relay.closed
        duty = h.pilot.duty
        pwm = not h.pilot.f and 0 < duty < 1000
        # The duty is always legal.
        assert h.pilot.f or pilot.is_legal_duty(duty), duty
        if pwm:
            assert duty <= pilot.duty_for_current(h.board["max_current"])
        # Closing happens only when every condition holds.
        if closed and not self.was_closed:
            assert self.hard_ok() and pwm and h.diode
            assert not c.faults and h.rcd.tests > 0
            assert c.offered is not None and c.offered >= 6
            frc = r.cfg.d["frc"]
            assert frc != 1 and (frc == 2 or c.authorized or not c.auth_required)
            assert c.available
        # Open within 100 ms of a hard condition failing.
        if self.hard_ok():
            self.bad_since = None
        elif self.bad_since is None:
            self.bad_since = now - 20  # it failed at some instant since the last tick
        if closed and self.bad_since is not None:
            assert now - self.bad_since <= 100, (now, self.bad_since)
        # An EVSE stop (no PWM) keeps the contactor closed for at most 6 s.
        if closed and not pwm:
            if self.off_since is None:
                self.off_since = now
            assert now - self.off_since <= 6020
        else:
            self.off_since = None
        # The lock never opens while energised.
        if closed:
            assert h.lock.state() == "locked"
        self.was_closed = closed
        for locked, was_closed in self.drives:
            assert locked or not was_closed


def apply(r, action):
    name, v = action
    if name == "auth":
        r.c.authorize(v)
    elif name == "frc":
        r.cfg.d["frc"] = v
    elif name == "limit":
        r.c.set_limit(v, "ocpp")
    elif name == "reset":
        r.c.reset_fault()
    elif name == "avail":
        r.c.set_available(v)
    elif name == "unlockpos":
        r.hal.lock._pos = "unknown"  # lock feedback glitch
    else:
        r.sim(**{name: v})


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(steps=STEPS, auth=st.booleans(), vent=st.booleans(), ust=st.sampled_from([0, 1, 2]))
def test_safety_invariants_hold_for_random_sequences(steps, auth, vent, ust):
    r = Rig(board={"ventilation": vent}, auth=auth, ust=ust)
    chk = Checker(r, vent)
    for action, ticks in steps:
        apply(r, action)
        for i in range(ticks):
            r.step(20)
            chk.after_tick()
            if i % 50 == 49:
                r.meter()


@settings(max_examples=60, deadline=None)
@given(steps=STEPS)
def test_charging_sequences_reach_power_when_conditions_allow(steps):
    # Liveness alongside safety: after any history, a healthy car that plugs in and asks
    # for power gets it once faults are reset and the car re-plugs.
    r = Rig()
    chk = Checker(r, False)
    for action, ticks in steps:
        apply(r, action)
        for _ in range(ticks):
            r.step(20)
            chk.after_tick()
    r.sim(cp="A", diode="ok", rcd="ok", weld="0", lock="ok", meter="ok", temp="25")
    r.cfg.d["frc"] = 0
    r.c.set_limit(None, "ocpp")
    r.c.set_available(True)
    r.step(7000)
    r.c.reset_fault()
    r.step(3000)
    r.sim(cp="C")
    for _ in range(150):
        r.step(20)
        chk.after_tick()
    assert r.hal.relay.closed, (r.c.faults, r.c.err, r.c.state)
