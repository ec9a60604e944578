"""API provider for the charger's read-only runtime keys (CONTRACT.md section 2).

The writable charger keys (amp, ama, frc, psm, ust, dwo) live in the config store, which
validates them; the charger reads them from there on every tick.
"""

VERSION = "0.1.0"
_KEYS = ("car", "err", "acu", "alw", "nrg", "eto", "wh", "cus", "tma", "var", "fwv")


class ChargerKeys:
    def __init__(self, charger, version=VERSION):
        self._c = charger
        self._version = version

    def owns(self, key):
        return key in _KEYS

    def status(self, out):
        c = self._c
        out["car"] = c.car
        out["err"] = c.err
        out["acu"] = c.acu
        out["alw"] = c.alw
        out["nrg"] = list(c.nrg)
        e = c.energy_wh
        out["eto"] = None if e is None else int(e)
        out["wh"] = round(c.session_wh, 1)
        out["cus"] = c.cus
        out["tma"] = list(c.tma)
        out["var"] = c.hal.board.get("model_kw", 11)
        out["fwv"] = self._version

    def check(self, key, value):
        if key in _KEYS:
            return "read-only"
        return "unknown key"

    def apply(self, changes):
        # Nothing here is writable; check() refuses every key first.
        return None
