"""The charge point's start (firmware/app.py), lent for it (compat.lend): loaded while the
launcher reads the configuration and while the app starts its tasks, then let go. A
charger from .mpy files does not hold this bytecode while it runs.

    cfg = load_config(data_dir)          the launcher: settings and a first-time setup file
    info(fw_version, serial, board)      what BootNotification and the API report
    load_ops()                           the messages of the core and the dormant features
    hk = await start(cp, host, port, sim, page)   the tasks, the local API, the features
"""

import asyncio

import log
from compat import const, ticks_ms

VENDOR = "OpenWallbox"
SETUP_FILE = "setup.json"
_GC_EVERY = const(4096)


def load_config(data_dir):
    """The persisted configuration, with a pending first-time setup file merged in."""
    import gc

    import compat

    compat.scratch()  # first thing at boot, while the heap is whole (see lib/compat.py)
    if hasattr(gc, "threshold"):  # MicroPython
        # Collect after every 4 KiB allocated, not only when an allocation fails: garbage
        # goes while it is young, so what survives a request is not stranded across the
        # whole heap, splitting it into pieces too small for the next large block (with
        # the central system's peaks a trial needed 256 KiB without a threshold, 160 with
        # 16 KiB; on the 32-bit frozen build the 5.6 KB certificate frames parsed at 88 KiB
        # with 4 KiB, not below 96 with 16 KiB). A collection marks the ~60 KiB that live and
        # sweeps the whole heap: on a large one an eighth of what is free at boot (a
        # sixteenth made the simulator's round trips 40 % slower on 512 KiB).
        gc.threshold(max(_GC_EVERY, gc.mem_free() // 8))
    import fs
    from firmware.config import Config

    fs.cleanup(data_dir)  # temporary files a power cut left behind
    cfg = Config(data_dir)
    path = data_dir.rstrip("/") + "/" + SETUP_FILE
    setup = fs.read_json(path, None)
    if setup is not None:
        # Written by `make setup` (tools/setup_board.py): WiFi, OCPP URL, API password.
        errors = cfg.update(setup, "api") if isinstance(setup, dict) else {"setup": "not a dict"}
        cfg.flush(force=True)
        import os

        if errors:
            # Kept aside (not retried every boot) so the user can see what was wrong.
            log.error("app", "setup file rejected, nothing applied:", errors)
            os.rename(path, path + ".rejected")
        else:
            log.info("app", "first-time setup applied:", ",".join(sorted(setup)))
            os.remove(path)
    return cfg


def info(fw_version, serial, board):
    kw = board.get("model_kw", 11)
    return {
        "vendor": VENDOR,
        "model": "OWB-%d" % kw,
        "serial": serial,
        "fw": fw_version,
        "meter_type": board.get("meter") or "",
    }


def load_ops():
    """Offer the core's own messages and the dormant features'; each other feature offers
    its own in attach(cp)."""
    from firmware import app
    from firmware.ocpp import router

    router.offer(app.OPS)
    for row in app.DORMANT:
        router.offer(row[5])


def attach(cp):
    """Attach the features (in a running event loop: they start tasks), the dormant ones
    only where they have work (_wanted); cp.api is set."""
    from firmware import app
    from firmware.evse import faultlog
    from firmware.ocpp import router

    for name in app.FEATURES:
        app._start(cp, app.feature(name).attach(cp))
    # The fault counters on flash, added to the charger's: the module goes until a count
    # changes (_faults).
    faultlog.attach(cp)
    router.forget("firmware.evse.faultlog")
    cp.charger.subscribe(cp._card_read)
    for row in app.LAZY_API:
        lazy = app._Lazy(cp, row)
        cp.api.providers.append(lazy)
        # One due at boot (stored cards: they authorize standalone and book energy) is loaded
        # now; short of memory for it, the housekeeping's sweep tries again every second.
        lazy.sweep(ticks_ms(), 0)
    # Short of memory they go. (Made by app: a function made here would keep this module.)
    router.SHED["api"] = app._shed_lazy(cp)
    for row in app.DORMANT:
        if row[2]:
            cp.api.providers.append(app._Asleep(cp, row))
        if app._wanted(cp, row):
            cp.wake(row[0])
    cp.config.subscribe(cp._wake_on)


async def start(cp, api_host, api_port, sim=None, page=None):
    """The charger's loops, the housekeeping (returned: app.main watches it), the local API
    and the features."""
    import logfile
    from firmware import app, clock
    from firmware.api import Api
    from firmware.evse.api_keys import ChargerKeys
    from firmware.ocpp.session import SessionKeys

    keys = (SessionKeys(cp.session), ChargerKeys(cp.charger, version=cp.info["fw"]))
    api = Api(cp.config, providers=keys, sim=sim, page=page)
    cp.api = api  # features add their status keys with cp.status_keys(provider)
    # The flash log of warnings and errors (uploaded by GetDiagnostics).
    logfile.attach(cp.data_dir, clock.now_or_0)
    # Keep references to every task (STYLE.md: micropython-async).
    # The charger's safety loop catches its own faults (safe_tick); the others are started
    # again when they end (_revive, in the housekeeping; the housekeeping itself in app.main).
    cp.tasks = [asyncio.create_task(cp.charger.run())]
    app._start(cp, [cp.keep("meter", cp.charger.run_meter, 0),
                    cp.keep("session", cp.session.run)])  # watched: beats from its loops
    hk = asyncio.create_task(app._housekeeping(cp))
    cp.tasks.append(hk)
    attach(cp)
    await api.start(api_host, api_port)
    log.info("app", "local API on %s:%d" % (api_host, api_port))
    return hk
