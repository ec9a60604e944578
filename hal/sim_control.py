"""The simulator's /api/sim (CONTRACT.md section 3) for hal/sim.py: SimHal.control and
SimHal.state lend this module for each call (compat.lend), so a running simulator holds
none of it between the test driver's requests. Never deployed (host_files)."""

import compat


def control(hal, params):
    """SimHal.control: the CONTRACT.md section 3 names (plain string values) applied to
    `hal`, all or nothing. Returns state(hal); raises ValueError(reason) for an unknown name
    or a bad value."""
    todo = []
    for name in params:
        v = str(params[name])
        todo.append((name, _parse(name, v)))
    hal._book()
    for name, v in todo:
        if name == "cp":
            hal.cp = v
        elif name == "diode":
            hal.diode = v
        elif name == "card":
            hal.reader.card = v
        elif name == "load":
            hal.load = v
        elif name == "phases":
            hal.car_phases = v
        elif name == "rcd":
            hal.rcd_fault = v
            if v:
                hal.rcd_latched = True
        elif name == "weld":
            hal.weld = v
        elif name == "lock":
            hal.lock_jam = v
        elif name == "meter":
            hal.meter_ok = v != "offline"
            hal.meter_nan = v == "nan"
        elif name == "temp":
            hal.temp_c = v
        elif name == "ballast":
            _hold(hal, v[0], v[1])
    return state(hal)


def _hold(hal, kib, seconds):
    """Extension for memory-pressure tests: hold `kib` KiB of the heap in 256-byte
    blocks (as much of it as there is room for) for `seconds` (0: until changed), so a
    test can squeeze the firmware at any moment of a session; the next pilot reading
    after that (the safety tick) lets go, even when the API has no room left to ask and
    the meter's task has none to read."""
    hal.ballast = []
    hal._ballast_end = None
    if seconds:
        hal._ballast_end = compat.ticks_add(hal.now_ms(), seconds * 1000)
    try:
        for _ in range(kib * 4):
            hal.ballast.append(bytearray(240))
    except MemoryError:
        pass


def state(hal):
    p = hal.pilot
    return {
        "cp": hal.cp,
        "diode": "ok" if hal.diode else "missing",
        "load": hal.load,
        "phases": hal.car_phases,
        "rcd": "trip" if hal.rcd_fault else "ok",
        "rcd_latched": hal.rcd_latched,
        "weld": 1 if hal.weld else 0,
        "lock": "jam" if hal.lock_jam else "ok",
        "lock_state": hal.lock.state(),
        "meter": "nan" if hal.meter_nan else "ok" if hal.meter_ok else "offline",
        "temp": hal.temp_c,
        "relay": hal.relay.contact(),
        "duty": "F" if p.f else p.duty,
        "amps": hal.amps(),
        "e_wh": round(hal.e_wh, 3),
        "ballast": len(hal.ballast) // 4,
    }


def _parse(name, v):
    if name == "cp":
        if v not in ("A", "B", "C", "D", "E"):
            raise ValueError("cp: A, B, C, D or E")
        return v
    if name == "diode":
        return _choice(name, v, "ok", "missing")
    if name == "card":
        if not 0 < len(v) <= 20:
            raise ValueError("card: 1 to 20 characters")
        return v
    if name == "load":
        a = _num(name, v)
        if not 0 <= a <= 80:
            raise ValueError("load: 0..80 A")
        return a
    if name == "phases":
        if v not in ("1", "3"):
            raise ValueError("phases: 1 or 3")
        return int(v)
    if name == "rcd":
        return _choice(name, v, "trip", "ok")
    if name == "weld":
        return _choice(name, v, "1", "0")
    if name == "lock":
        return _choice(name, v, "jam", "ok")
    if name == "meter":
        if v not in ("ok", "offline", "nan"):  # nan: extension, readings with NaN values
            raise ValueError("meter: ok or offline (or nan)")
        return v
    if name == "ballast":  # extension: KiB of heap held [for seconds] (_hold)
        kib, _, sec = v.partition(":")
        if not kib.isdigit() or int(kib) > 4096 or not (sec == "" or sec.isdigit()):
            raise ValueError("ballast: 0..4096 KiB, optionally :seconds")
        return int(kib), int(sec or 0)
    if name == "temp":
        if v in ("fail", "none"):
            return None  # extension: a failed sensor
        t = _num(name, v)
        if not -50 <= t <= 200:
            raise ValueError("temp: -50..200")
        return t
    raise ValueError("unknown name: " + name)


def _choice(name, v, yes, no):
    if v == yes:
        return True
    if v == no:
        return False
    raise ValueError(name + ": " + yes + " or " + no)


def _num(name, v):
    try:
        x = float(v)
    except ValueError:
        raise ValueError(name + ": not a number")
    if x != x:
        raise ValueError(name + ": not a number")
    return x
