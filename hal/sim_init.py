"""SimHal.__init__ (hal/sim.py): the simulated board, car, faults and meter register, and
the simulated parts. Lent for the start (compat.lend) and let go after: its bytecode is not
held for good."""

from hal import board_defaults
from hal.sim import (
    SimLock,
    SimMeter,
    SimPhaseSwitch,
    SimPilot,
    SimPP,
    SimRcd,
    SimReader,
    SimRelay,
    SimTemp,
    SimWdt,
)


def init(h, board, now_ms, phase_switch, e_wh, register):
    b = board_defaults(
        max_current=16, meter="sim", has_relay_feedback=True, has_lock=True, has_pp=True
    )
    if board:
        b.update(board)
    h.board = b
    h.now_ms = now_ms
    h.ballast = []  # heap held for memory-pressure tests (control ballast=)
    h._ballast_end = None
    # car
    h.cp = "A"
    h.diode = True
    h.load = 16.0
    h.car_phases = 3
    # faults
    h.rcd_fault = False
    h.rcd_latched = False
    h.weld = False
    h.lock_jam = False
    h.meter_ok = True
    h.meter_nan = False
    h.temp_c = 25.0
    # energy: a real meter's import register survives power cuts; `register` is the
    # file that stands in for it (make sim: in the data directory)
    h.e_wh = float(e_wh)
    h._register = register
    h._saved_wh = None
    if register is not None:
        import fs

        stored = fs.read_json(register, None)
        if isinstance(stored, (int, float)) and stored > h.e_wh:
            h.e_wh = float(stored)
        h._saved_wh = int(h.e_wh)
    h._t = now_ms()
    h._booking = False
    h.relay = SimRelay(h)
    h.pilot = SimPilot(h)
    h.pp = SimPP(h)
    h.rcd = SimRcd(h)
    h.meter = SimMeter(h)
    h.lock = SimLock(h)
    h.temp = SimTemp(h)
    h.reader = SimReader()
    h.wdt = SimWdt()
    h.phase_switch = SimPhaseSwitch(h) if phase_switch else None
