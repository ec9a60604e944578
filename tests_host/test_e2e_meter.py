"""End-to-end, `make sim METER=… METER_TYPE=… METER_ADDR=…`: the firmware process on the
MicroPython unix port runs the real Modbus RTU driver (hal/serial_unix.py + lib/modbus.py +
hal/meters.py) against a real pymodbus RTU slave on a pseudo-terminal pair, and the local
API shows the slave's readings in `nrg` and `eto`.

The bus and the slave (an SDM630 at 1, an SDM72D-M V2 at 2, an ABB B23 at 3, each with its
own register map and values) are the ones of test_modbus.py.
"""

import pytest
from e2e import free_port
from test_modbus import EXPECT, slave  # noqa: F401  (slave: the pymodbus fixture)

pytestmark = pytest.mark.e2e


@pytest.fixture
def start_with_meter(start_firmware, tmp_path):
    def start(path, kind, addr):
        import sim as sim_tool  # tools/sim.py, the `make sim` launcher (on sys.path via e2e)

        data, port = tmp_path / "data", free_port()
        # Exactly the environment `make sim METER=path METER_TYPE=kind METER_ADDR=addr` gives.
        env = sim_tool.firmware_env(
            str(data), port, meter=path, meter_type=kind, meter_addr=str(addr)
        )
        return start_firmware(data=data, env=env, api_port=port)

    return start


def _near(a, b, tol):
    return abs(a - b) <= tol


def assert_nrg_shows(st, v):
    """`nrg` (CONTRACT.md section 2): U L1-L3 N, I L1-L3, P L1-L3 N total, PF L1-L3 N (%)."""
    n = st["nrg"]
    assert len(n) == 16
    for k in range(3):
        assert _near(n[k], v["u"][k], 0.05), ("U", k, n)
        assert _near(n[4 + k], v["i"][k], 0.01), ("I", k, n)
        assert _near(n[7 + k], v["p"][k], 0.05), ("P", k, n)
        assert n[12 + k] == round(v["pf"][k] * 100), ("PF", k, n)
    assert _near(n[11], v["p_total"], 0.05), ("P total", n)
    # Total import energy in Wh; eto is the integer part.
    assert abs(st["eto"] - v["kwh"] * 1000) <= 1, st["eto"]


@pytest.mark.parametrize(
    "kind, addr",
    [("sdm630", 1), ("abb_b23", 3), ("sdm72", 2), ("auto", 3)],
    ids=["sdm630", "abb_b23", "sdm72", "auto-detects-abb"],
)
def test_firmware_shows_the_modbus_slave_readings(slave, start_with_meter, kind, addr):  # noqa: F811
    fw = start_with_meter(slave.master_path, kind, addr)
    _, values = EXPECT[addr]
    st = fw.wait_status(
        lambda s: s["eto"] and _near(s["nrg"][0], values["u"][0], 0.05),
        timeout=15,
        keys=("nrg", "eto", "err", "car"),
    )
    assert_nrg_shows(st, values)
    # The real meter is read, not the simulated one: nothing charges, yet power is shown,
    # and no fallback or fault is raised.
    assert st["err"] == 0 and st["car"] == 1
    assert slave.bytes > 0


def test_silent_meter_address_falls_back_to_safe_current_while_charging(slave, start_with_meter):  # noqa: F811
    """Nobody answers at address 9: the real driver reports the meter offline, and the
    charger offers the documented fallback of 6 A instead of the board's 16 A."""
    fw = start_with_meter(slave.master_path, "sdm630", 9)
    fw.sim(cp="B")
    fw.sim(cp="C")
    st = fw.wait_status(lambda s: s["car"] == 2 and s["acu"] == 6, timeout=15,
                        keys=("car", "acu", "err", "eto"))
    assert st["err"] == 0
    assert st["eto"] is None  # never read a meter value
    sim = fw.sim()
    assert sim["duty"] == 100 and sim["relay"] is True  # 6 A = 10 % duty
