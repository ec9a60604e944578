"""trip_to_open_ms (CONTRACT.md section 5): simulated time from an RCD trip, and from the car
leaving state C, to the contactor opening.

The real `firmware.evse.charger.Charger` runs on the real simulated hardware (`hal.sim.SimHal`)
with a fake clock that advances 1 ms at a time; `tick()` is called every 20 ms, as
`Charger.run()` does on the board. Each run charges a car, then injects the event at a random
millisecond of the tick period and counts the milliseconds until the firmware has commanded
the relay open (`relay.closed` false). For the RCD this is the firmware's reaction (latch and
command); the simulated RCD hardware interrupts the coil at once by itself, as REFERENCE.md
section 1 requires of a real board.

    measure(runs=20, seed=1) -> {"trip_to_open_ms_rcd": max, "trip_to_open_ms_rcd_p50": p50,
                                 "trip_to_open_ms_leave_c": max,
                                 "trip_to_open_ms_leave_c_p50": p50}   (ints, ms)

`python tools/trip_bench.py [--runs N]` prints those rows as `name value ms`.
"""

import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (ROOT, os.path.join(ROOT, "lib")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import log  # noqa: E402
from firmware.evse.charger import Charger  # noqa: E402
from hal.sim import SimHal  # noqa: E402

TICK_MS = 20  # Charger.run() sleeps 20 ms between ticks
_LIMIT_MS = 10000  # bound on every simulated wait


class _Defaults:
    """Config with nothing set: the charger uses its defaults (16 A board, no limits)."""

    def get(self, name):
        return None


class _Rig:
    """One charger and its simulated car on a 1 ms fake clock."""

    def __init__(self, tick_offset):
        self.t = 0
        now = self.now
        self.hal = SimHal(now_ms=now)
        self.charger = Charger(self.hal, _Defaults(), now_ms=now)
        self.charger.auth_required = False
        self._offset = tick_offset  # where in the period the ticks fall

    def now(self):
        return self.t

    def tick_due(self):
        return self.t % TICK_MS == self._offset

    def step(self):
        """Advance 1 ms; tick when a tick is due. Returns True when it ticked."""
        self.t += 1
        if self.tick_due():
            self.charger.tick()
            return True
        return False

    def run_until(self, predicate):
        for _ in range(_LIMIT_MS):
            if predicate():
                return
            self.step()
        raise RuntimeError("simulated wait exceeded %d ms" % _LIMIT_MS)

    def start_charging(self):
        self.hal.control({"cp": "B"})
        self.run_until(lambda: self.charger.alw)
        self.hal.control({"cp": "C"})
        self.run_until(lambda: self.hal.relay.closed)


def _one(rng, event):
    rig = _Rig(rng.randrange(TICK_MS))
    rig.start_charging()
    for _ in range(rng.randrange(1, 10)):  # charge a few ticks longer
        while not rig.step():
            pass
    # The event lands at a random millisecond of the tick period (0: just before a tick).
    for _ in range(rng.randrange(TICK_MS)):
        rig.step()
    t0 = rig.t
    if event == "rcd":
        rig.hal.control({"rcd": "trip"})
    else:
        rig.hal.control({"cp": rng.choice(("B", "A"))})  # the car stops, or is unplugged
    relay = rig.hal.relay
    # A tick due at this very millisecond runs after the event.
    if rig.tick_due():
        rig.charger.tick()
    rig.run_until(lambda: not relay.closed)
    return rig.t - t0


def _p50(values):
    s = sorted(values)
    return s[(len(s) - 1) // 2]


def measure(runs=20, seed=1):
    """trip_to_open_ms over `runs` runs per event; see the module docstring."""
    rng = random.Random(seed)
    out = {}
    level = log.level
    log.level = 9  # the charger logs every close, fault and open: keep the table readable
    try:
        for event, name in (
            ("rcd", "trip_to_open_ms_rcd"),
            ("leave_c", "trip_to_open_ms_leave_c"),
        ):
            ms = [_one(rng, event) for _ in range(runs)]
            out[name] = max(ms)
            out[name + "_p50"] = _p50(ms)
    finally:
        log.level = level
    return out


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    r = measure(a.runs, a.seed)
    for name in sorted(r):
        print("%-28s %10s %s" % (name, r[name], "ms"))


if __name__ == "__main__":
    main()
