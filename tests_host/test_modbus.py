"""lib/modbus.py: framing, validation, retries; then the real driver stack (hal/serial_unix.py
+ modbus.Master + hal/meters.ModbusMeter) against a real Modbus RTU slave (pymodbus) on a
pseudo-terminal, on CPython and on the MicroPython VM."""

import asyncio
import json
import os
import select
import struct
import threading
import time

import pytest
from conftest import mp_run

import modbus

# ---------------------------------------------------------------- unit level, scripted line


class ScriptedLine:
    """A bus whose slave answers each request with the next scripted reply (bytes, or None for
    silence). Records every request frame."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.sent = []
        self.rx = b""

    def write(self, buf):
        self.sent.append(bytes(buf))
        reply = self.replies.pop(0) if self.replies else None
        self.rx = reply or b""
        return len(buf)

    async def read(self, n, timeout_ms):
        if not self.rx:
            await asyncio.sleep(min(timeout_ms, 5) / 1000)
            return b""
        out, self.rx = self.rx[:n], self.rx[n:]
        return out


def frame(*parts):
    body = bytes(parts[0]) if len(parts) == 1 else bytes(parts)
    c = modbus.crc16(body)
    return body + bytes((c & 0xFF, c >> 8))


def run(coro):
    return asyncio.run(coro)


def test_crc16_modbus_check_values():
    assert modbus.crc16(b"123456789") == 0x4B37  # the CRC catalogue's check value
    assert modbus.crc16(b"") == 0xFFFF
    # classic request "read 2 input registers at 0 from slave 1" ends in 71 CB (low first)
    assert modbus.build_request(1, 4, 0, 2) == bytes.fromhex("01040000000271cb")
    assert modbus.build_request(17, 3, 0x006B, 3) == bytes.fromhex("1103006b00037687")


def test_crc16_matches_bitwise_reference_on_random_data():
    def ref(data):
        crc = 0xFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        return crc

    rnd = __import__("random").Random(7)
    for n in range(0, 300, 7):
        data = bytes(rnd.randrange(256) for _ in range(n))
        assert modbus.crc16(data) == ref(data)


def test_build_request_rejects_bad_arguments():
    for args in ((0, 4, 0, 1), (248, 4, 0, 1), (1, 6, 0, 1), (1, 4, 0, 0), (1, 4, 0, 126)):
        with pytest.raises(ValueError):
            modbus.build_request(*args)


def test_parse_response_accepts_valid_and_returns_register_bytes():
    f = frame(bytes((1, 4, 4, 0x43, 0x66, 0x19, 0x9A)))
    data = modbus.parse_response(bytearray(f), 1, 4, 2)
    assert bytes(data) == bytes((0x43, 0x66, 0x19, 0x9A))
    assert modbus.f32(data, 0) == pytest.approx(230.1, abs=1e-4)


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"\x01\x04", "short"),
        (frame(bytes((2, 4, 4, 0, 0, 0, 0))), "wrong address"),
        (frame(bytes((1, 3, 4, 0, 0, 0, 0))), "wrong function"),
        (frame(bytes((1, 4, 2, 0, 0))), "byte count"),
        (frame(bytes((1, 4, 4, 0, 0, 0, 0)))[:-1] + b"\x00", "crc"),
    ],
)
def test_parse_response_rejects_bad_frames(raw, why):
    with pytest.raises(modbus.ModbusFrameError) as e:
        modbus.parse_response(bytearray(raw), 1, 4, 2)
    assert why.split()[-1] in str(e.value)


def test_exception_response_raises_modbus_error_with_code_and_is_not_retried():
    line = ScriptedLine([frame(bytes((1, 0x84, 0x02)))])
    m = modbus.Master(line, timeout_ms=50, retries=3)
    with pytest.raises(modbus.ModbusError) as e:
        run(m.read_input(1, 0x9999, 2))
    assert e.value.code == 2 and e.value.function == 4
    assert "illegal data address" in str(e.value)
    assert len(line.sent) == 1


def test_timeout_is_retried_a_bounded_number_of_times():
    line = ScriptedLine([None, None, None, None, None])
    m = modbus.Master(line, timeout_ms=30, retries=2)
    t0 = time.monotonic()
    with pytest.raises(modbus.ModbusTimeout):
        run(m.read_input(1, 0, 2))
    assert len(line.sent) == 3
    assert m.stats == [3, 3, 0]
    assert time.monotonic() - t0 < 2


def test_garbage_then_good_reply_succeeds_on_retry():
    good = frame(bytes((1, 4, 4, 0x3F, 0x80, 0, 0)))
    line = ScriptedLine([b"\xff\x00\x13garbage!!", good])
    m = modbus.Master(line, timeout_ms=40, retries=1)
    data = run(m.read_input(1, 0, 2))
    assert modbus.f32(data, 0) == 1.0
    assert m.stats == [2, 0, 1]
    assert line.sent[0] == line.sent[1] == bytes.fromhex("01040000000271cb")


def test_bad_crc_on_every_attempt_raises_frame_error():
    bad = frame(bytes((1, 4, 4, 0, 0, 0, 0)))[:-2] + b"\x00\x00"
    line = ScriptedLine([bad, bad])
    m = modbus.Master(line, timeout_ms=40, retries=1)
    with pytest.raises(modbus.ModbusFrameError):
        run(m.read_input(1, 0, 2))
    assert m.stats[2] == 2


def test_silent_interval_is_three_and_a_half_characters():
    assert modbus.silent_ms(9600) == 5  # 4.01 ms rounded up
    assert modbus.silent_ms(19200) == 3
    assert modbus.silent_ms(115200) == 2  # fixed 1.75 ms above 19200 baud


def test_decoders_word_orders():
    data = bytes.fromhex("4366199a" "fffffffe" "0000000000bc614e")
    assert modbus.f32(data, 0) == pytest.approx(230.1, abs=1e-4)
    assert modbus.f32(bytes.fromhex("199a4366"), 0, swap=True) == pytest.approx(230.1, abs=1e-4)
    assert modbus.i32(data, 2) == -2
    assert modbus.u32(data, 2) == 0xFFFFFFFE
    assert modbus.i32(bytes.fromhex("fffeffff"), 0, swap=True) == -2
    assert modbus.u64(data, 4) == 12345678
    assert modbus.u64(bytes.fromhex("614e00bc00000000"), 0, swap=True) == 12345678
    assert modbus.u16(data, 0) == 0x4366 and modbus.i16(data, 2) == -1


# ---------------------------------------------------------------- a real slave on a pty

SDM630 = {"u": [230.1, 231.2, 229.9], "i": [16.0, 15.5, 0.25], "p": [3680.0, 3580.0, -57.5],
          "pf": [0.99, 0.98, -0.5], "p_total": 7202.5, "kwh": 12345.5,
          "kwh_exp": 3.5}  # fmt: skip
SDM72 = {"u": [228.0, 0.0, 0.0], "i": [6.0, 0.0, 0.0], "p": [1368.0, 0.0, 0.0],
         "pf": [1.0, 0.0, 0.0], "p_total": 1368.0, "kwh": 42.25,
         "kwh_exp": 0.0}  # fmt: skip
ABB = {"u": [230.4, 229.5, 231.0], "i": [10.52, 10.0, 9.99], "p": [2400.12, 2300.0, -100.5],
       "pf": [0.995, 0.9, -0.75], "p_total": 4599.62, "kwh": 98765.43,
       "kwh_exp": 12.34}  # fmt: skip


def _f32_regs(values):
    out = []
    for v in values:
        hi, lo = struct.unpack(">HH", struct.pack(">f", v))
        out += [hi, lo]
    return out


def _sdm_input_regs(v):
    regs = [0] * 0x4C
    regs[0x00:0x06] = _f32_regs(v["u"])
    regs[0x06:0x0C] = _f32_regs(v["i"])
    regs[0x0C:0x12] = _f32_regs(v["p"])
    regs[0x1E:0x24] = _f32_regs(v["pf"])
    regs[0x34:0x36] = _f32_regs([v["p_total"]])
    regs[0x48:0x4A] = _f32_regs([v["kwh"]])
    regs[0x4A:0x4C] = _f32_regs([v["kwh_exp"]])
    return regs


def _u32(x):
    x &= 0xFFFFFFFF
    return [x >> 16, x & 0xFFFF]


def _abb_holding(v):
    regs = [0] * 0x3E
    for k in range(3):
        regs[2 * k : 2 * k + 2] = _u32(round(v["u"][k] * 10))
        regs[0x0C + 2 * k : 0x0E + 2 * k] = _u32(round(v["i"][k] * 100))
        regs[0x16 + 2 * k : 0x18 + 2 * k] = _u32(round(v["p"][k] * 100))
        regs[0x3B + k] = round(v["pf"][k] * 1000) & 0xFFFF
    regs[0x14:0x16] = _u32(round(v["p_total"] * 100))
    energy = []
    for kwh in (v["kwh"], v["kwh_exp"]):
        e = round(kwh * 100)
        energy += [(e >> 48) & 0xFFFF, (e >> 32) & 0xFFFF, (e >> 16) & 0xFFFF, e & 0xFFFF]
    return regs, energy


def _devices():
    from pymodbus.simulator import DataType, SimData, SimDevice

    def regs(address, values):
        return SimData(address, values=values, datatype=DataType.REGISTERS)

    def bits():  # pymodbus wants every block non-empty; meters have no coils
        return [SimData(0, values=[False] * 16, datatype=DataType.BITS)]

    sdm630 = SimDevice(
        1,
        simdata=(bits(), bits(), [regs(0xFC02, [0x0070])], [regs(0, _sdm_input_regs(SDM630))]),
    )
    sdm72 = SimDevice(
        2,
        simdata=(bits(), bits(), [regs(0xFC02, [0x0089])], [regs(0, _sdm_input_regs(SDM72))]),
    )
    block, energy = _abb_holding(ABB)
    abb = SimDevice(
        3, simdata=(bits(), bits(), [regs(0x5000, energy), regs(0x5B00, block)], [regs(0, [0])])
    )
    return [sdm630, sdm72, abb]


class PtyBus:
    """Two pseudo-terminals joined like a null-modem cable (what socat would do): the slave
    opens `slave_path`, our driver `master_path`. Both are real ttys."""

    def __init__(self):
        self.m1, self.s1 = os.openpty()
        self.m2, self.s2 = os.openpty()
        self.master_path = os.ttyname(self.s1)
        self.slave_path = os.ttyname(self.s2)
        self.bytes = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self):
        peer = {self.m1: self.m2, self.m2: self.m1}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(peer), [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 512)
                except OSError:
                    continue
                self.bytes += len(data)
                os.write(peer[fd], data)

    def close(self):
        self._stop.set()
        self._t.join(2)
        for fd in (self.m1, self.s1, self.m2, self.s2):
            os.close(fd)


@pytest.fixture(scope="module")
def slave():
    pytest.importorskip("pymodbus")
    from pymodbus.server import ModbusSerialServer

    bus = PtyBus()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    def serve():
        asyncio.set_event_loop(loop)

        async def main():
            server = ModbusSerialServer(_devices(), port=bus.slave_path, baudrate=9600)
            holder["server"] = server
            await server.serve_forever(background=True)
            ready.set()
            while not holder.get("stop"):
                await asyncio.sleep(0.05)
            await server.shutdown()

        loop.run_until_complete(main())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(10), "pymodbus server did not start"
    time.sleep(0.2)
    yield bus
    holder["stop"] = True
    t.join(5)
    bus.close()


EXPECT = {1: ("sdm630", SDM630), 2: ("sdm72", SDM72), 3: ("abb_b23", ABB)}


def _check_reading(r, v):
    for key in ("u", "i", "p", "pf"):
        assert r[key] == pytest.approx(v[key], abs=0.01), key
    assert r["p_total"] == pytest.approx(v["p_total"], abs=0.01)
    assert r["e_wh"] == pytest.approx(v["kwh"] * 1000, abs=1)
    assert r["e_exp_wh"] == pytest.approx(v["kwh_exp"] * 1000, abs=1)


@pytest.mark.parametrize("addr", [1, 2, 3])
def test_real_slave_cpython_reads_every_meter_map(slave, addr):
    from hal.serial_unix import open_meter

    kind, values = EXPECT[addr]
    meter = open_meter(slave.master_path, kind, addr)

    async def go():
        first = await meter.read()
        second = await meter.read()
        return first, second

    try:
        first, second = run(go())
    finally:
        meter.master.stream.close()
    _check_reading(first, values)
    assert second == first
    assert meter.online


def test_real_slave_cpython_autodetect_exceptions_and_offline(slave):
    import modbus as mb
    from hal.meters import ModbusMeter, detect
    from hal.serial_unix import Serial

    port = Serial(slave.master_path)
    master = mb.Master(port, timeout_ms=150, retries=1)

    async def go():
        kinds = [await detect(master, a) for a in (1, 2, 3)]
        with pytest.raises(mb.ModbusError) as e:
            await master.read_input(1, 0x2000, 2)  # not served: illegal data address
        missing = ModbusMeter(master, 9, "sdm630")  # nobody answers at 9
        lost = await missing.read()
        auto = ModbusMeter(master, 3, "auto")
        r = await auto.read()
        return kinds, e.value.code, lost, missing.online, auto.kind, r

    try:
        kinds, code, lost, online, auto_kind, r = run(go())
    finally:
        port.close()
    assert kinds == ["sdm630", "sdm72", "abb_b23"]
    assert code == 2
    assert lost is None and online is False
    assert auto_kind == "abb_b23"
    _check_reading(r, ABB)


_MP_CODE = """
import asyncio, json
from hal.serial_unix import open_meter
async def main():
    out = {}
    for addr, kind in ((1, "sdm630"), (2, "sdm72"), (3, "abb_b23")):
        m = open_meter(%r, kind, addr)
        out[kind] = await m.read()
        m.master.stream.close()
    print(json.dumps(out))
asyncio.run(main())
"""


def test_real_slave_micropython_vm_reads_every_meter_map(slave):
    r = mp_run(_MP_CODE % slave.master_path, timeout=60, heap="256k")
    assert r.returncode == 0, r.stderr + r.stdout
    got = json.loads(r.stdout.strip().splitlines()[-1])
    for kind, values in EXPECT.values():
        _check_reading(got[kind], values)
