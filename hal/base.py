"""HAL interfaces: what the charger logic expects from the hardware.

The charger (`firmware/evse/charger.py`) gets one `Hal` bundle object whose attributes are
the parts below. Every driver (`hal/esp32/`, `hal/sim.py`, test fakes) implements them by
duck typing; subclassing the classes here is optional (they document the contract and give safe
defaults for boards that lack a part). Nothing imports this module unless a board lacks a
part (hal/esp32/board.py: no meter, no reader): the simulator's parts do not subclass these,
so its heap holds no class of them (issue 9). `hal.board_defaults()` is in hal/__init__.py.
All methods are synchronous unless marked async, and every synchronous method must return
within a few milliseconds: the charger calls them from its 20 ms safety tick.

Hal bundle attributes
---------------------
relay         Relay: the main contactor.
pilot         Pilot: control pilot PWM output and measurement.
pp            Proximity: cable coding resistor (PP-PE).
rcd           Rcd: residual current device (6 mA DC monitor).
meter         Meter: energy meter, polled by its own task (not the safety path).
lock          Lock: socket cable lock.
temp          Temp: temperature sensors.
reader        Reader: RFID reader.
wdt           Watchdog: `feed()`.
phase_switch  None, or PhaseSwitch for boards that switch between 1 and 3 phases.
board         dict: max_current (A), phases (1/3), model_kw (11/22), meter (type string),
              has_relay_feedback, has_lock, has_pp, ventilation (bools).

Optional members (beyond the interface above; the charger works without them):
ota           None, or the whole-image OTA driver of a board with OTA app partitions
              (hal/esp32/ota.py: open(total) -> download sink, activate(label), running(),
              confirm(), label()); absent or None: UpdateFirmware takes application bundles
              only. The simulator has none.

Units: volts, amps, ohms, degrees Celsius, watts, watt hours. Time is never read here:
drivers that need time take a `now_ms` callable (compat.ticks_ms by default).
"""


class Relay:
    """Main contactor. Fail safe: the driver opens it at construction (relay off on reset).

    closed: bool, the commanded state (True after close()).
    """

    closed = False

    def close(self):
        """Command the contactor closed."""
        raise NotImplementedError

    def open(self):
        """Command the contactor open. Must never raise."""
        raise NotImplementedError

    def feedback(self):
        """None when the board has no feedback, else bool: power present after the contactor
        (auxiliary contact or mains sense). True while commanded open means welded."""
        return None


class Pilot:
    """Control pilot: 1 kHz PWM, +12/-12 V, and a measurement of both levels."""

    def set_duty(self, permille):
        """0..1000 permille of +12 V at 1 kHz; 1000 = steady +12 V (no charging allowed)."""
        raise NotImplementedError

    def set_f(self):
        """Steady -12 V (state F: EVSE not available)."""
        raise NotImplementedError

    def read(self):
        """(high_volts, low_volts) measured over the last few PWM periods (burst sampling).
        The low level is what the diode check looks at (about -12 V with a good diode);
        with a steady +12 V output the low equals the high."""
        raise NotImplementedError


class Proximity:
    """Proximity pilot (sockets)."""

    def read_ohms(self):
        """Resistance PP-PE in ohms; any value above 10000 (or inf) when no cable is inserted.
        None when the board has a tethered cable or no PP circuit."""
        return None


class Rcd:
    """Residual current monitor. The hardware opens the contactor by itself on a trip; the
    firmware sees it here and latches it."""

    def tripped(self):
        """True while the device reports a residual current fault (latched by hardware)."""
        raise NotImplementedError

    def self_test(self):
        """Run the test winding; True when the device tripped as expected (passed). Leaves the
        device reset. May take a few ms; called with the contactor open only."""
        raise NotImplementedError

    def reset(self):
        """Clear the hardware latch (deliberate user/operator action only)."""
        raise NotImplementedError


class Meter:
    """Energy meter; polled by `Charger.run_meter()` about once a second.

    online: bool, False after the meter stopped answering.
    """

    online = False

    async def read(self):
        """{"u": [v1, v2, v3], "i": [a1, a2, a3], "p": [w1, w2, w3], "pf": [f1, f2, f3],
        "p_total": w, "e_wh": import energy Wh, "e_exp_wh": export energy Wh (optional: a meter
        without the register leaves it out)}, or None when it does not answer.
        Power factors are -1..1."""
        return None


class Lock:
    """Socket cable lock with feedback.

    present: bool, False on boards without a lock (state() then says "unlocked").
    """

    present = False

    def drive(self, locked):
        """Start one motor pulse towards locked (True) or unlocked (False). Returns at once;
        the feedback settles within about 500 ms."""
        return None

    def state(self):
        """"locked" | "unlocked" | "unknown" (feedback between positions or broken)."""
        return "unlocked"


class Temp:
    def read_c(self):
        """List of degrees Celsius (one per sensor), or None when a sensor failed."""
        return None


class Reader:
    def poll(self):
        """idTag string of a card held to the reader (reported once per presentation),
        else None."""
        return None


class Watchdog:
    def feed(self):
        return None


class PhaseSwitch:
    def set(self, phases):
        """1 or 3. Only called with the contactor open."""
        raise NotImplementedError
