"""hal/esp32 drivers against the small fakes of `machine`/`esp32` in tests_host/fake_machine
(put on sys.path by the fixture only, never globally)."""

import asyncio
import os
import sys
import time

import pytest
from conftest import FAKES, ROOT, mp_run

# ------------------------------------------------------------------ relay, phase switch, wdt


def test_relay_pin_is_created_driven_off_and_follows_commands(hw):
    from hal.esp32.relay import Relay

    r = Relay(26)
    pin = hw.PINS[26]
    assert pin.created_value == 0 and pin.history == [0] and pin.mode == hw.Pin.OUT
    assert r.closed is False and r.feedback() is None
    r.close()
    assert pin.value() == 1 and r.closed
    r.open()
    assert pin.value() == 0 and not r.closed


def test_relay_feedback_reports_power_after_the_contactor(hw):
    from hal.esp32.relay import Relay

    r = Relay(26, feedback_pin=27, feedback_active=0)
    hw.PINS[27].set_input(1)
    assert r.feedback() is False
    hw.PINS[27].set_input(0)  # welded: power present while commanded open
    assert r.feedback() is True and not r.closed


def test_phase_switch_starts_on_one_phase(hw):
    from hal.esp32.relay import PhaseSwitch

    ps = PhaseSwitch(33)
    assert hw.PINS[33].created_value == 0
    ps.set(3)
    assert hw.PINS[33].value() == 1
    ps.set(1)
    assert hw.PINS[33].value() == 0
    with pytest.raises(ValueError):
        ps.set(2)


def test_watchdog_armed_on_first_feed_with_board_timeout_and_fed(hw):
    from hal.esp32.wdt import Watchdog

    w = Watchdog(6000)
    assert hw.WDTS == []  # not armed during boot
    for _ in range(3):
        w.feed()
    assert len(hw.WDTS) == 1 and hw.WDTS[0].timeout == 6000 and hw.WDTS[0].feeds == 3


# ------------------------------------------------------------------ pilot

CAL = {"adc_p12": 58200, "adc_m12": 5200}


def counts(volts):
    return round(CAL["adc_m12"] + (volts + 12) * (CAL["adc_p12"] - CAL["adc_m12"]) / 24)


def test_pilot_duty_maps_to_pwm_duty_u16_at_1khz(hw):
    from hal.esp32.pilot import Pilot

    p = Pilot(25, 36, **CAL)
    pwm = hw.PWMS[25]
    assert pwm.freq() == 1000
    assert pwm.duty_u16() == 65535  # steady +12 V from construction (state A, no offer)
    # 16 A -> 26.67 % (I / 0.6) -> 267 permille; 32 A -> 533; 6 A -> 100; 5 % digital -> 50
    for permille, want in ((1000, 65535), (0, 0), (100, 6554), (267, 17498), (533, 34930),
                           (50, 3277), (1, 66), (999, 65469)):  # fmt: skip
        p.set_duty(permille)
        assert pwm.duty_u16() == want, permille
        assert abs(want / 65535 - permille / 1000) <= 0.5 / 65535 + 1e-9
    p.set_f()
    assert pwm.duty_u16() == 0
    for bad in (-1, 1001):
        with pytest.raises(ValueError):
            p.set_duty(bad)


def test_pilot_inverting_stage(hw):
    from hal.esp32.pilot import Pilot

    p = Pilot(25, 36, invert=True, **CAL)
    assert hw.PWMS[25].duty_u16() == 0  # inverted: 0 is steady +12 V
    p.set_duty(100)
    assert hw.PWMS[25].duty_u16() == 65535 - 6554
    p.set_f()
    assert hw.PWMS[25].duty_u16() == 65535


def pwm_wave(high_v, low_v, duty, n=240, period=60, noise=0):
    """n ADC samples of a 1 kHz pilot: `period` samples a period, one edge sample each way,
    plus a spike every 37 samples when `noise`."""
    out = []
    for i in range(n):
        ph = i % period
        hi_len = int(period * duty)
        if ph < hi_len:
            v = high_v
        elif ph == hi_len:
            v = (high_v + low_v) / 2  # edge
        else:
            v = low_v
        c = counts(v)
        if noise and i % 37 == 5:
            c += noise
        out.append(max(0, min(65535, c)))
    return out


CASES = {
    # name: (high, low, duty) as a car presents them; expected J1772 bands for high / low
    "A": (12.0, -12.0, 0.27),
    "B": (9.0, -12.0, 0.27),
    "C": (6.0, -12.0, 0.27),
    "D": (3.0, -12.0, 0.27),
    "E": (0.0, 0.0, 0.27),
    "no diode": (6.0, -6.0, 0.27),
}


def classify(high):
    for name, lo, hi in (("A", 11.4, 12.6), ("B", 8.36, 9.56), ("C", 5.48, 6.49),
                         ("D", 2.62, 3.25), ("E", -1.0, 1.0)):  # fmt: skip
        if lo <= high <= hi:
            return name
    return "invalid"


@pytest.mark.parametrize("name", list(CASES))
def test_pilot_burst_reads_plateaus_of_synthetic_samples(hw, name):
    from hal.esp32.pilot import Pilot

    high, low, duty = CASES[name]
    p = Pilot(25, 36, **CAL)
    hw.ADCS[36].source = pwm_wave(high, low, duty, noise=0)
    h, lo = p.read()
    assert h == pytest.approx(high, abs=0.05) and lo == pytest.approx(low, abs=0.05)
    if name in "ABCDE":
        assert classify(h) == name


def test_pilot_burst_short_duty_and_steady_levels(hw):
    from hal.esp32.pilot import Pilot

    p = Pilot(25, 36, **CAL)
    adc = hw.ADCS[36]
    adc.source = pwm_wave(9.0, -12.0, 0.05)  # 5 %: only 3 high samples a period, 4 periods
    h, lo = p.read()
    assert h == pytest.approx(9.0, abs=0.05) and lo == pytest.approx(-12.0, abs=0.05)
    adc.source = [counts(12.0)]  # steady +12 V: low equals high (no low half)
    assert p.read() == pytest.approx((12.0, 12.0), abs=0.01)
    adc.source = [counts(-12.0)]  # state F
    assert p.read() == pytest.approx((-12.0, -12.0), abs=0.01)


def test_pilot_uses_viper_burst_on_micropython_vm():
    # The same synthetic wave through the viper helpers on the MicroPython unix port.
    code = """
import sys
sys.path.insert(0, %r)
import machine
from hal.esp32 import pilot
print(pilot.FAST)
p = pilot.Pilot(25, 36, adc_p12=58200, adc_m12=5200)
w = []
for i in range(240):
    ph = i %% 60
    w.append(44950 if ph < 16 else (25075 if ph == 16 else 5200))
w[41] = 65535
machine.ADCS[36].source = w
h, lo = p.read()
print(round(h, 2), round(lo, 2))
""" % FAKES
    r = mp_run(code, heap="256k")
    assert r.returncode == 0, r.stderr + r.stdout
    kind, levels = r.stdout.strip().splitlines()[-2:]
    assert kind == "True"  # viper-compiled, not the Python fallback
    h, lo = (float(x) for x in levels.split())
    # 8 top samples: 7 at +6 V and one spike at the ADC rail
    assert 6.0 < h < 6.0 + 20.0 / 8 and lo == pytest.approx(-12.0, abs=0.01)


def test_proximity_ohms_from_divider(hw):
    from hal.esp32.pilot import Proximity

    pp = Proximity(39, pullup_ohms=1000, vref=3.3)
    adc = hw.ADCS[39]
    adc.uv = int(3300000 * 220 / 1220)  # 220 ohm: 32 A cable
    assert pp.read_ohms() == pytest.approx(220, rel=0.01)
    adc.uv = 3300000  # no cable
    assert pp.read_ohms() > 10000


# ------------------------------------------------------------------ rcd


def make_rcd(hw, trips=True, resets=True):
    from hal.esp32.rcd import Rcd

    rcd = Rcd(34, 32, reset_pin=33, test_ms=40, pulse_ms=5)
    trip = hw.PINS[34]
    if trips:
        hw.PINS[32].hook = lambda v: trip.set_input(1) if v else None
    if resets:
        hw.PINS[33].hook = lambda v: trip.set_input(0) if v else None
    return rcd, trip


def test_rcd_self_test_passes_when_test_winding_trips_and_reset_clears(hw):
    rcd, trip = make_rcd(hw)
    assert hw.PINS[32].created_value == 0 and not rcd.tripped()
    assert rcd.self_test() is True
    assert not rcd.tripped() and hw.PINS[32].value() == 0
    assert hw.PINS[32].history == [0, 1, 0] and hw.PINS[33].history == [0, 1, 0]
    assert rcd.last_test_ms is not None and rcd.last_test_ms <= 40


def test_rcd_self_test_fails_within_bound_when_no_trip(hw):
    rcd, _ = make_rcd(hw, trips=False)
    t0 = time.monotonic()
    assert rcd.self_test() is False
    assert time.monotonic() - t0 < 0.5
    assert hw.PINS[32].value() == 0  # test winding released


def test_rcd_self_test_fails_when_reset_does_not_clear(hw):
    rcd, trip = make_rcd(hw, resets=False)
    assert rcd.self_test() is False and rcd.tripped()
    trip.set_input(0)
    assert not rcd.tripped()


# ------------------------------------------------------------------ lock


def test_lock_pulse_and_feedback(hw):
    from hal.esp32.lock import Lock

    lock = Lock(18, 19, 21, locked_level=0, pulse_ms=10000, max_pulses=3)
    a, b, fb, timer = hw.PINS[18], hw.PINS[19], hw.PINS[21], hw.TIMERS[0]
    fb.set_input(1)
    assert lock.state() == "unlocked" and a.created_value == 0 and b.created_value == 0
    assert lock.drive(True) is True
    assert a.value() == 1 and b.value() == 0 and lock.state() == "unknown"
    assert timer.period == 10000 and timer.mode == hw.Timer.ONE_SHOT
    fb.set_input(0)
    timer.fire()
    assert a.value() == 0 and lock.state() == "locked"
    assert lock.drive(True) is True and a.value() == 0  # already there: no pulse
    assert lock.drive(False) is True and b.value() == 1 and a.value() == 0


def test_lock_retries_are_bounded_when_jammed(hw):
    from hal.esp32.lock import Lock

    lock = Lock(18, 19, 21, locked_level=0, pulse_ms=10000, max_pulses=3)
    a, fb, timer = hw.PINS[18], hw.PINS[21], hw.TIMERS[0]
    fb.set_input(1)  # never reaches locked
    results = []
    for _ in range(6):
        results.append(lock.drive(True))
        timer.fire()
    assert results == [True, True, True, False, False, False]
    assert a.history.count(1) == 3 and a.value() == 0
    assert lock.drive(False) is True  # the other direction is allowed again


def test_lock_motor_stops_even_if_timer_is_late(hw):
    from hal.esp32.lock import Lock

    lock = Lock(18, 19, 21, pulse_ms=20)
    hw.PINS[21].set_input(1)
    lock.drive(True)
    assert hw.PINS[18].value() == 1
    time.sleep(0.05)
    lock.state()
    assert hw.PINS[18].value() == 0


# ------------------------------------------------------------------ temp, reader


def test_ntc_beta_formula_and_failed_sensor(hw):
    from hal.esp32.temp import Temp

    t = Temp([35, 34], r_series=10000, r0=10000, t0_c=25, beta=3950)
    hw.ADCS[35].source = [32768]  # R = R0 -> 25 C
    hw.ADCS[34].source = [round(65535 * 3588 / 13588)]  # 3588 ohm -> about 50 C
    c = t.read_c()
    assert c[0] == pytest.approx(25.0, abs=0.1) and c[1] == pytest.approx(50.0, abs=0.5)
    hw.ADCS[35].source = [round(65535 * 3588 / 13588)]
    assert t.read_c() is c and c[0] == pytest.approx(50.0, abs=0.5)  # one list, in place
    hw.ADCS[34].source = [65535]  # open sensor
    assert t.read_c() is None


def rdm_frame(tag_hex):
    data = bytes.fromhex(tag_hex)
    x = 0
    for b in data:
        x ^= b
    return b"\x02" + tag_hex.upper().encode() + b"%02X" % x + b"\x03"


def test_rfid_uart_reader_reports_each_presentation_once(hw):
    from hal.esp32.reader import Reader, parse_frame

    r = Reader(1, rx=5, away_ms=100)
    uart = hw.UARTS[1]
    assert r.poll() is None
    uart.rx += b"\x00\xff" + rdm_frame("0A00F1E2D3")
    assert r.poll() == "0A00F1E2D3"
    uart.rx += rdm_frame("0A00F1E2D3") + rdm_frame("0A00F1E2D3")  # still held
    assert r.poll() is None
    bad = bytearray(rdm_frame("1100000001"))
    bad[11] ^= 1  # checksum digit wrong
    uart.rx += bad
    assert r.poll() is None and parse_frame(bad) is None
    uart.rx += rdm_frame("1100000001")[:7]  # split across polls
    assert r.poll() is None
    uart.rx += rdm_frame("1100000001")[7:]
    assert r.poll() == "1100000001"
    time.sleep(0.12)
    uart.rx += rdm_frame("0A00F1E2D3")
    assert r.poll() == "0A00F1E2D3"  # presented again after being away


# ------------------------------------------------------------------ meter over UART, bundle


def test_uart_stream_toggles_rs485_direction_around_a_flushed_write(hw):
    import modbus
    from hal.esp32.meter import make_meter

    meter = make_meter(2, tx=17, rx=16, kind="sdm72", addr=1, de_pin=4)
    uart, de = hw.UARTS[2], hw.PINS[4]
    assert de.created_value == 0
    seen = []

    def slave(req):
        seen.append((de.value(), uart.flushed))
        addr, fc, count = req[0], req[1], (req[4] << 8) | req[5]
        body = bytes((addr, fc, 2 * count)) + bytes(2 * count)
        c = modbus.crc16(body)
        uart.rx += body + bytes((c & 0xFF, c >> 8))

    uart.on_write = slave
    r = asyncio.run(meter.read())
    assert r["u"] == [0.0, 0.0, 0.0] and r["e_wh"] == 0.0 and meter.online
    assert seen and all(v == 1 for v, _ in seen)  # DE high while the frame goes out
    assert de.value() == 0 and uart.flushed == len(seen)  # flushed, then back to receive
    assert de.history[-2:] == [1, 0]


def test_make_hal_builds_the_bundle_from_the_board_description(hw):
    from hal.esp32 import board
    from hal.esp32.board_config import BOARD

    desc = board.load_desc("/nonexistent/board.json")
    desc["lock"] = {"a_pin": 18, "b_pin": 19, "locked_pin": 21}
    desc["relay"] = {"pin": 26, "feedback_pin": 27}
    hal = board.make_hal(desc)
    assert hw.PINS[26].created_value == 0
    assert hal.board == {
        "max_current": BOARD["max_current"], "phases": 3, "model_kw": 11, "meter": "sdm630",
        "has_relay_feedback": True, "has_lock": True, "has_pp": False, "ventilation": False,
    }  # fmt: skip
    assert hal.pp.read_ohms() is None and hal.phase_switch is None
    assert hal.lock.present and hal.reader.poll() is None
    for part in ("relay", "pilot", "rcd", "meter", "temp", "wdt"):
        assert getattr(hal, part) is not None
    assert BOARD["lock"] is None  # the description itself is untouched


def test_board_json_overlay(hw, tmp_path):
    from hal.esp32 import board

    p = tmp_path / "board.json"
    p.write_text('{"max_current": 32, "phases": 1, "meter": {"type": "abb_b23", "addr": 3}}')
    desc = board.load_desc(str(p))
    assert desc["max_current"] == 32 and desc["meter"]["type"] == "abb_b23"
    assert desc["meter"]["uart"] == 2  # merged, not replaced
    assert board.board_info(desc)["meter"] == "abb_b23"



# ------------------------------------------------------------------ static check


def _typecheck(*files):
    import subprocess

    tool = os.path.join(ROOT, "tools", "typecheck.py")
    return subprocess.run([sys.executable, tool, *files], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)  # fmt: skip


def test_typecheck_accepts_the_drivers_and_rejects_an_invented_call(tmp_path):
    ok = _typecheck()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad_driver.py"
    bad.write_text(
        "from machine import PWM, Pin\n\n\n"
        "class Pilot:\n"
        "    def __init__(self):\n"
        "        self.pwm = PWM(Pin(25), freq=1000)\n\n"
        "    def set_duty(self, permille):\n"
        "        self.pwm.duty_percent(permille / 10)\n"
    )
    r = _typecheck(str(bad))
    assert r.returncode == 1
    assert "duty_percent" in r.stdout and "bad_driver.py:9" in r.stdout
