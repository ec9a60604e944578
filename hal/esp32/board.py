"""`make_hal(board_desc=None)`: the whole ESP32 HAL bundle from the board description.

The description is `hal/esp32/board_config.BOARD`, overlaid by `/board.json` when the board's
filesystem has one (top-level keys replace, part dicts merge), or the dict passed in.
"""

from hal.esp32.board_config import BOARD


class Hal:
    """The bundle `firmware.evse.charger` expects (see hal/base.py)."""

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
        sub = desc.get(k)
        if isinstance(v, dict) and isinstance(sub, dict):
            sub.update(v)
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


def _lock(desc):
    if not desc.get("lock"):
        return NoLock()
    from hal.esp32.lock import Lock

    return Lock(**desc["lock"])


def _meter(desc):
    m = desc.get("meter")
    if not m or m.get("type", "none") == "none":
        from hal import base

        return base.Meter()  # offline, reads None
    from hal.esp32.meter import make_meter

    m = dict(m)
    m["kind"] = m.pop("type")
    return make_meter(**m)


def _temp(desc):
    if not desc.get("temp"):
        return NoTemp()
    from hal.esp32.temp import Temp

    return Temp(**desc["temp"])


def _reader(desc):
    if not desc.get("reader"):
        from hal import base

        return base.Reader()
    from hal.esp32.reader import Reader

    return Reader(**desc["reader"])


def _ota():
    from hal.esp32 import ota

    return ota.detect()  # None without OTA partitions: application bundles only


def make_hal(board_desc=None):
    desc = load_desc() if board_desc is None else board_desc
    from hal.esp32.pilot import Pilot, Proximity
    from hal.esp32.rcd import Rcd
    from hal.esp32.relay import PhaseSwitch, Relay
    from hal.esp32.wdt import Watchdog

    relay = Relay(**desc["relay"])  # first: the contactor pin is driven open at once
    pilot = Pilot(**desc["pilot"])
    pp = Proximity(**desc["pp"]) if desc.get("pp") else NoPp()
    rcd = Rcd(**desc["rcd"])
    ps = PhaseSwitch(**desc["phase_switch"]) if desc.get("phase_switch") else None
    return Hal(relay=relay, pilot=pilot, pp=pp, rcd=rcd, meter=_meter(desc), lock=_lock(desc),
               temp=_temp(desc), reader=_reader(desc), wdt=Watchdog(desc.get("wdt_ms", 8000)),
               phase_switch=ps, board=board_info(desc), desc=desc, ota=_ota())  # fmt: skip


def main(data):
    """The board's launcher (main.py calls it once the A/B slot is chosen): the drivers of
    the board description, WiFi from the stored configuration, the application."""
    import machine
    import network

    import compat
    from firmware import app
    from version import VERSION

    boot = compat.lend("firmware.app_boot")  # let go before app.run (del boot)
    hal = make_hal()
    ident = "".join("%02x" % b for b in machine.unique_id())
    cfg = boot.load_config(data)
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    ssid = cfg.get("wss")
    if ssid:
        wlan.connect(ssid, cfg.get("wke"))
    info = boot.info(VERSION, serial=ident, board=hal.board)
    del boot
    # page: web/index.html gzipped by tools/webpage.py, copied there by `make deploy`.
    app.run(hal, data, info, reboot=machine.reset, config=cfg, api_host="0.0.0.0", api_port=80,
            page="/lib/web/index.html.gz")
