"""The board description: the one place a maker edits to adapt the firmware to a board.

Plain data, no code. `make_hal()` reads `BOARD` below, then overlays `/board.json` from the
board's filesystem when that file exists (same keys, JSON), so a built image can be adapted
without recompiling. Pins are ESP32 GPIO numbers; ADC inputs must be ADC1 (GPIO 32-39:
ADC2 is unusable with WiFi on). A part set to None is absent on the board.
"""

BOARD = {
    "name": "generic-esp32-evse",
    # installation and product
    "max_current": 16,  # A per phase, the installation's fuse / cable rating
    "phases": 3,
    "model_kw": 11,
    "ventilation": False,  # state D may be served (a fan the firmware switches is absent)
    # control pilot: PWM output through the +-12 V op-amp stage, sensed by an ADC1 divider
    "pilot": {
        "pwm_pin": 25,
        "adc_pin": 36,
        "invert": False,  # True when the op-amp stage inverts (duty 0 then means +12 V)
        # calibration: ADC read_u16 counts measured at +12 V and at -12 V on the pilot
        "adc_p12": 58200,
        "adc_m12": 5200,
        "samples": 240,  # burst length: about four 1 kHz periods at ~15 us a sample
        "top_n": 8,  # averaged samples at each extreme
    },
    "pp": None,  # tethered cable; socket: {"adc_pin": 39, "pullup_ohms": 1000, "vref": 3.3}
    # feedback_pin: auxiliary contact or mains sense after the contactor. Without it (None)
    # a welded contactor is seen only from metered current (> 0.5 A for 1 s with the
    # contactor open, firmware/evse/charger.py): a weld with no load goes unseen, so the socket
    # lock may release with live contacts and a new session may start on them. Fit it on
    # every socket board (and every board where safety rule 7 matters).
    "relay": {"pin": 26, "feedback_pin": None, "feedback_active": 1},
    "phase_switch": None,  # {"pin": 33}: high = three phases
    "rcd": {
        "trip_pin": 34,
        "trip_active": 1,  # level of trip_pin when tripped
        "test_pin": 32,  # drives the test winding, active high
        "reset_pin": 33,  # pulse to clear the latch; None when the device has none
        "test_ms": 60,  # the trip must show within this bound
        "pulse_ms": 20,
    },
    "lock": None,  # {"a_pin": 18, "b_pin": 19, "locked_pin": 21, "locked_level": 0,
    #               "unlocked_pin": None, "pulse_ms": 300, "max_pulses": 3, "timer": 0}
    "temp": {
        "adc_pins": [35],  # NTC to GND, series resistor to vref
        "r_series": 10000,
        "r0": 10000,
        "t0_c": 25,
        "beta": 3950,
    },
    "meter": {
        "type": "sdm630",  # sdm630 | sdm72 | abb_b23 | auto | none
        "addr": 1,
        "uart": 2,
        "tx": 17,
        "rx": 16,
        "de_pin": 4,  # RS-485 driver enable (DE and /RE tied), None for auto-direction
        "baud": 9600,
    },
    # RFID: an RDM6300-style 125 kHz EM4100 reader on a UART (9600 8N1, RX only)
    "reader": {"uart": 1, "rx": 5, "tx": None, "baud": 9600},
    "wdt_ms": 8000,
}
