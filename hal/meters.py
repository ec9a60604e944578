"""Energy-meter register maps and `ModbusMeter`, the HAL `meter` over `lib/modbus.py`.

Maps (REFERENCE.md section 3; ABB addresses and scales from the ABB B23/B24 Modbus map,
document 2CMC485003M0201):
- `sdm630`, `sdm72` (Eastron SDM630, SDM72D-M V2): input registers (0x04), float32 high word
  first; per-phase registers step by 2; energy in kWh (import 0x0048, export 0x004A: one
  request).
- `abb_b23` (ABB B23/B24): holding registers (0x03); U u32 0.1 V, I u32 0.01 A, P s32 0.01 W,
  PF s16 0.001, import and export energy u64 0.01 kWh (0x5000, 0x5004: one request).
Each map reads as few blocks as the meter's defined registers allow: the SDM block 0x00-0x23
holds U, I, P, VA, var and PF of all three phases (one request); ABB 0x5B00-0x5B3D holds them
all plus frequency and phase angles.

`ModbusMeter.read()` returns {"u": [V]*3, "i": [A]*3, "p": [W]*3, "pf": [-1..1]*3,
"p_total": W, "e_wh": import Wh, "e_exp_wh": export Wh} or None when the meter does not
answer (then `online` is False).
"""

import log
import modbus
from compat import const

_F32 = const(0)
_I32 = const(1)
_U32 = const(2)
_U64 = const(3)
_I16 = const(4)

# field: (block index, register offset in the block, type, scale, stride between phases;
# stride 0 = one value)
_SDM = {
    "fc": modbus.READ_INPUT,
    "blocks": ((0x0000, 36), (0x0034, 2), (0x0048, 4)),
    "u": (0, 0x00, _F32, 1, 2),
    "i": (0, 0x06, _F32, 1, 2),
    "p": (0, 0x0C, _F32, 1, 2),
    "pf": (0, 0x1E, _F32, 1, 2),
    "p_total": (1, 0, _F32, 1, 0),
    "e_wh": (2, 0, _F32, 1000, 0),
    "e_exp_wh": (2, 2, _F32, 1000, 0),
}

_ABB = {
    "fc": modbus.READ_HOLDING,
    "blocks": ((0x5B00, 0x3E), (0x5000, 8)),
    "u": (0, 0x00, _U32, 0.1, 2),
    "i": (0, 0x0C, _U32, 0.01, 2),
    "p": (0, 0x16, _I32, 0.01, 2),
    "pf": (0, 0x3B, _I16, 0.001, 1),
    "p_total": (0, 0x14, _I32, 0.01, 0),
    "e_wh": (1, 0, _U64, 10, 0),
    "e_exp_wh": (1, 4, _U64, 10, 0),
}

MAPS = {"sdm630": _SDM, "sdm72": _SDM, "abb_b23": _ABB}
_FIELDS = ("u", "i", "p", "pf", "p_total", "e_wh", "e_exp_wh")

# Eastron "meter code" (holding register 0xFC02)
EASTRON_CODES = {0x0070: "sdm630", 0x0089: "sdm72"}
_EASTRON_CODE_REG = const(0xFC02)


def _value(data, reg, kind):
    if kind == _F32:
        return modbus.f32(data, reg)
    if kind == _I32:
        return modbus.i32(data, reg)
    if kind == _U32:
        return modbus.u32(data, reg)
    if kind == _U64:
        return modbus.u64(data, reg)
    return modbus.i16(data, reg)


def decode(kind, block, data, out):
    """Fill `out` with the fields of map `kind` that live in block number `block`."""
    m = MAPS[kind]
    for name in _FIELDS:
        b, off, typ, scale, stride = m[name]
        if b != block:
            continue
        if stride:
            out[name] = [_value(data, off + k * stride, typ) * scale for k in range(3)]
        else:
            out[name] = _value(data, off, typ) * scale
    return out


async def detect(master, addr):
    """Name of the meter at `addr` ("sdm630", "sdm72", "abb_b23") or None."""
    try:
        code = modbus.u16(await master.read_holding(addr, _EASTRON_CODE_REG, 1), 0)
        if code in EASTRON_CODES:
            return EASTRON_CODES[code]
    except (modbus.ModbusError, modbus.ModbusIOError):
        pass
    try:
        await master.read_holding(addr, 0x5B00, 2)  # ABB: voltage L1 answers
        return "abb_b23"
    except (modbus.ModbusError, modbus.ModbusIOError):
        return None


class ModbusMeter:
    """HAL `meter`: `await read()` -> dict or None; `online`. kind "auto" detects once."""

    def __init__(self, master, addr=1, kind="sdm630"):
        if kind != "auto" and kind not in MAPS:
            raise ValueError("unknown meter type " + str(kind))
        self.master = master
        self.addr = addr
        self.kind = None if kind == "auto" else kind
        self.online = False
        self.errors = 0

    async def read(self):
        try:
            if self.kind is None:
                self.kind = await detect(self.master, self.addr)
                if self.kind is None:
                    return self._lost("no meter detected")
                log.info("meter", "detected", self.kind, "at", self.addr)
            m = MAPS[self.kind]
            out = {}
            for n, (start, count) in enumerate(m["blocks"]):
                data = await self.master.read_registers(self.addr, m["fc"], start, count)
                decode(self.kind, n, data, out)
        except (modbus.ModbusError, modbus.ModbusIOError) as e:
            return self._lost(e)
        if not self.online:
            log.info("meter", self.kind, "online at", self.addr)
        self.online = True
        return out

    def _lost(self, why):
        self.errors += 1
        if self.online:
            log.error("meter", "offline:", why)
        self.online = False
        return None
