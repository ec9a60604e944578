"""hal/meters.py: register maps, decoding, detection and the ModbusMeter HAL contract.

A register bank stands in for the bus here (the map logic is what is under test); the whole
stack against a real Modbus slave on a pty is in test_modbus.py."""

import asyncio
import struct

import pytest

import modbus
from hal import meters


class Bank:
    """Answers read_registers from {(fc, addr): value} 16-bit registers like a meter would:
    an unmapped register is an illegal data address (exception 2)."""

    def __init__(self, slave, regs):
        self.slave = slave
        self.regs = regs
        self.requests = []
        self.down = False

    async def read_registers(self, addr, fc, start, count):
        self.requests.append((fc, start, count))
        if self.down or addr != self.slave:
            raise modbus.ModbusTimeout("no reply")
        out = bytearray()
        for r in range(start, start + count):
            if (fc, r) not in self.regs:
                raise modbus.ModbusError(2, fc, addr)
            out += struct.pack(">H", self.regs[(fc, r)])
        return memoryview(out)

    async def read_holding(self, addr, start, count):
        return await self.read_registers(addr, 3, start, count)


def f32_into(regs, fc, start, value):
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    regs[(fc, start)] = hi
    regs[(fc, start + 1)] = lo


def sdm_bank(code=0x0070):
    regs = {(4, r): 0 for r in range(0x4C)}
    for k, (u, i, p, pf) in enumerate(((230.0, 10.0, 2300.0, 1.0), (231.0, 11.0, 2541.0, 0.9),
                                       (232.0, 0.5, -116.0, -0.5))):  # fmt: skip
        f32_into(regs, 4, 0x00 + 2 * k, u)
        f32_into(regs, 4, 0x06 + 2 * k, i)
        f32_into(regs, 4, 0x0C + 2 * k, p)
        f32_into(regs, 4, 0x1E + 2 * k, pf)
    f32_into(regs, 4, 0x34, 4725.0)
    f32_into(regs, 4, 0x48, 1234.5)
    f32_into(regs, 4, 0x4A, 12.25)  # export, kWh
    regs[(3, 0xFC02)] = code
    return regs


def abb_bank():
    regs = {(3, 0x5B00 + r): 0 for r in range(0x3E)}

    def s32(at, v):
        v &= 0xFFFFFFFF
        regs[(3, at)], regs[(3, at + 1)] = v >> 16, v & 0xFFFF

    for k in range(3):
        s32(0x5B00 + 2 * k, 2300 + k)  # 0.1 V
        s32(0x5B0C + 2 * k, 1000 + k)  # 0.01 A
        s32(0x5B16 + 2 * k, (-1) ** k * 230000)  # 0.01 W, signed
        regs[(3, 0x5B3B + k)] = (-750 if k == 2 else 990) & 0xFFFF  # 0.001
    s32(0x5B14, 230000)
    for at, e in ((0x5000, 123456789), (0x5004, 4321)):  # import, export: 0.01 kWh, u64
        for w in range(4):
            regs[(3, at + w)] = (e >> (16 * (3 - w))) & 0xFFFF
    return regs


def run(c):
    return asyncio.run(c)


def test_sdm630_map_decodes_every_field_in_three_requests():
    bank = Bank(1, sdm_bank())
    m = meters.ModbusMeter(bank, 1, "sdm630")
    r = run(m.read())
    assert r["u"] == [230.0, 231.0, 232.0]
    assert r["i"] == [10.0, 11.0, 0.5]
    assert r["p"] == [2300.0, 2541.0, -116.0]
    assert r["pf"] == pytest.approx([1.0, 0.9, -0.5])
    assert r["p_total"] == 4725.0 and r["e_wh"] == 1234500.0
    assert r["e_exp_wh"] == 12250.0  # export in the same request as import
    assert m.online
    assert bank.requests == [(4, 0x0000, 36), (4, 0x0034, 2), (4, 0x0048, 4)]


def test_abb_b23_map_scales_and_signs_in_two_requests():
    bank = Bank(5, abb_bank())
    r = run(meters.ModbusMeter(bank, 5, "abb_b23").read())
    assert r["u"] == pytest.approx([230.0, 230.1, 230.2])
    assert r["i"] == pytest.approx([10.0, 10.01, 10.02])
    assert r["p"] == pytest.approx([2300.0, -2300.0, 2300.0])
    assert r["pf"] == pytest.approx([0.99, 0.99, -0.75])
    assert r["p_total"] == pytest.approx(2300.0)
    assert r["e_wh"] == 1234567890  # 1234567.89 kWh
    assert r["e_exp_wh"] == 43210  # 43.21 kWh
    assert bank.requests == [(3, 0x5B00, 0x3E), (3, 0x5000, 8)]


def test_meter_goes_offline_and_back():
    bank = Bank(1, sdm_bank())
    m = meters.ModbusMeter(bank, 1, "sdm72")
    assert run(m.read()) is not None and m.online
    bank.down = True
    assert run(m.read()) is None and not m.online and m.errors == 1
    bank.down = False
    assert run(m.read())["p_total"] == 4725.0 and m.online


def test_exception_response_means_no_reading():
    regs = sdm_bank()
    del regs[(4, 0x48)]  # energy register not served
    m = meters.ModbusMeter(Bank(1, regs), 1, "sdm630")
    assert run(m.read()) is None and not m.online


@pytest.mark.parametrize(
    "regs, kind",
    [(sdm_bank(0x0070), "sdm630"), (sdm_bank(0x0089), "sdm72"), (abb_bank(), "abb_b23"),
     ({}, None), (sdm_bank(0x1234), None)],
)  # fmt: skip
def test_detect_by_eastron_meter_code_or_abb_register(regs, kind):
    assert run(meters.detect(Bank(1, regs), 1)) == kind


def test_auto_kind_detects_once_then_reads():
    bank = Bank(1, abb_bank())
    m = meters.ModbusMeter(bank, 1, "auto")
    assert run(m.read())["p_total"] == pytest.approx(2300.0)
    assert m.kind == "abb_b23"
    n = len(bank.requests)
    run(m.read())
    assert len(bank.requests) == n + 2  # no second detection


def test_unknown_meter_type_is_refused():
    with pytest.raises(ValueError):
        meters.ModbusMeter(None, 1, "sdm120")


def test_every_map_reads_all_interface_fields_within_modbus_limits():
    for kind, m in meters.MAPS.items():
        assert m["fc"] in (3, 4)
        for start, count in m["blocks"]:
            assert 1 <= count <= 125 and 0 <= start <= 0xFFFF - count
        for name in ("u", "i", "p", "pf", "p_total", "e_wh", "e_exp_wh"):
            b, off, _typ, _scale, stride = m[name]
            width = {meters._I16: 1, meters._U64: 4}.get(_typ, 2)
            last = off + 2 * stride + width if stride else off + width
            assert last <= m["blocks"][b][1], (kind, name)
