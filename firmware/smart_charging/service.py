"""Smart charging service: the charging profiles (firmware/smart_charging/profiles.py) applied to
the charger.

The engine (`cp.smart`, a SmartCharging with its profiles in <data>/profiles.json) is loaded
only while there are profiles: a charger without any (the usual case) holds neither the
module nor the instance. attach(cp) registers the SmartCharging messages
(SetChargingProfile, ClearChargingProfile, GetCompositeSchedule) and returns the limit
loop, whose first step loads the engine when profiles.json (or the `.tmp` of a write cut
short) is on flash, restoring its profiles (each step tries again while they cannot be read:
Limits.owed). Whoever needs the engine asks engine(cp), which loads it on
first use (the three messages, a RemoteStartTransaction's chargingProfile); the loop's
next step lets it go again once it holds no profile (cp.smart None, the module out of
sys.modules) and no CALL is in hand.

The loop recomputes `smart.limit_at(now, 1, tx=cp.tx)` whenever the limit may change: a
profile stored or cleared (smart.on_change), a transaction starting or stopping
(cp.txn.subscribe, when the transaction service offers it), the clock reaching
`next_change`; otherwise once a second, so that the measured voltage (W limits) and the
installation maximum follow. Without an engine there is no limit (none, three phases). The
result is the charger's "smart" limit; the charger pauses the car below 6 A and drives the
pilot within its next 20 ms tick.

Timing: clock.now() counts whole seconds, so during the last second before a boundary the
loop looks every 100 ms; a period boundary reaches the pilot within about 0.15 s.

Decisions where the spec is silent:
- A transaction that ends ("stopped" from cp.txn, or cp.tx back to None) ends its
  TxProfiles (§3.13.2); so does a reboot (transactions do not survive one: PowerLoss), at
  the first step that has the engine (without profiles.json there is none to end).
- Limits are applied rounded down to 0.1 A, as GetCompositeSchedule reports them, so the
  voltage's jitter does not move a W limit by hundredths.
- numberPhases: on a board with a phase switch and ConnectorSwitch3to1PhaseSupported true,
  a profile asking for 1 phase is the charger's phase mode while psm is 0 (auto); psm 1 or 2
  (the user's choice) wins. The charger does the switch by the safe sequence (contactor
  open, pilot disconnect, REFERENCE.md §2 rule 11). Nothing is written to flash for it: the
  choice follows the profiles after a reboot too. Otherwise numberPhases only counts in the
  W to A conversion.

Configuration keys:
ChargeProfileMaxStackLevel: Highest stackLevel of a charging profile.
ChargingScheduleAllowedChargingRateUnit: Units a charging schedule may use.
ChargingScheduleMaxPeriods: Maximum periods in one charging schedule.
ConnectorSwitch3to1PhaseSupported: Switching from three to one phase during a transaction.
MaxChargingProfilesInstalled: Maximum charging profiles installed at once.
"""

import asyncio

import log
from compat import const, nap
from firmware import clock
from firmware.evse.charger import NRG_U

# This feature's configuration keys (row format: firmware/keys.py TABLE); their meanings
# are the "Configuration keys" lines of the module docstring (the README table).
_OR = const(9)  # OCPP | RO
KEYS = (
    ("ChargeProfileMaxStackLevel", "i", _OR, 8, None, None),
    ("ChargingScheduleAllowedChargingRateUnit", "l", _OR, "Current,Power", "RATE_UNITS", 2),
    ("ChargingScheduleMaxPeriods", "i", _OR, 24, None, None),
    ("ConnectorSwitch3to1PhaseSupported", "b", _OR, False, None, None),
    ("MaxChargingProfilesInstalled", "i", _OR, 8, None, None),
)

_PERIOD_MS = const(1000)  # look at least this often
_FINE_MS = const(100)  # look this often during the last second before a boundary
_CONNECTOR = const(1)
SOURCE = "smart"  # the charger's name for this limit

_UNSET = object()
OPS = ("set_charging_profile", "clear_charging_profile", "get_composite_schedule")
ENGINE = "firmware.smart_charging.profiles"  # loaded while there are profiles (engine)
_FILE = "profiles.json"  # the engine's file in the data directory (profiles.FileStore)


def _floor_tenth(x):
    # x rounded down to 0.1: profiles.floor_tenth, here so the loop needs no engine.
    return int(x * 10 + 1e-6) / 10


class Limits:
    def __init__(self, cp, now=clock.now):
        self.cp = cp
        self._now = now
        self._wake = asyncio.Event()
        self._dirty = True  # next_change must be computed again
        self._next = None
        self._tx = _UNSET  # the first step ends the TxProfiles of a transaction a reboot ended
        self.amps = -1  # last limit given to the charger (-1: none yet)
        self.phases = None
        # Profiles on flash not loaded yet (no room, a file not readable now): each step
        # tries again, and says so once.
        self.owed = False
        self._owed_said = False
        cp.on_tx(self._on_tx)

    def wake(self):
        """The limit may have changed: look again now."""
        self._dirty = True
        self._wake.set()

    def _on_tx(self, event, tx):
        # fn(event, tx) of cp.txn.subscribe: "started" | "stopped".
        smart = self.cp.smart
        if (event == "stopped" and smart is not None
                and getattr(tx, "connector_id", _CONNECTOR) == _CONNECTOR):
            smart.end_transaction(_CONNECTOR)
        self.wake()

    def _cfg(self, name, default):
        try:
            v = self.cp.config.get(name)
        except Exception:
            return default
        return default if v is None else v

    def step(self, t):
        """Recompute the limit at Unix second t and hand it to the charger. Returns the ms
        until the next look (the caller may come back sooner after wake())."""
        cp = self.cp
        smart = cp.smart
        ch = cp.charger
        tx = cp.tx
        if smart is None and self.owed:
            smart = self._load()
        if self._tx is _UNSET and not self.owed:
            # The first step ends the TxProfiles of a transaction that a reboot ended; later
            # a transaction's end reaches _on_tx ("stopped"), the one path that ends them.
            if tx is None and smart is not None:
                smart.end_transaction(_CONNECTOR)
            self._tx = None
            self._dirty = True
        if smart is not None and self.rest():
            smart = None
        if smart is None:
            amps, phases = None, 3  # what an engine without profiles says
        else:
            self.feed(smart)
            amps, phases = smart.limit_at(t, _CONNECTOR, tx=tx)
        if amps is not None:
            amps = _floor_tenth(amps)  # down to 0.1 A, as the composite says
            if amps == int(amps):
                amps = int(amps)
        if amps != self.amps:
            self.amps = amps
            ch.set_limit(amps, SOURCE)
            log.info("limits", "smart limit", "none" if amps is None else amps, "A")
        self._phase_mode(phases)
        if self._dirty or (self._next is not None and t >= self._next):
            self._dirty = False
            self._next = None if smart is None else smart.next_change(t, _CONNECTOR, tx=tx)
        nxt = self._next
        if nxt is not None and nxt - t <= 1:
            return _FINE_MS
        return _PERIOD_MS

    def rest(self):
        """No profile left: the engine goes (its module too), unless a CALL in hand asked
        for it (engine(cp): it may still use it); engine(cp) loads it again, with what
        profiles.json holds, when it is needed. True if it went. Every step asks, and
        router.shed() short of memory."""
        from firmware.ocpp import router

        cp = self.cp
        smart = cp.smart
        if smart is None or smart.count() or router.in_hand(getattr(smart, "hands", ())):
            return False
        cp.smart = None
        router.forget(ENGINE)
        self._dirty = True
        return True

    def _load(self):
        # The engine with the profiles on flash, or None (and again at the next step).
        try:
            smart = engine(self.cp)
        except (MemoryError, OSError) as e:
            if not self._owed_said:
                self._owed_said = True
                log.error("limits", "profiles not loaded yet:", repr(e))
            return None
        self.owed = self._owed_said = False
        return smart

    def feed(self, smart):
        """The engine's inputs: the installation maximum (ama) and the measured voltage."""
        bmax = self.cp.hal.board["max_current"]
        smart.max_current = float(min(bmax, self._cfg("ama", bmax)))
        self._voltage(smart, self.cp.charger)

    def _voltage(self, smart, ch):
        # Mean of the phase voltages the meter reports (nrg: U L1 L2 L3 first); nominal
        # voltage when the meter is lost or reads nothing plausible.
        if not ch.meter_ok:
            smart.set_voltage(None)
            return
        nrg = ch.nrg
        s = 0.0
        n = 0
        for k in range(3):
            u = nrg[NRG_U + k]
            if u >= 100:
                s += u
                n += 1
        smart.set_voltage(s / n if n else None)

    def _phase_mode(self, phases):
        ch = self.cp.charger
        if getattr(self.cp.hal, "phase_switch", None) is None:
            return
        want = None
        if phases == 1 and self._cfg("ConnectorSwitch3to1PhaseSupported", False):
            want = 1
        solar = self.cp.solar
        if solar is not None and solar.phases == 1:
            want = 1  # the PV surplus controller (firmware/solar.py) asks for one phase
        if want != ch.phases_asked:
            ch.phases_asked = want
            log.info("limits", "phases asked", want or "default")
        self.phases = want

    async def run(self):
        ev = self._wake
        while True:
            try:
                ms = self.step(self._now())
            except Exception as e:  # a bad profile must not stop the loop
                log.error("limits", "step", e)
                ms = _PERIOD_MS
            await nap(ev, ms)
            ev.clear()


def engine(cp):
    """cp.smart, the SmartCharging engine, loaded on first use with the profiles on flash.
    The loop lets it go again once it holds none (Limits.step)."""
    from firmware.ocpp import router

    smart = cp.smart
    if smart is None:
        # An import: tried again after router.shed() when the heap is short (router.roomy).
        mod = router.roomy(__import__, ENGINE, None, None, ("SmartCharging",))
        board = cp.hal.board
        smart = mod.SmartCharging(
            mod.FileStore(cp.data_dir), cp.config, connectors=1, max_current=board["max_current"]
        )
        smart.phases_hw = board.get("phases", 3)
        smart.can_switch = bool(cp.config.get("ConnectorSwitch3to1PhaseSupported"))
        lim = cp.limits
        if lim is not None:
            smart.on_change = lim.wake
            lim.feed(smart)  # as the loop keeps them: a composite asked for at once is right
            lim.wake()  # its profiles may limit
        cp.smart = smart
    smart.hands = router.hands()  # the CALLs in hand that may hold it (Limits.rest)
    return smart


def attach(cp):
    import fs
    from firmware.ocpp import router

    router.offer(OPS)
    cp.limits = Limits(cp)
    router.SHED["smart_charging"] = cp.limits.rest  # short of memory: an empty engine goes
    path = cp.data_dir.rstrip("/") + "/" + _FILE
    if fs.saved(path):
        # Profiles may be there: in force from the first step, which loads them (and tries
        # again at each step while they cannot be read).
        cp.limits.owed = True
    return [cp.limits.run]
