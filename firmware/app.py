"""Wiring: builds the charge point from the HAL, the configuration and the data directory,
and runs its tasks (charger control loop, meter polling, OCPP session, local HTTP API).

Everything the OCPP message modules need hangs off the ChargePoint object `cp` they get:
`cp.config`, `cp.charger`, `cp.session`, `cp.hal`, `cp.data_dir`, `cp.info`, `cp.reboot()`.
"""

import asyncio

import log
from compat import asleep_ms, uptime_ms

VENDOR = "OpenWallbox"
_RESTART_MS = 2000
SETUP_FILE = "setup.json"


def load_config(data_dir):
    """The persisted configuration, with a pending first-time setup file merged in."""
    import fs
    from firmware.config import Config

    fs.cleanup(data_dir)  # temporary files a power cut left behind
    cfg = Config(data_dir)
    path = data_dir.rstrip("/") + "/" + SETUP_FILE
    setup = fs.read_json(path, None)
    if setup is not None:
        # Written by `make setup` (tools/setup_board.py): WiFi, OCPP URL, API password.
        errors = cfg.update(setup, "api") if isinstance(setup, dict) else {"setup": "not a dict"}
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


# One module per OCPP message the central system can send (firmware/ops/<name>.py); importing
# one registers its handlers with firmware.ocpp.router. The services below import the
# message modules of their own feature.
OPS = (
    "change_configuration",
    "get_configuration",
)

# Feature services, attached in this order: each module's attach(cp) wires itself into the
# charge point (cp.txn, cp.station, cp.smart…) and returns the coroutines to run as tasks.
# txn: transactions, authorization, metering, the journal sender (OCPP Core).
# station: availability, StatusNotification, Reset, UnlockConnector, ClearCache, DataTransfer.
# limits: smart charging profiles applied to the charger's offered current.
# faultlog: the charger's fault counters, persisted outside the safety path.
# remote: local authorization list (SendLocalList, GetLocalListVersion) and TriggerMessage.
SERVICES = ("txn", "station", "limits", "faultlog", "remote")


def load_ops():
    for name in OPS:
        __import__("firmware.ops." + name)


class ChargePoint:
    def __init__(self, hal, data_dir, info, reboot, config):
        from firmware.charger import Charger
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
        # Connector 1's running transaction (set by firmware.txn), or None.
        self.tx = None

    def reboot(self):
        log.info("app", "rebooting")
        self._reboot()


def _exception_handler(loop, context):
    # A task died with an exception nobody awaited: log it, keep the charger running.
    log.error("app", "task failed:", context.get("exception", context.get("message")))


async def _keep(name, make):
    """Run make()'s coroutine for ever: if it ends or fails (a MemoryError on a full heap,
    a bug) it is logged and started again after a pause, so the charger is never left
    without its OCPP link or meter until a reboot."""
    import gc

    while True:
        try:
            await make()
            log.error("app", name, "ended; restarting")
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # MemoryError included
            log.error("app", name, "failed, restarting:", repr(e))
        gc.collect()
        await asleep_ms(_RESTART_MS)


async def _housekeeping(cp):
    # The watchdog is fed by the charger's safety tick only (a dead tick must reset the
    # board), so nothing here may feed it.
    while True:
        uptime_ms()  # keeps the unwrapped uptime exact across ticks_ms wraps
        await asleep_ms(1000)


async def main(cp, api_host, api_port, sim=None, page=None):
    from firmware.api import Api
    from firmware.charger_keys import ChargerKeys
    from firmware.ocpp.session import SessionKeys

    asyncio.get_event_loop().set_exception_handler(_exception_handler)
    keys = (SessionKeys(cp.session), ChargerKeys(cp.charger, version=cp.info["fw"]))
    api = Api(cp.config, providers=keys, sim=sim, page=page)
    cp.api = api  # services add their status keys with cp.api.providers.append(...)
    # Keep references to every task (STYLE.md: micropython-async).
    # The charger's safety loop catches its own faults (safe_tick); the others are kept alive.
    coros = [
        cp.charger.run(),
        _keep("meter", cp.charger.run_meter),
        _keep("session", cp.session.run),
        _keep("housekeeping", lambda: _housekeeping(cp)),
    ]
    for name in SERVICES:
        mod = __import__("firmware." + name, None, None, ("attach",))
        coros.extend(mod.attach(cp))
    cp.tasks = [asyncio.create_task(c) for c in coros]
    await api.start(api_host, api_port)
    log.info("app", "local API on %s:%d" % (api_host, api_port))
    while True:
        await asleep_ms(60000)


def run(hal, data_dir, info, reboot, config=None, api_host="127.0.0.1", api_port=80, sim=None,
        page=None):
    """`page`: path of the gzipped web page on flash, served at GET / (firmware.api)."""
    if config is None:
        config = load_config(data_dir)
    load_ops()
    cp = ChargePoint(hal, data_dir, info, reboot, config)
    log.info("app", "%s %s firmware %s" % (info["vendor"], info["model"], info["fw"]))
    asyncio.run(main(cp, api_host, api_port, sim, page))
