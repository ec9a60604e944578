"""Wiring: builds the charge point from the HAL, the configuration and the data directory,
and runs its tasks (charger control loop, meter polling, OCPP session, local HTTP API).

Everything the OCPP message modules need hangs off the ChargePoint object `cp` they get:
`cp.config`, `cp.charger`, `cp.session`, `cp.hal`, `cp.data_dir`, `cp.info`, `cp.reboot()`.
"""

import asyncio

import log
from compat import asleep_ms, const, ticks_diff, ticks_ms, uptime_ms

_RESTART_MS = 2000
# Liveness (see _watch): a watched task that has not beaten for this long is restarted. The
# longest legitimate silence is a queue of CALLs on the one RPC lock, each up to the 30 s call
# timeout; nothing the tasks do takes minutes.
DEADLINE_MS = const(300000)
_AGAIN_MS = const(3600000)  # silent again within this of its restart: the board resets
_CANCEL_TRIES = const(20)  # x 100 ms for a cancelled task to end


# Features, one module each (MicroOcpp's Model/<Feature>). Each owns:
#   OPS      the firmware/ops modules of its messages (importing one registers its handlers);
#   KEYS     its configuration-key rows (firmware/keys.py has the format and the core rows);
#   attach(cp) -> what to run as tasks: a coroutine (run once), or make() of a loop that
#                 must run for ever (started again when it ends or fails: app._revive);
#                 it sets only its own attribute of `cp`.
# Features talk through the attributes and event hubs that ChargePoint declares, all present
# before any attach, so the order of this list does not matter.
FEATURES = (
    "firmware.authorization.service",  # cp.auth while used: Authorize, cache, local list
    #                                    (ClearCache, SendLocalList, GetLocalListVersion)
    "firmware.transactions.service",  # cp.txn: Start/Stop, RemoteStart/Stop, MeterValues
    "firmware.station",  # cp.station: availability, StatusNotification, Reset, Unlock,
    #                      DataTransfer
    "firmware.smart_charging.service",  # cp.limits (cp.smart while there are profiles)
    "firmware.remote_trigger",  # TriggerMessage
    "firmware.security.service",  # cp.security: security events and log, certificates
)
# Local API keys whose module is loaded only while they are asked for (_Lazy): the module,
# its keys (the same as its provider(cp) owns), and the file of the data directory whose
# presence loads it at boot too (None: none). A charger nobody reads them from pays
# no heap for them; one polled by a go-e client keeps the module loaded.
LAZY_API = (
    # go-e API v2 keys of the whole charger
    ("firmware.goe", ("sse", "typ", "oem", "modelStatus", "pha", "pnp", "lck", "cbl", "su",
                      "rst"), None),
    # cp.cards: RFID cards by name and their energy (go-e cards, trx, lrn, del); loaded from
    # boot too when cards are stored, and kept while one is (Cards.idle)
    ("firmware.cards", ("cards", "trx", "lrn", "del"), "cards.json"),
)
# Dormant features: attached at boot only when they have work, else on their first use
# (cp.wake), so a charger that never uses them does not pay their heap (5.6 KiB together,
# 32-bit frozen: module, objects and loop). A row: the module, the attribute of `cp` it sets,
# its local API status keys (null while it sleeps; a write wakes it), the configuration key
# that wakes it once true, the file of the data directory whose presence wakes it at boot,
# and its OCPP messages (offered at boot; their handlers wake it). Its key rows are in
# firmware/keys.py, so reading or listing a key does not load it.
_FW = "firmware.firmware_update.service"
DORMANT = (
    # cp.reservation: ReserveNow, CancelReservation (awake while a reservation is on flash)
    ("firmware.reservation", "reservation", ("rsv",), None, "reservation.json",
     ("reserve_now", "cancel_reservation")),
    # cp.firmware: UpdateFirmware (awake while an update is under way, a slot is on trial or
    # was rolled back, or the board has OTA partitions: see _wanted)
    (_FW, "firmware", (), None, "fwupdate.json", ("update_firmware", "signed_update_firmware")),
    # ocpprl: log lines to the central system (DataTransfer)
    ("firmware.remote_log", None, (), "ocpprl", None, ()),
    # cp.solar: charging on the PV surplus (go-e ids, fup)
    ("firmware.solar", "solar", ("ids", "pgrid", "ppv", "pakku", "inva"), "fup", None, ()),
)
# Messages of the core itself (the session owns BootNotification and Heartbeat), and
# GetDiagnostics, which needs no feature (its upload is cp.diagnostics).
OPS = ("change_configuration", "get_configuration", "get_diagnostics")


def feature(name):
    return __import__(name, None, None, ("attach",))


def _dormant(name):
    """The DORMANT row of the module `name`."""
    for row in DORMANT:
        if row[0] == name:
            return row
    raise ValueError(name)


def _saved(cp, file):
    import fs

    return fs.saved(cp.data_dir.rstrip("/") + "/" + file)


def _wanted(cp, row):
    """Whether the dormant feature of `row` has work at boot."""
    key, file = row[3], row[4]
    if row[0] == _FW and getattr(cp.hal, "ota", None) is not None:
        return True  # (first: checked every second while it is awake, see cp.rest)
    if key is not None and cp.config.get(key):
        return True
    if file is not None and _saved(cp, file):
        return True
    if row[0] == _FW:
        # Its on_accepted confirms a slot on trial, reports a rollback and keeps an OTA
        # image from being rolled back at the next reset: it must be there for those.
        import sys

        had = "slots" in sys.modules  # the awake firmware update imported it: it stays
        import slots

        d = slots.read(cp.data_dir)
        if not had:  # asked every second while that feature is awake: never imported anew
            from firmware.ocpp import router

            router.forget("slots")
        return not d.get("ok") or "failed" in d
    return False


class _Lazy:
    """The local API keys of a module loaded only while they are asked for: its provider(cp)
    is made at the first read or write of one of them, and let go with its module after
    router.IDLE_MS without one, or at the app's next second on a tight heap, as the router
    does with message modules (sweep()); never while the provider says it is busy (idle())."""

    def __init__(self, cp, row):
        self.cp = cp
        self.row = row
        self.p = None
        self.used = 0
        # To be loaded now (its file is on flash), not on the first read: tried each sweep.
        self.due = row[2] is not None and _saved(cp, row[2])

    def _get(self):
        if self.p is None:
            self.p = __import__(self.row[0], None, None, ("provider",)).provider(self.cp)
        self.used = ticks_ms()
        return self.p

    def owns(self, key):
        return key in self.row[1]

    def status(self, out):
        self._get().status(out)

    def check(self, key, value):
        return self._get().check(key, value)

    def apply(self, changes):
        return self._get().apply(changes)

    def sweep(self, now, idle_ms):
        from firmware.ocpp import router

        if self.due:
            try:
                self._get()
                self.due = False
            except MemoryError:
                log.memory("app", "load " + self.row[0])
            return
        p = self.p
        if p is not None and ticks_diff(now, self.used) >= idle_ms and p.idle():
            self.p = None
            close = getattr(p, "close", None)
            if close is not None:  # it listens to events, or has a task
                close()
            router.forget(self.row[0])


class _Asleep:
    """The local API status keys of a dormant feature: null while it sleeps; a write wakes
    it. Once awake, its own provider (added by its attach) owns the keys."""

    def __init__(self, cp, row):
        self.cp = cp
        self.row = row

    def _feature(self):
        self.cp.wake(self.row[0])
        return getattr(self.cp, self.row[1])

    def owns(self, key):
        return getattr(self.cp, self.row[1]) is None and key in self.row[2]

    def status(self, out):
        for k in self.row[2]:
            out[k] = None

    def check(self, key, value):
        if key not in _WRITABLE:
            return "read-only"  # without waking it
        return self._feature().check(key, value)

    def apply(self, changes):
        return self._feature().apply(changes)


_WRITABLE = ("ids",)  # the dormant features' API keys that can be written (solar's ids)


class ChargePoint:
    """Everything a feature or a message module reaches is declared here, so that no
    feature depends on another one having been attached first."""

    def __init__(self, hal, data_dir, info, reboot, config):
        from firmware.evse.charger import Charger
        from firmware.ocpp.session import Session

        self.hal = hal
        self.data_dir = data_dir.rstrip("/") or "/"
        self.info = info
        self.config = config
        self._reboot = reboot
        # What the hardware can do, as the read-only OCPP keys report it.
        config.set_fact("ConnectorSwitch3to1PhaseSupported",
                        getattr(hal, "phase_switch", None) is not None)
        self.charger = Charger(hal, config)
        self.charger.auth_required = config.get("acs") == 1
        self.session = Session(self)
        self._declare()

    def _declare(self):
        self.api = None  # firmware.api.Api, once the app made it
        # Features (None until attached, or when a build leaves one out).
        # firmware.authorization.auth.Auth, only while it is used:
        # firmware.authorization.service.auth(cp) loads it
        self.auth = None
        self.txn = None  # firmware.transactions.service.Txn
        self.station = None  # firmware.station.Station
        # firmware.smart_charging.profiles.SmartCharging, only while there are profiles:
        # firmware.smart_charging.service.engine(cp) loads it
        self.smart = None
        self.limits = None  # firmware.smart_charging.service.Limits
        self.faultlog = None  # firmware.evse.faultlog's state, [written, earliest next, writes]
        self.reservation = None  # firmware.reservation.Reservation
        # firmware.security.service.Security; its log, queue and delivery task only while an
        # event waits to be sent (firmware/security/events.py, loaded by Security.event)
        self.security = None
        self.firmware = None  # firmware.firmware_update.service.Firmware
        # The GetDiagnostics upload's task while it runs (firmware/firmware_update/
        # diagnostics.py): it needs no feature awake
        self.diagnostics = None
        # firmware.cards.Cards: RFID cards by name (go-e cards, trx), while loaded (LAZY_API)
        self.cards = None
        self.card_last = None  # the last card read, for go-e lrn (kept here: _card_read)
        self.solar = None  # firmware.solar.Solar: follows the PV surplus (go-e ids, fup)
        self.awake = []  # the dormant features (DORMANT) attached now
        self._owned = {}  # name of an awake dormant feature -> what _start started for it
        self.tasks = []
        self.makers = {}  # task -> make() of a feature's loop, started again when it ends
        # Liveness: name -> ticks_ms of the watched task's last beat (cp.beat), and
        # name -> [task, make, deadline_ms, ticks of its last restart or None] (cp.keep).
        self.beats = {}
        self.watched = {}
        # Transaction events, fn(event, tx) with event "started" | "stopped": the
        # transaction service is the only one that emits them.
        self._tx_subs = []

    @property
    def tx(self):
        """Connector 1's running transaction (asked of the transaction service), or None."""
        txn = self.txn
        return None if txn is None else txn.active(1)

    def on_tx(self, fn):
        self._tx_subs.append(fn)

    def off_tx(self, fn):
        if fn in self._tx_subs:
            self._tx_subs.remove(fn)

    def _card_read(self, event, data):
        # Charger subscriber (in its tick): whether or not firmware.cards is loaded.
        if event == "card":
            self.card_last = data

    def tx_event(self, event, tx):
        for fn in self._tx_subs:
            try:
                fn(event, tx)
            except Exception as e:  # noqa: BLE001 - a broken listener must not stop us
                log.error("app", "tx listener", event, repr(e))

    def beat(self, name):
        """A watched task is alive (it calls this at least once per DEADLINE_MS)."""
        self.beats[name] = ticks_ms()

    def keep(self, name, make, deadline_ms=DEADLINE_MS):
        """make() of a loop that must run for ever, as _start runs it (a feature's attach
        returns it): started again when it ends or fails (_revive) and, with a deadline,
        watched: silent (no beat) past it, it is cancelled and restarted; silent again, the
        board resets (app._watch). Returns make. No wrapper coroutine per loop: the
        housekeeping restarts them (a wrapper was 112 bytes each, 32-bit)."""
        if deadline_ms:
            self.watched[name] = [None, make, deadline_ms, None]
            self.beat(name)
        return make

    def wake(self, name):
        """Attach the dormant feature `name` (a module of DORMANT) now, on its first use, and
        start its tasks; nothing when it is attached already. An attach that fails (a
        MemoryError importing it) raises, and the next use tries again."""
        row = _dormant(name)
        if name in self.awake or (row[1] is not None and getattr(self, row[1]) is not None):
            return
        # Logged first: once attached, remote logging would send this line as its first.
        log.info("app", "attaching", name)
        mod = feature(name)
        items = mod.attach(self)
        n = len(self.tasks)
        try:
            self._owned[name] = _start(self, items)
        except BaseException:  # a MemoryError making its tasks: undone, the next use retries
            for t in self.tasks[n:]:
                self.makers.pop(t, None)
                t.cancel()
            del self.tasks[n:]
            detach = getattr(mod, "detach", None)
            if detach is None or not detach(self):
                if row[1] is not None:
                    setattr(self, row[1], None)
            raise
        self.awake.append(name)

    def rest_all(self):
        """cp.rest of every awake dormant feature; never raises (the housekeeping and the
        RPC call it on their way)."""
        for name in list(self.awake):
            try:
                self.rest(name)
            except Exception as e:  # noqa: BLE001 - a failed rest: it stays awake
                log.failed("app", "rest " + name, e)

    def rest(self, name):
        """Detach an awake dormant feature again once it has no work left: its module's
        detach(cp) agrees (and undoes its attach) and it would not be attached at boot
        (_wanted). Its tasks are cancelled and its module let go, so the peak that woke it
        (an UpdateFirmware, a ReserveNow) holds no heap after it; the next use attaches it
        anew. The housekeeping asks every second. True if it went."""
        import sys

        from firmware.ocpp import router

        mod = sys.modules.get(name)
        detach = getattr(mod, "detach", None)
        if detach is None or name not in self.awake:
            return False
        rpc = getattr(self.session, "rpc", None)
        if (rpc is not None and rpc.answering) or router.in_hand():
            # A CALL in hand may have woken it and still need it (its after-handler).
            return False
        if _wanted(self, _dormant(name)) or not detach(self):
            return False
        started = self._owned.pop(name, [])
        for t in list(self.makers):
            if self.makers[t] in started:  # its loops (a restarted one is another task)
                del self.makers[t]
                started.append(t)
        for t in started:
            if not callable(t):
                t.cancel()
                if t in self.tasks:
                    self.tasks.remove(t)
        self.awake.remove(name)
        router.forget(name)
        log.info("app", "detached", name)
        return True

    def _wake_on(self, keys):
        # Config subscriber: a dormant feature's key turned true.
        for row in DORMANT:
            if row[3] in keys and self.config.get(row[3]):
                self.wake(row[0])

    def status_keys(self, provider):
        """A feature adds its local API status keys (read by firmware.api)."""
        if self.api is not None:
            self.api.providers.append(provider)

    def shutdown(self):
        """A proper shutdown or reboot: settings kept in RAM (config LAZY keys) reach flash."""
        self.config.flush(force=True)

    def reboot(self):
        log.info("app", "rebooting")
        if self.security is not None:
            self.security.event("ResetOrReboot")
        self.shutdown()
        self._reboot()


def _start(cp, items):
    """The tasks of a feature's attach(cp): a coroutine runs once; make() of a loop that must
    run for ever is started again when it ends (_revive). A reference to each is kept.
    Returns the tasks of the coroutines and the make()s."""
    out = []
    for c in items:
        if callable(c):
            t = asyncio.create_task(c())
            cp.makers[t] = c
            _watching(cp, c, t)
            out.append(c)
        else:
            t = asyncio.create_task(c)
            out.append(t)
        cp.tasks.append(t)
    return out


def _exception_handler(loop, context):
    # A task died with an exception nobody awaited: counted and logged, the charger runs
    # on (a feature's loop is started again by _revive). It runs inside the event loop:
    # anything it raised would end the firmware, so not even a MemoryError gets out, but
    # that of a heap locked for good, which run() ends as at a power cut.
    try:
        log.failed("app", "task failed", context.get("exception"))
    except MemoryError:
        log.oom += 1
        if heap_stuck():  # SIGINT inside a collection (heap_stuck): run() ends it
            raise
    except Exception:  # noqa: BLE001, S110 - nothing can be logged; the loop must run on
        pass


def _watching(cp, make, t):
    """The name of the watched loop `make` (cp.keep), now running as task `t`, or None."""
    for name in cp.watched:
        w = cp.watched[name]
        if w[1] is make:
            w[0] = t
            cp.beat(name)  # its deadline counts from its start
            return name
    return None


def _revive(cp):
    """A loop that ended (a MemoryError on a full heap, a bug: _exception_handler logged
    it) starts again after a pause, in a new task; one per second at most: the OCPP
    session, the meter, the transactions and every feature's loop."""
    for t in cp.makers:
        if t.done():
            make = cp.makers[t]
            new = asyncio.create_task(_after_pause(make))
            _replace(cp, t, new)
            del cp.makers[t]
            cp.makers[new] = make
            name = _watching(cp, make, new) or getattr(make, "__name__", "task")
            log.error("app", name, "ended; restarting")
            return  # the dict changed: the next one in a second


async def _after_pause(make):
    import gc

    gc.collect()  # what the failed loop left goes before it starts again
    await asleep_ms(_RESTART_MS)
    await make()


def _replace(cp, old, new):
    for i in range(len(cp.tasks)):  # keep a reference to every task (STYLE.md)
        if cp.tasks[i] is old:
            cp.tasks[i] = new
            return
    cp.tasks.append(new)


async def _stop(task):
    """Cancel `task` until it has ended (a cancel can be swallowed by a wait_for racing it);
    False when it does not end within ~2 s."""
    for _ in range(_CANCEL_TRIES):
        if task.done():
            return True
        task.cancel()
        await asleep_ms(100)
    return task.done()


def _reset(cp, why):
    """Reset the board through its normal path: the running transaction is stopped (reason
    Reboot, journaled like any stop), then cp.reboot()."""
    log.error("app", why, "- resetting the board")
    try:
        if cp.txn is not None and cp.txn.active(1) is not None:
            cp.txn.stop(1, "Reboot")
    except Exception as e:  # noqa: BLE001 - the reset must happen anyway
        log.error("app", "stop before the reset:", repr(e))
    for name in cp.watched:  # a reboot that returns (a test) is not asked for every second
        cp.watched[name][3] = None
        cp.beat(name)
    cp.reboot()


async def _watch(cp, now):
    """Liveness: a watched task silent past its deadline (a hang: awaiting a lock, an event
    or a stuck stream that never comes) is cancelled and started again; when it cannot be
    cancelled, or is silent again within an hour of that restart, the board resets (_reset).
    The watchdog stays fed by the charger's safety tick only: a hang here must not stop
    the charger's protection, and the reset goes through the normal path instead."""
    for name in list(cp.watched):
        w = cp.watched[name]
        last = cp.beats.get(name)
        if w[0] is None or last is None or ticks_diff(now, last) <= w[2]:
            continue  # not started (yet), or within its deadline
        log.error("app", name, "silent for %d s" % (ticks_diff(now, last) // 1000))
        if w[3] is not None and ticks_diff(now, w[3]) < _AGAIN_MS:
            _reset(cp, name + " silent again after its restart")
            return
        old = w[0]
        if not await _stop(old):
            _reset(cp, name + " cannot be cancelled")
            return
        log.error("app", name, "restarted")
        w[3] = now
        cp.beats[name] = now
        t = asyncio.create_task(w[1]())
        w[0] = t
        cp.makers.pop(old, None)
        cp.makers[t] = w[1]  # and started again by _revive if it ends
        _replace(cp, old, t)


def _shed_lazy(cp):
    return lambda: _lazy_sweep(cp, ticks_ms(), 0)


def _lazy_sweep(cp, now, idle_ms):
    # idle_ms: as router.sweep chose it (IDLE_MS, or 0 on a tight heap).
    if cp.api is not None:
        for p in cp.api.providers:
            if isinstance(p, _Lazy):
                p.sweep(now, idle_ms)


def _faults(cp, now):
    # The charger's fault counters to flash (firmware/evse/faultlog.py): its module is
    # loaded only when a count changed since the last write, the contactor is open and the
    # minute between writes is over (cp.faultlog: [written, earliest next, writes]).
    st = cp.faultlog
    if st is None:
        return
    if st[1] is not None and ticks_diff(now, st[1]) >= 0:
        st[1] = None  # the minute is over: cleared at once (no ticks wrap days later)
    ch = cp.charger
    if st[1] is not None or ch.counters == st[0] or ch.energized:
        return
    from firmware.ocpp import router

    try:
        from firmware.evse import faultlog

        faultlog.save(cp)
    except Exception as e:  # a MemoryError importing it: tried again in a second
        log.failed("app", "fault counters not saved", e)
    finally:
        router.forget("firmware.evse.faultlog")


async def _housekeeping(cp):
    from firmware.authorization import service as authz
    from firmware.ocpp import router

    # The watchdog is fed by the charger's safety tick only (a dead tick must reset the
    # board), so nothing here may feed it.
    while True:
        uptime_ms()  # keeps the unwrapped uptime exact across ticks_ms wraps
        _faults(cp, ticks_ms())  # first: nothing below that may fail must keep it from flash
        await _watch(cp, ticks_ms())
        cp.config.flush()  # LAZY settings (amp, frc, ...) at most once per 5 minutes
        # Message modules of requests not seen for a minute (or at once on a tight heap),
        # and the lazy API keys' modules and the authorization (cp.auth) by the same rule.
        idle_ms = router.sweep(ticks_ms())
        cp.rest_all()  # dormant features whose work is done
        _lazy_sweep(cp, ticks_ms(), idle_ms)
        authz.sweep(cp, ticks_ms(), idle_ms)
        _revive(cp)
        await asleep_ms(1000)


async def main(cp, api_host, api_port, sim=None, page=None):
    from compat import lend

    asyncio.get_event_loop().set_exception_handler(_exception_handler)
    # The tasks, the local API and the features (firmware/app_boot.py, lent for it).
    hk = await lend("firmware.app_boot").start(cp, api_host, api_port, sim, page)
    while True:
        await asleep_ms(_RESTART_MS)
        hk = _supervise(cp, hk)


def _supervise(cp, hk):
    """The housekeeping task: `hk`, or a new one when hk has ended (a failure, which
    _exception_handler logged). Never raises a MemoryError: when main() ends, the firmware
    does; with no room now, hk stays and the next round tries again."""
    if not hk.done():
        return hk
    try:
        log.error("app", "housekeeping ended; restarting")
        new = asyncio.create_task(_housekeeping(cp))
    except MemoryError:
        return hk
    try:
        _replace(cp, hk, new)
    except MemoryError:
        pass  # not in cp.tasks, which it replaces in place; held by main() all the same
    return new


def heap_stuck():
    """The unix port raises SIGINT's KeyboardInterrupt from its signal handler, so it can land
    inside a garbage collection: that collection's flag then stays set, every allocation
    fails ("MemoryError: memory allocation failed, heap is locked") and nothing in Python
    can clear it (micropython.heap_unlock() counts in steps above that flag), nor may another
    collection run on the marks it left half done. True in that state; False for a heap that
    is merely full, whose error names the size it wanted. (A board's Ctrl-C is raised
    between bytecodes, never inside a collection.) On a locked heap the probe's error is the
    port's one emergency exception object, the same a caller may be handling: re-raised,
    its traceback names this function."""
    try:
        bytearray(16)
    except MemoryError as e:
        a = e.args  # its message, made without allocating (nothing here may allocate)
        return bool(a) and "locked" in a[0]
    return False


def run(hal, data_dir, info, reboot, config=None, api_host="127.0.0.1", api_port=80, sim=None,
        page=None):
    """`page`: path of the gzipped web page on flash, served at GET / (firmware.api)."""
    import compat

    # "firmware/app.py" when frozen into the image, a file path when loaded from files
    # (tests_host/e2e.py reads this line).
    print("I main: firmware", info["fw"], "from", __file__)
    compat.scratch()  # (load_config took it already, when it ran)
    boot = compat.lend("firmware.app_boot")
    if config is None:
        config = boot.load_config(data_dir)
    boot.load_ops()
    del boot  # this frame lasts as long as the firmware runs
    cp = ChargePoint(hal, data_dir, info, reboot, config)
    log.info("app", "%s %s firmware %s" % (info["vendor"], info["model"], info["fw"]))
    stuck = False
    try:
        asyncio.run(main(cp, api_host, api_port, sim, page))
    except KeyboardInterrupt:
        stuck = heap_stuck()
        if not stuck:
            log.info("app", "shutdown")
    except MemoryError:
        # The same interrupt, landed in a collection, came out of the code that unwound from
        # it and allocated (a `finally`) as the locked heap's error.
        stuck = heap_stuck()
        if not stuck:
            raise
    finally:
        # SIGINT in the simulator (KeyboardInterrupt), a reboot (SystemExit on the unix port).
        if stuck:
            # Nothing may allocate: a constant line, and the exit of a power cut (settings kept
            # in RAM, the LAZY keys of the last 5 minutes at most, are not written).
            print("W app: shutdown in a collection: as at a power cut")
        else:
            cp.shutdown()
