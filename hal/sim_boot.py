"""The simulator's start for hal/sim.py main(), lent for it (compat.lend): what it reads
once (WB_* environment variables, the stored configuration) is not held while the firmware
runs. Never deployed (host_files)."""

import os

import compat
from hal.sim import SimHal
from version import VERSION


def setup(data):
    """(hal, info, config, where the API and its page are) for app.run: the simulated
    hardware (a real meter on a serial port with WB_METER), the configuration of `data` with
    WB_CSMS as the OCPP server."""
    boot = compat.lend("firmware.app_boot")
    meter = os.getenv("WB_METER")
    hal = SimHal(register=data + "/sim_meter.json")
    if meter:
        from hal.serial_unix import open_meter

        hal.meter = open_meter(
            meter, os.getenv("WB_METER_TYPE") or "sdm630", int(os.getenv("WB_METER_ADDR") or 1)
        )
    cfg = boot.load_config(data)
    csms = os.getenv("WB_CSMS")
    if csms:
        errors = cfg.update({"ocppu": csms, "ocppe": True}, "api")
        if errors:
            print("E sim: WB_CSMS rejected:", errors)
    info = boot.info(VERSION, serial="SIM-0001", board=hal.board)
    where = {
        "api_host": os.getenv("WB_API_HOST") or "127.0.0.1",
        "api_port": int(os.getenv("WB_API_PORT") or 8080),
        "page": os.getenv("WB_PAGE") or "build/web/index.html.gz",
    }
    return hal, info, cfg, where
