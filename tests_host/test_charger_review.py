"""The defects the safety review of the state machine found, one scenario each, in simulated
time, plus release_lock() for UnlockConnector. Each failed before its fix. (The ESP32 RCD
driver's item is test_charger_rcd_esp32.py.)"""

import asyncio

from test_charger_scenarios import DAY, Rig

from firmware.evse import charger as ch


def record_relay(r):
    """Log every close()/open() command that changes the contactor: [(t, "C"|"O"), ...]."""
    ops = []
    relay = r.hal.relay
    close, open_ = relay.close, relay.open

    def c():
        if not relay.closed:
            ops.append((r.t, "C"))
        close()

    def o():
        if relay.closed:
            ops.append((r.t, "O"))
        open_()

    relay.close, relay.open = c, o
    return ops


def idle(r, ms):
    """Let `ms` pass in jumps of at most a day, ticking 200 ms after each jump."""
    while ms > 0:
        j = min(ms, DAY)
        r.jump(j)
        r.step(200)
        ms -= j


# diode, settled PWM ----------------------------------------------------------------------
def test_car_without_diode_after_a_good_session_never_gets_power():
    r = Rig().charge()
    r.sim(cp="B")
    r.step(100)
    r.sim(cp="A")
    r.step(500)
    ops = record_relay(r)
    r.sim(diode="missing", cp="C")
    r.step(2000)
    assert ops == [] and r.c.err == ch.ERR_DIODE


def test_limit_lifted_after_an_evse_stop_closes_once_on_settled_pwm():
    r = Rig().charge()
    r.c.set_limit(0, "ocpp")
    r.step(6200)
    assert not r.closed  # EVSE stop: opened after 6 s although the car stayed in C
    ops = record_relay(r)
    duty_on = None
    r.c.set_limit(None, "ocpp")
    for _ in range(100):
        r.step(20)
        if duty_on is None and r.hal.pilot.duty < 1000:
            duty_on = r.t
    assert len(ops) == 1 and ops[0][1] == "C"  # no close/open/close chatter
    assert ops[0][0] - duty_on >= 40


# time windows past the ticks_ms range ----------------------------------------------------
def test_diode_check_still_runs_after_six_days_of_pwm():
    r = Rig()
    r.sim(cp="B")
    r.step(1000)
    idle(r, int(6.3 * DAY))  # waiting in B with PWM on (full battery, departure timer)
    assert 0 < r.hal.pilot.duty < 1000
    r.sim(diode="missing")
    r.step(200)
    ops = record_relay(r)
    r.sim(cp="C")
    r.step(3000)
    assert ops == [] and r.c.err == ch.ERR_DIODE


# contactor feedback past the ticks_ms range ----------------------------------------------
def test_weld_detected_after_six_days_idle():
    r = Rig()
    r.step(100)
    idle(r, int(6.3 * DAY))
    r.sim(weld=1)  # power on the output with the contactor commanded open
    r.step(1000)
    assert r.c.err == ch.ERR_WELD
    r.sim(cp="B")
    r.step(1000)
    r.sim(cp="C")
    r.step(500)
    assert not r.closed


def test_contactor_miss_detected_after_six_days_charging():
    r = Rig().charge()
    idle(r, int(6.3 * DAY))
    assert r.closed and r.c.err == 0
    r.hal.relay.contact = lambda: False  # the contacts drop out (coil supply lost)
    r.step(600)
    assert r.c.err == ch.ERR_MISS and not r.closed


# a failing tick --------------------------------------------------------------------------
def flaky_pp(r, every):
    """The proximity pilot's ADC read (every tick) times out on every `every`-th call."""
    orig = r.hal.pp.read_ohms
    n = [0]

    def read_ohms():
        n[0] += 1
        if n[0] % every == 0:
            raise OSError("ADC timeout")
        return orig()

    r.hal.pp.read_ohms = read_ohms
    return n


def run_loop(r, monkeypatch, ms, each=None):
    """The real run() loop for `ms` of the rig's clock (20 ms an iteration); each(elapsed)
    is called at every iteration."""
    start = r.t

    class Stop(BaseException):
        pass

    async def fake_sleep(s):
        r.t += 20
        if each is not None:
            each(r.t - start)
        if r.t - start > ms:
            raise Stop()

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    try:
        asyncio.run(r.c.run())
    except Stop:
        pass
    monkeypatch.undo()


def test_failing_tick_opens_latches_and_stays_open_in_run(monkeypatch):
    r = Rig().charge()
    good = r.hal.pp.read_ohms
    flaky_pp(r, 10)
    ops = record_relay(r)
    run_loop(r, monkeypatch, 1000)
    assert [o for _, o in ops] == ["O"]  # opened once, never closed again
    assert r.c.err == ch.ERR_UNKNOWN and "tick" in r.c.faults and r.c.car == 5
    assert r.hal.pilot.duty == 1000
    r.hal.pp.read_ohms = good
    r.step(2000)
    assert not r.closed  # latched
    assert r.c.reset_fault()
    r.step(200)
    assert r.closed and r.c.err == 0


def test_a_fail_safe_with_no_room_keeps_the_loop_and_the_power_off(monkeypatch):
    """A tick fails while the heap is full: the fail safe opens the contactor (its first
    step, allocating nothing), then has no room to latch the fault "tick" or log it. The
    MemoryError no longer ends the safety loop (run() goes on, counted in oom), and until
    the fault could be latched the contactor stays open; once latched it holds as ever."""
    import log

    r = Rig().charge()
    assert r.closed
    good = r.hal.pp.read_ohms
    r.hal.pp.read_ohms = lambda: 1 / 0  # one broken tick...
    ops = record_relay(r)
    room = [0]

    class Full(dict):  # ...and no room to latch its fault for the next 20 ticks
        def __setitem__(self, k, v):
            if k == "tick" and room[0] < 20:
                room[0] += 1
                raise MemoryError("no room")
            super().__setitem__(k, v)

    r.c.faults = Full(r.c.faults)
    before = log.oom

    def each(elapsed):
        if elapsed == 100:
            r.hal.pp.read_ohms = good  # the input is well again: only the latch is missing

    run_loop(r, monkeypatch, 2000, each)
    assert [o for _, o in ops] == ["O"]  # opened once, never closed while unlatched
    assert log.oom > before and room[0] == 20 and "tick" in r.c.faults
    r.step(2000)
    assert not r.closed  # latched now
    assert r.c.reset_fault()
    r.step(200)
    assert r.closed


def test_tick_fault_clears_on_unplug():
    r = Rig().charge()
    r.hal.pp.read_ohms = lambda: 1 / 0  # one broken tick
    r.step(20)
    del r.hal.pp.read_ohms
    r.step(100)
    assert not r.closed and r.c.err == ch.ERR_UNKNOWN
    r.sim(cp="A")
    r.step(100)
    assert r.c.err == 0
    r.sim(cp="C")
    r.step(1500)
    assert r.closed


def test_only_a_completed_tick_feeds_the_watchdog():
    r = Rig().charge()
    fed = r.hal.wdt.feeds
    r.step(100)
    assert r.hal.wdt.feeds == fed + 5
    r.hal.pp.read_ohms = lambda: 1 / 0
    r.step(100)
    assert r.hal.wdt.feeds == fed + 5  # a stuck or failing tick lets the watchdog bite


# the lock --------------------------------------------------------------------------------
def test_lock_never_unlocks_while_a_welded_output_is_live():
    r = Rig(ust=0).charge()
    r.sim(weld=1)
    r.sim(cp="B")
    r.step(400)
    drives = []
    drive = r.hal.lock.drive
    r.hal.lock.drive = lambda locked: (drives.append((locked, r.hal.relay.contact())),
                                       drive(locked))  # fmt: skip
    r.sim(cp="A")
    r.step(1000)
    assert r.c.err == ch.ERR_WELD
    assert (False, True) not in drives and r.hal.lock.state() == "locked"
    r.sim(weld=0)
    assert r.c.reset_fault()
    r.step(1000)
    assert r.hal.lock.state() == "unlocked"  # power gone: ust=0 lets go


def test_lock_holds_200ms_while_the_contacts_open():
    r = Rig(ust=0).charge()
    drives = []
    drive = r.hal.lock.drive
    r.hal.lock.drive = lambda locked: (drives.append((r.t, locked)), drive(locked))
    r.sim(cp="A")
    t_open = r.t + 20
    r.step(1000)
    assert not r.closed and drives and drives[0][1] is False
    assert drives[0][0] - t_open >= 200  # contacts settle before the socket lets go


# phase switching -------------------------------------------------------------------------
def test_phase_switch_waits_until_the_car_is_back_in_b():
    r = Rig(phase_switch=True).charge()
    r.cfg.d["psm"] = 1
    calls = []
    orig = r.hal.phase_switch.set
    r.hal.phase_switch.set = lambda p: (calls.append((r.t, p, r.hal.cp)), orig(p))
    r.step(9500)  # the car ignores the 100 % pilot and stays in C
    assert not r.closed and calls == []
    r.sim(cp="B")
    r.step(300)
    assert [(p, cp) for _, p, cp in calls] == [(1, "B")] and r.hal.pilot.f


# the meter -------------------------------------------------------------------------------
def test_nan_meter_reading_counts_as_lost_and_the_task_lives():
    r = Rig()
    r.sim(meter="nan")
    asyncio.run(r.c.poll_meter())  # must not raise: run_meter() would die
    assert not r.c.meter_ok
    r.charge()
    r.step(2000)
    assert r.c.acu == 6 and r.hal.pilot.duty == 100
    r.sim(meter="ok")
    r.step(7000)
    assert r.c.meter_ok and r.c.acu == 16


def test_meter_without_readings_for_5s_counts_as_lost():
    r = Rig().charge()
    r.meter()
    assert r.c.acu == 16
    r._meter_at = float("inf")  # the meter task hangs: no reading arrives any more
    r.step(4900)
    assert r.c.acu == 16
    r.step(200)
    assert not r.c.meter_ok and r.c.acu == 6 and r.hal.pilot.duty == 100


# the 5 s raise rule ----------------------------------------------------------------------
def test_raise_waits_5s_after_any_change_decreases_included():
    r = Rig().charge()
    r.step(10000)
    r.c.set_limit(10, "ocpp")
    r.step(20)
    assert r.hal.pilot.duty == 166  # lowered at once
    r.c.set_limit(None, "ocpp")
    r.step(4960)
    assert r.hal.pilot.duty == 166
    r.step(60)
    assert r.hal.pilot.duty == 266


def test_raise_not_held_back_after_six_days_at_one_duty():
    r = Rig().charge()
    r.c.set_limit(10, "ocpp")
    r.step(20)
    idle(r, int(6.3 * DAY))
    r.c.set_limit(None, "ocpp")
    r.step(40)
    assert r.hal.pilot.duty == 266


# welds without relay feedback ------------------------------------------------------------
def test_weld_seen_from_metered_current_without_relay_feedback():
    r = Rig(board={"has_relay_feedback": False}).charge()
    r.hal.advertised = lambda: 16.0  # a car that keeps drawing after the pilot says stop
    r.sim(weld=1)
    r.cfg.d["frc"] = 1
    r.step(6100)
    assert not r.closed and r.c.err == 0  # EVSE stop timeout opened the contactor
    r.step(2500)
    assert r.c.err == ch.ERR_WELD and r.c.counters["welds"] == 1
    assert r.hal.lock.state() == "locked"


# release_lock (UnlockConnector) ----------------------------------------------------------
def test_release_lock_waits_for_deenergised_then_unlocks_until_cable_removed():
    r = Rig(ust=2).charge()
    r.c.release_lock()
    r.step(1000)
    assert r.closed and r.hal.lock.state() == "locked" and r.c.cus == 3  # never under power
    r.c.authorize(False)  # the caller stops the session
    r.c.auth_required = True
    r.step(6200)  # the car ignores the stop: the contactor opens after 6 s
    assert not r.closed
    r.step(600)
    assert r.hal.lock.state() == "unlocked" and r.c.cus == 1
    r.c.authorize(True)
    r.step(2000)
    assert not r.closed and r.hal.pilot.duty == 1000  # no power with the socket released
    r.sim(cp="A")  # cable removed: `ust` 2 rules again
    r.step(600)
    assert r.hal.lock.state() == "locked" and r.c.cus == 3


def test_release_lock_with_no_car_ends_at_the_next_plug_in():
    r = Rig(ust=2)
    r.step(600)
    assert r.hal.lock.state() == "locked"
    r.c.release_lock()
    r.step(600)
    assert r.hal.lock.state() == "unlocked" and r.c.cus == 1
    r.sim(cp="C")
    r.step(1500)
    assert r.hal.lock.state() == "locked" and r.closed


def test_release_lock_jammed_gives_bounded_retries_and_unlock_fault():
    r = Rig(ust=2)
    r.step(600)
    pulses = r.hal.lock.pulses
    r.sim(lock="jam")
    r.c.release_lock()
    r.step(5000)
    assert r.hal.lock.pulses - pulses == 3
    assert r.c.err == ch.ERR_LOCK_LOCKED and r.c.cus == 2


def test_release_lock_in_the_tick_the_car_asks_for_power_never_closes():
    # Found while restructuring the tick: the lock was read as confirmed before the unlock
    # pulse of that same tick started, so the contactor closed on a socket being unlocked.
    r = Rig(ust=2)
    r.sim(cp="B")
    r.step(1000)
    r.sim(cp="C")
    r.step(20)  # the first reading of C: the next one confirms it and would close
    ops = record_relay(r)
    r.c.release_lock()
    r.step(2000)
    assert ops == [] and r.hal.lock.state() == "unlocked"


def test_the_safety_tick_runs_through_a_long_rsa_check(monkeypatch):
    """An RSA-4096 check holds the loop (up to a second on an ESP32, no await in it). It
    calls compat.busy() between its steps, where the charger ticks once 20 ms are due: the
    car leaving state C in the middle of the check opens the contactor within a tick, not
    when the check is over, and a tick is never run twice within 20 ms."""
    import hashlib

    import der
    import rsa_verify
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptokit import rsa_key

    import compat

    key = rsa_key(4096)
    pub = key.public_key().public_numbers()
    nb = pub.n.to_bytes(512, "big")
    n = der.number(nb, 0, 512)
    sig = key.sign(b"root", padding.PKCS1v15(), hashes.SHA256())
    h = hashlib.sha256(b"root").digest()
    r = Rig().charge()
    ops = record_relay(r)
    ticks = []
    tick = r.c.tick

    def counted():
        ticks.append(r.t)
        tick()

    r.c.tick = counted
    seen = {}

    def each(elapsed):
        if elapsed != 40:
            return
        charger_busy = compat.BUSY[0]  # what run() registered
        calls = [0]

        def busy():  # the check's steps take 3 ms each on the rig's clock
            calls[0] += 1
            r.t += 3
            if calls[0] == 100:
                seen["unplug"] = r.t
                r.sim(cp="B")
            charger_busy()

        compat.BUSY[0] = busy
        start = seen["start"] = r.t
        seen["ok"] = rsa_verify.verify(n, pub.e, h, sig)
        seen["calls"], seen["span"] = calls[0], r.t - start
        compat.BUSY[0] = charger_busy

    run_loop(r, monkeypatch, 200, each)
    assert compat.BUSY[0] is None  # the loop has ended: no tick of it from busy() any more
    assert seen["ok"] and seen["calls"] > 200  # the check ran, a step at a time
    assert seen["span"] > 600  # ... for more than half a second of the rig's clock
    opened = [t for t, o in ops if o == "O"]
    assert opened and seen["unplug"] <= opened[0] <= seen["unplug"] + 20 + 3
    assert all(ticks[i + 1] - ticks[i] >= 20 for i in range(len(ticks) - 1))  # not within 20 ms
    # Every 21 ms at most (the first step once 20 ms are due) from the start of the check.
    n_ticks = sum(1 for t in ticks if seen["start"] < t <= seen["unplug"])
    assert n_ticks >= (seen["unplug"] - seen["start"]) // 21


def test_busy_without_a_charger_does_nothing(monkeypatch):
    """Tools and tests run the crypto with no charger: compat.busy() is then a no-op."""
    import compat

    monkeypatch.setattr(compat, "BUSY", [None])
    assert compat.busy() is None
