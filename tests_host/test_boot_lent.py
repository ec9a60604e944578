"""The constructors that run once, at boot, lend their bodies (compat.lend): the objects
get every field, and the code that set them is out of sys.modules once they are built, so
it does not hold heap for as long as the charger runs (from .mpy files: 0.9 KB at idle,
64-bit)."""

import sys

from firmware.config import Config
from firmware.evse.charger import ERR_NONE, Charger
from firmware.station import Station
from firmware.transactions.journal import Journal
from hal.sim import SimHal

LENT = ("firmware.config_rules", "firmware.evse.charger_init", "firmware.station_init",
        "firmware.transactions.journal_load", "hal.sim_init")


def _none_loaded():
    return [m for m in LENT if m in sys.modules]


def test_the_boot_constructors_set_every_field_and_let_their_code_go(tmp_path):
    for m in LENT:
        sys.modules.pop(m, None)
    (tmp_path / "sim_meter.json").write_text("1234.0")
    hal = SimHal(board={"max_current": 32}, register=str(tmp_path / "sim_meter.json"))
    assert _none_loaded() == []
    assert hal.board["max_current"] == 32 and hal.board["meter"] == "sim"
    assert hal.e_wh == 1234.0 and hal._saved_wh == 1234 and hal.phase_switch is None
    cfg = Config(str(tmp_path))
    assert _none_loaded() == []
    assert cfg.get("HeartbeatInterval") == cfg._keys["HeartbeatInterval"][3]
    hal.relay.closed = True  # whatever the outputs were, the charger starts them fail safe
    hal.pilot.duty = 500
    ch = Charger(hal, cfg)
    assert _none_loaded() == []
    assert ch.state == "A" and ch.err == ERR_NONE and ch.status == "available"
    assert ch._ps == 0 and ch._duty == 1000  # fail safe from the first instant
    assert hal.relay.closed is False and hal.pilot.duty == 1000
    j = Journal(str(tmp_path))
    assert _none_loaded() == []
    assert j.attempts == 3 and j.retry_interval == 60 and j._head is None
    (tmp_path / "availability.json").write_text('{"v": 1, "op": [true, false]}')
    cp = type("CP", (), {"data_dir": str(tmp_path), "charger": ch, "txn": None})()
    st = Station(cp)
    assert _none_loaded() == []
    assert st.op == [True, False] and st.on == [True, False] and not ch.available
