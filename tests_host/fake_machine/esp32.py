"""Fake `esp32` module: only what hal/esp32 may touch in host tests."""


def mcu_temperature():
    return 40
