# main.py: entry point on the board and in the simulator.
#
# On an ESP32: the real drivers (hal/esp32), WiFi from the stored configuration, the
# watchdog, and machine.reset() for a reboot. On the unix port (`make sim`): the simulated
# car and meter (hal/sim), settings from WB_* environment variables, and exit status 3 for
# a reboot so that tools/sim.py starts the firmware again on the same data.
import sys

# An image with the firmware frozen in runs that frozen copy, not source files that happen
# to lie beside this script (MicroPython puts the script's folder first on sys.path).
if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")


def _started(app):
    # "firmware/app.py" when frozen into the image, a file path when loaded from files.
    from version import VERSION

    print("I main: firmware", VERSION, "from", app.__file__)


def _launch(data, run, reboot):
    # Before any other import: the A/B slot of an installed update (lib/slots.py). A slot
    # on trial that fails to start reboots, which counts as one of its failed boots.
    import slots

    slot = slots.boot(data)
    try:
        run(data)
    except Exception as e:
        if slot.get("ok"):
            raise
        print("E main: the slot on trial failed:", repr(e))
        reboot()


def _board(data):
    import machine
    import network

    from firmware import app
    from hal.esp32.board import make_hal

    _started(app)
    hal = make_hal()
    ident = "".join("%02x" % b for b in machine.unique_id())
    cfg = app.load_config(data)
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    ssid = cfg.get("wss")
    if ssid:
        wlan.connect(ssid, cfg.get("wke"))
    from version import VERSION

    info = app.info(VERSION, serial=ident, board=hal.board)
    # page: web/index.html gzipped by tools/webpage.py, copied there by `make deploy`.
    app.run(hal, data, info, reboot=machine.reset, config=cfg, api_host="0.0.0.0", api_port=80,
            page="/lib/web/index.html.gz")


def _sim():
    import os

    data = os.getenv("WB_DATA") or ".sim"
    try:
        os.mkdir(data)
    except OSError:
        pass
    _launch(data, _sim_run, _exit_reboot)


def _exit_reboot():
    sys.exit(3)


def _sim_run(data):
    import os

    from firmware import app
    from hal.sim import SimHal

    _started(app)
    meter = os.getenv("WB_METER")
    hal = SimHal(register=data + "/sim_meter.json")
    if meter:
        from hal.serial_unix import open_meter

        hal.meter = open_meter(
            meter, os.getenv("WB_METER_TYPE") or "sdm630", int(os.getenv("WB_METER_ADDR") or 1)
        )
    cfg = app.load_config(data)
    csms = os.getenv("WB_CSMS")
    if csms:
        errors = cfg.update({"ocppu": csms, "ocppe": True}, "api")
        if errors:
            print("E sim: WB_CSMS rejected:", errors)

    from version import VERSION

    info = app.info(VERSION, serial="SIM-0001", board=hal.board)
    app.run(
        hal,
        data,
        info,
        reboot=_exit_reboot,
        config=cfg,
        api_host=os.getenv("WB_API_HOST") or "127.0.0.1",
        api_port=int(os.getenv("WB_API_PORT") or 8080),
        sim=hal,
        page=os.getenv("WB_PAGE") or "build/web/index.html.gz",
    )


if sys.platform == "esp32":
    import machine

    _launch("/", _board, machine.reset)
else:
    _sim()
