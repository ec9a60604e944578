"""`make_hal(board_desc=None)`: the whole ESP32 HAL bundle from the board description.

The description is `hal/esp32/board_config.BOARD`, overlaid by `/board.json` when the board's
filesystem has one (top-level keys replace, part dicts merge), or the dict passed in.
"""

from hal import base
from hal.esp32.board_config import BOARD


class Hal:
    """The bundle `firmware.charger` expects (see hal/base.py)."""

    def __init__(self, **parts):
        for k in parts:
            setattr(self, k, parts[k])


class NoLock:
    present = False

    def drive(self, locked):
        return None

    def state(self):
        return "unlocked"


class NoPp:
    def read_ohms(self):
        return None


class NoTemp:
    def read_c(self):
        return []  # no sensor on the board: nothing to derate on (not a failed sensor)


def load_desc(path="/board.json"):
    desc = {}
    for k in BOARD:
        v = BOARD[k]
        desc[k] = dict(v) if isinstance(v, dict) else v
    try:
        import json

        with open(path) as f:
            extra = json.load(f)
    except (OSError, ValueError):
        return desc
    for k in extra:
        v = extra[k]
        if isinstance(v, dict) and isinstance(desc.get(k), dict):
            desc[k].update(v)
        else:
            desc[k] = v
    return desc


def board_info(desc):
    """The `board` dict of the HAL interface."""
    meter = desc.get("meter")
    relay = desc.get("relay") or {}
    return {
        "max_current": desc["max_current"],
        "phases": desc["phases"],
        "model_kw": desc["model_kw"],
        "meter": meter["type"] if meter else "none",
        "has_relay_feedback": relay.get("feedback_pin") is not None,
        "has_lock": bool(desc.get("lock")),
        "has_pp": bool(desc.get("pp")),
        "ventilation": bool(desc.get("ventilation")),
    }


def make_hal(board_desc=None):
    desc = load_desc() if board_desc is None else board_desc
    from hal.esp32.pilot import Pilot, Proximity
    from hal.esp32.rcd import Rcd
    from hal.esp32.relay import PhaseSwitch, Relay

    relay = Relay(**desc["relay"])  # first: the contactor pin is driven open at once
    pilot = Pilot(**desc["pilot"])
    pp = Proximity(**desc["pp"]) if desc.get("pp") else NoPp()
    rcd = Rcd(**desc["rcd"])
    ps = PhaseSwitch(**desc["phase_switch"]) if desc.get("phase_switch") else None
    if desc.get("lock"):
        from hal.esp32.lock import Lock

        lock = Lock(**desc["lock"])
    else:
        lock = NoLock()
    meter = base.Meter()  # offline, reads None
    m = desc.get("meter")
    if m and m.get("type", "none") != "none":
        from hal.esp32.meter import make_meter

        m = dict(m)
        m["kind"] = m.pop("type")
        meter = make_meter(**m)
    temp = NoTemp()
    if desc.get("temp"):
        from hal.esp32.temp import Temp

        temp = Temp(**desc["temp"])
    reader = base.Reader()
    if desc.get("reader"):
        from hal.esp32.reader import Reader

        reader = Reader(**desc["reader"])
    from hal.esp32.wdt import Watchdog

    return Hal(relay=relay, pilot=pilot, pp=pp, rcd=rcd, meter=meter, lock=lock, temp=temp,
               reader=reader, wdt=Watchdog(desc.get("wdt_ms", 8000)), phase_switch=ps,
               board=board_info(desc), desc=desc)  # fmt: skip
