"""Duty formulas (IEC 61851-1 Annex A), pilot level classification, diode and PP coding."""

from hypothesis import given
from hypothesis import strategies as st

from firmware.evse import pilot


def test_duty_6a_is_100_permille():
    assert pilot.duty_for_current(6) == 100


def test_duty_16a_rounds_down_to_266_permille():
    # 16 / 0.6 = 26.67 %: rounded down so the car reads 15.96 A, never more than 16 A.
    assert pilot.duty_for_current(16) == 266
    assert pilot.current_for_duty(266) <= 16


def test_duty_edges_51a_and_80a():
    assert pilot.duty_for_current(51) == 850  # both formulas meet at 85 %
    assert pilot.duty_for_current(52) == 848  # 52 / 2.5 + 64 = 84.8 %
    assert pilot.duty_for_current(80) == 960
    assert pilot.duty_for_current(100) == 960


def test_below_6a_offers_no_charging():
    assert pilot.duty_for_current(5.9) == 1000
    assert pilot.duty_for_current(0) == 1000
    assert pilot.duty_for_current(None) == 1000


@given(st.floats(6, 80))
def test_duty_is_legal_and_never_offers_more_than_asked(amps):
    d = pilot.duty_for_current(amps)
    assert pilot.is_legal_duty(d) and d != 1000
    assert pilot.current_for_duty(d) <= amps + 1e-9
    if amps <= 51 or amps >= 53.5:
        assert amps - pilot.current_for_duty(d) < 0.3
    # 51..53.5 A: the second formula gives 84.4..85 %, which a car reads with the first
    # (duty <= 85 %: I = duty x 0.6), so it draws a little less: the standard's own seam.


def test_amps_for_duty_is_the_float_formula_rounded_half_up_in_integers():
    for d in range(1001):
        assert pilot.amps_for_duty(d) == int(pilot.current_for_duty(d) + 0.5), d
    assert pilot.amps_for_duty(133) == 8 and pilot.amps_for_duty(266) == 16


def test_illegal_duties_are_recognised():
    for d in (0, 50, 99, 961, 999):
        assert not pilot.is_legal_duty(d)
    assert pilot.current_for_duty(1000) == 0 and pilot.current_for_duty(50) == 0


def test_classify_nominal_levels():
    assert [pilot.classify(v) for v in (12, 9, 6, 3, 0)] == ["A", "B", "C", "D", "E"]
    assert pilot.classify(14.0) == "X" and pilot.classify(-5.0) == "X"


def test_classify_hysteresis_keeps_state_near_boundary():
    assert pilot.classify(7.3) == "C"
    assert pilot.classify(7.3, "B") == "B"  # within 0.4 V of the 7.5 V boundary
    assert pilot.classify(7.0, "B") == "C"
    assert pilot.classify(10.7, "B") == "B" and pilot.classify(10.7, "A") == "A"


def test_diode_check():
    assert pilot.diode_ok(-12.0) and pilot.diode_ok(-11.4)
    assert not pilot.diode_ok(-8.8) and not pilot.diode_ok(-5.6) and not pilot.diode_ok(0)


def test_pp_cable_coding():
    assert [pilot.pp_amps(r) for r in (1500, 680, 220, 100)] == [13, 20, 32, 63]
    assert pilot.pp_amps(100000) == 0 and pilot.pp_amps(float("inf")) == 0
    assert pilot.pp_amps(50) == -1 and pilot.pp_amps(3000) == -1 and pilot.pp_amps(None) == -1


def test_broken_readings_are_invalid_not_exceptions():
    nan, inf = float("nan"), float("inf")
    assert [pilot.classify(v, "C") for v in (nan, inf, -inf)] == ["X", "X", "X"]
    assert not pilot.diode_ok(nan) and not pilot.diode_ok(-inf)
