"""go-e API v2 keys of the whole charger that no single feature owns (same names, types and
meanings as a go-eCharger, so its clients work unchanged):

    sse          serial number (string)
    typ          device type (string, the model: "OWB-11")
    oem          manufacturer ("OpenWallbox")
    modelStatus  why the car may or may not charge right now (go-e's codes, see _REASONS)
    pha          six bools: L1, L2, L3 after the contactor, then L1, L2, L3 before it
    pnp          phases in use (see phases_in_use)
    lck          effective cable lock mode: `ust` (0..2), 3 while an operator unlock holds
    cbl          ampacity of the plugged cable (A, from its PP resistor), or null
    su           W, `su=true` (or 1): simulate unplugging, the pilot goes to state F for 3 s
                 once the contactor is open: a pilot pause that wakes a sleeping car
    rst          W, `rst=true` (or 1): reboot, as an OCPP soft Reset (a running transaction
                 stops, the journal gets its time to reach the central system)

`pha` as far as the hardware tells: before the contactor, the phases the board is wired to;
after it, while the contactor is closed, the phases the meter sees a voltage on (or the
phases in use when there is no reading).
"""

import asyncio

import log
from compat import asleep_ms, const, ticks_diff, ticks_ms
from firmware.evse import pilot as _pilot

_KEYS = ("sse", "typ", "oem", "modelStatus", "pha", "pnp", "lck", "cbl", "su", "rst")
_READ_ONLY = ("sse", "typ", "oem", "modelStatus", "pha", "pnp", "lck", "cbl")
_SU_MS = const(3000)  # state F this long (as the charger's pilot disconnect for a phase switch)
_SU_OPEN_MS = const(8000)  # the contactor opens within 6 s of an EVSE stop
_RST_DELAY_MS = const(500)  # the answer goes out first
_VOLTS = 100  # a phase with more than this on the meter is live

# modelStatus, go-e's codes (apikeys: "Reason why we allow charging or not right now").
MS_OVERTEMP = const(1)
MS_ACCESS = const(2)  # waiting for authorization: a card, trx, a remote start
MS_FORCE_ON = const(3)
MS_FORCE_OFF = const(4)
MS_ENERGY_LIMIT = const(6)
MS_PV_SURPLUS = const(12)  # charging on the PV surplus (fup, ids)
MS_DEFAULT = const(15)
MS_SIMULATE_UNPLUG = const(22)
MS_PHASE_SWITCH = const(23)
MS_PV_WAIT = const(24)  # the surplus controller holds charging paused (go-e: min. pause)
MS_ERROR = const(26)
MS_LIMIT = const(27)  # a limit below 6 A (load management)
MS_OCPP = const(28)  # the central system's charging profile allows less than 6 A
MS_INOPERATIVE = const(37)


def phases_in_use(charger):
    """Phases the car draws on (current above 1 A) while the contactor is closed, else the
    phases the charger would switch on: the phase switch's position, else the board's."""
    if charger.energized and charger.meter_ok:
        n = 0
        for k in range(3):
            if charger.nrg[4 + k] > 1:
                n += 1
        if n:
            return n
    n = getattr(charger, "_phases", None)  # the phase switch's position, once set
    return n or charger.hal.board.get("phases", 3)


def model_status(cp, unplugging=False):
    c = cp.charger
    cfg = cp.config.get
    if c.err:
        return MS_OVERTEMP if c.err == 13 else MS_ERROR
    if unplugging:
        return MS_SIMULATE_UNPLUG
    st = cp.station
    if st is not None and not st.available(1):
        return MS_INOPERATIVE
    frc = cfg("frc")
    if frc == 1:
        return MS_FORCE_OFF
    dwo = cfg("dwo")
    if dwo and c.plugged and c.session_wh >= dwo:
        return MS_ENERGY_LIMIT
    if c.state == "F" and c.available:
        return MS_PHASE_SWITCH
    ocpp = bool(cfg("ocppe"))
    if c.auth_required and not c.authorized and not (frc == 2 and not ocpp):
        return MS_ACCESS
    solar = cp.solar
    if solar is not None and solar.active():
        return MS_PV_SURPLUS if solar.amps else MS_PV_WAIT
    if c.plugged and c.offered is None:
        smart = cp.limits
        if ocpp and smart is not None and smart.amps is not None and smart.amps < 6:
            return MS_OCPP
        return MS_LIMIT
    return MS_FORCE_ON if frc == 2 else MS_DEFAULT


class GoeKeys:
    def __init__(self, cp):
        self.cp = cp
        self.unplugging = False  # su: a simulated unplugging runs
        self._tasks = []

    def owns(self, key):
        return key in _KEYS

    def status(self, out):
        cp = self.cp
        c = cp.charger
        info = cp.info
        out["sse"] = info.get("serial", "")
        out["typ"] = info.get("model", "")
        out["oem"] = info.get("vendor", "")
        out["modelStatus"] = model_status(cp, self.unplugging)
        n = phases_in_use(c)
        wired = c.hal.board.get("phases", 3)
        pha = [False] * 6
        for k in range(3):
            if c.energized:
                u = c.nrg[k] if c.meter_ok else 0
                pha[k] = u > _VOLTS if u else k < n
            pha[3 + k] = k < wired
        out["pha"] = pha
        out["pnp"] = n
        lck = cp.config.get("ust")
        out["lck"] = 3 if getattr(c, "_release", False) else lck
        ohms = c.hal.pp.read_ohms() if c.plugged else None
        a = _pilot.pp_amps(ohms) if ohms is not None else 0
        out["cbl"] = a if a > 0 else None

    def check(self, key, value):
        if key in _READ_ONLY:
            return "read-only"
        if value is True or (type(value) is int and value == 1):  # evcc sends su=1
            return None
        return "must be true (or 1)"

    def apply(self, changes):
        if "su" in changes and not self.unplugging:
            self.unplugging = True
            self._spawn(self._unplug())
        if "rst" in changes:
            self._spawn(self._reboot())
        return None

    def idle(self):
        """Nothing under way (an unplugging, a reboot asked): the module may go (app)."""
        return not self.unplugging and all(t.done() for t in self._tasks)

    def _spawn(self, coro):
        t = asyncio.create_task(coro)
        self._tasks = [x for x in self._tasks if not x.done()] + [t]  # references kept

    async def _unplug(self):
        cp = self.cp
        c = cp.charger
        log.info("goe", "simulated unplugging")
        try:
            c.set_available(False)  # EVSE stop: PWM off, contactor open, then state F
            t0 = ticks_ms()
            while c.energized and ticks_diff(ticks_ms(), t0) < _SU_OPEN_MS:
                await asleep_ms(100)
            await asleep_ms(_SU_MS)
        finally:
            st = cp.station
            c.set_available(True if st is None else st.available(1))
            self.unplugging = False

    async def _reboot(self):
        await asleep_ms(_RST_DELAY_MS)
        log.info("goe", "reboot asked through the API")
        st = self.cp.station
        if st is None:
            self.cp.reboot()
        else:
            st.reset("Soft")  # False when a reset is under way already


def provider(cp):
    """Loaded only while its keys are asked for (firmware/app.py LAZY_API)."""
    return GoeKeys(cp)
