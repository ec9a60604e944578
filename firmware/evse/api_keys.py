"""API provider for the charger's read-only runtime keys (CONTRACT.md section 2), and the
fault reset action.

The writable charger keys (amp, ama, frc, psm, ust, dwo) live in the config store, which
validates them; the charger reads them from there on every tick.

`frs` (write-only action, not a go-e key): `/api/set?frs=true` is the deliberate user or
operator reset of latched faults (REFERENCE §2 rule 6): a tripped RCD is reset at most three
times until a session ends without a trip, a welded contactor clears only once the feedback
shows no power. The outcome shows in `err` (0 when every fault is gone).

Configuration keys:
ConnectorPhaseRotation: Wiring of each connector to the grid, `<connector>.<rotation>` list.
ConnectorPhaseRotationMaxLength: Maximum entries in ConnectorPhaseRotation.
UnlockConnectorOnEVSideDisconnect: Unlock the cable when it leaves the car.
amp: Requested current, A (6..32); the offer never exceeds ama, the cable or a limit.
ama: Maximum current of this installation, A.
frc: Force state: 0 neutral, 1 off, 2 on.
psm: Phase mode: 0 auto, 1 one phase, 2 three phases.
ust: Cable lock: 0 unlock when car unlocks, 1 automatic, 2 always locked.
dwo: Charging energy limit, Wh (a number, float accepted), or null.
acs: 0 open charging, 1 authorization required.
"""

from compat import const
from version import VERSION  # lib/version.py: the one place the version is written

_KEYS = ("car", "err", "acu", "alw", "nrg", "eto", "wh", "cus", "tma", "var", "fwv")


# This feature's configuration keys (row format: firmware/keys.py TABLE); their meanings
# are the "Configuration keys" lines of the module docstring (the README table).
_A = const(16)  # API: a product key
_AL = const(48)  # API | LAZY: written often, persisted on a debounce
_O = const(8)  # OCPP: a standard key
_OR = const(9)  # OCPP | RO
KEYS = (
    ("ConnectorPhaseRotation", "r", _O, "0.RST,1.RST", None, "ConnectorPhaseRotationMaxLength"),
    ("ConnectorPhaseRotationMaxLength", "i", _OR, 2, None, None),
    ("UnlockConnectorOnEVSideDisconnect", "b", _O, True, None, None),
    ("amp", "i", _AL, 16, 6, 32),
    ("ama", "i", _A, 16, 6, 32),
    ("frc", "i", _AL, 0, 0, 2),
    ("psm", "i", _AL, 0, 0, 2),
    ("ust", "i", _A, 0, 0, 2),
    ("dwo", "d", _A, None, 0, 100000000),
    ("acs", "i", _A, 0, 0, 1),
)


class ChargerKeys:
    def __init__(self, charger, version=VERSION):
        self._c = charger
        self._version = version

    def owns(self, key):
        return key in _KEYS or key == "frs"

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
        if key == "frs":
            return None if value is True else "must be true (reset latched faults)"
        if key in _KEYS:
            return "read-only"
        return "unknown key"

    def apply(self, changes):
        if changes.get("frs") is True:
            import log

            ok = self._c.reset_fault()
            log.info("charger", "fault reset by the user:", "cleared" if ok else "not cleared")
        return None
