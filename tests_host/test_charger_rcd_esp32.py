"""Review item 11: the ESP32 RCD driver's self-test must never erase a real trip."""


def test_self_test_on_a_tripped_device_fails_and_keeps_the_latch(hw):
    from hal.esp32.rcd import Rcd

    rcd = Rcd(34, 32, reset_pin=33, test_ms=40, pulse_ms=5)
    trip = hw.PINS[34]
    hw.PINS[33].hook = lambda v: trip.set_input(0) if v else None  # reset clears the latch
    trip.set_input(1)  # a real residual current trip, latched by the module
    assert rcd.self_test() is False
    assert rcd.tripped()  # still latched: only a deliberate reset() clears it
    assert hw.PINS[33].history == [0] and hw.PINS[32].history == [0]  # no pulse at all
