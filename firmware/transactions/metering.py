"""Meter values (OCPP 1.6 §3.16, §9.1): sampled during a transaction, clock-aligned always.

- Sampled: every MeterValueSampleInterval s while a transaction runs, the measurands of
  MeterValuesSampledData, context "Sample.Periodic", journaled (they belong to the
  transaction and must reach the central system).
- Clock-aligned: at every multiple of ClockAlignedDataInterval counted from midnight UTC,
  the measurands of MeterValuesAlignedData, context "Sample.Clock"; journaled with the
  transaction when one runs, else sent once without transactionId and not journaled (a
  reading of the meter outside a transaction is not transaction data, and a stale one is
  worth little after an outage).
- StopTransaction's transactionData: the StopTxnSampledData measurands at the start
  ("Transaction.Begin", kept in the tx object) and at the stop ("Transaction.End"), and the
  last clock-aligned reading of the StopTxnAlignedData measurands during the transaction.
  No history in RAM: one sample each, so the Stop stays small whatever the session length.

Only measurands the meter and charger provide are sent (a configured one without a source is
skipped): energy from `energy_wh`, the export register (Energy.Active.Export.Register, every
meter map of hal/meters.py has it) from `export_wh`, the per-phase values from `nrg`,
Current.Offered from the pilot, Temperature from `tma`. Values are strings
(SampledValue.value), energy in whole Wh.
"""

import log
from compat import asleep_ms, const, ticks_diff, ticks_ms
from firmware import clock
from firmware.evse.charger import NRG_I, NRG_P_TOTAL, NRG_PF, NRG_U

_DAY = const(86400)
_TAG = "meter"
_PHASES = ("L1", "L2", "L3")
_VPHASES = ("L1-N", "L2-N", "L3-N")


def measurands(config, key):
    """The configured measurands of a CSL key, as a list."""
    v = config.get(key) or ""
    return [m.strip() for m in v.split(",") if m.strip()]


def _num(x):
    if x == int(x):
        return str(int(x))
    s = "%.2f" % x
    return s.rstrip("0").rstrip(".")


def _sv(out, value, context, measurand, unit, phase=None, location=None):
    d = {"value": value, "context": context, "measurand": measurand}
    if unit:
        d["unit"] = unit
    if phase:
        d["phase"] = phase
    if location:
        d["location"] = location
    out.append(d)


def sampled_values(charger, names, context, phases=3):
    """SampledValue list for `names` from what the charger knows now (empty when nothing)."""
    out = []
    n = charger.nrg
    ok = charger.meter_ok
    ph = _PHASES[: max(1, min(3, phases))]
    for m in names:
        if m == "Energy.Active.Import.Register":
            if charger.energy_wh is not None:
                _sv(out, str(int(charger.energy_wh)), context, m, "Wh", None, "Outlet")
        elif not ok and m != "Current.Offered" and m != "Temperature":
            continue  # meter silent: no stale electrical readings
        elif m == "Energy.Active.Export.Register":
            if charger.export_wh is not None:
                _sv(out, str(int(charger.export_wh)), context, m, "Wh", None, "Outlet")
        elif m == "Power.Active.Import":
            _sv(out, _num(n[NRG_P_TOTAL]), context, m, "W", None, "Outlet")
        elif m == "Current.Import":
            for k in range(len(ph)):
                _sv(out, _num(n[NRG_I + k]), context, m, "A", ph[k], "Outlet")
        elif m == "Voltage":
            for k in range(len(ph)):
                _sv(out, _num(n[NRG_U + k]), context, m, "V", _VPHASES[k], "Outlet")
        elif m == "Power.Factor":
            for k in range(len(ph)):
                _sv(out, _num(n[NRG_PF + k] / 100), context, m, None, ph[k], "Outlet")
        elif m == "Current.Offered":
            _sv(out, _num(charger.acu or 0), context, m, "A", None, "Outlet")
        elif m == "Temperature":
            if charger.tma:
                _sv(out, _num(max(charger.tma)), context, m, "Celsius", None, "Body")
    return out


def meter_value(charger, names, context, t=None, phases=3):
    """One MeterValue {"timestamp", "sampledValue"} or None when nothing is measurable."""
    sv = sampled_values(charger, names, context, phases)
    if not sv:
        return None
    return {"timestamp": clock.rfc3339(t), "sampledValue": sv}


def next_aligned(now, interval):
    """The next clock-aligned instant after `now`: midnight UTC plus a multiple of
    `interval`; midnight itself when the interval does not divide the day."""
    day0 = now - now % _DAY
    t = day0 + ((now - day0) // interval + 1) * interval
    return min(t, day0 + _DAY)


def transaction_data(cp, tx, t=None):
    """transactionData for StopTransaction, or None when StopTxn*Data are empty."""
    out = []
    names = measurands(cp.config, "StopTxnSampledData")
    phases = cp.hal.board.get("phases", 3)
    if names:
        if tx.begin is not None:
            out.append(tx.begin)
        mv = meter_value(cp.charger, names, "Transaction.End", t, phases)
        if mv is not None:
            out.append(mv)
    if tx.aligned is not None:
        out.append(tx.aligned)
    return out or None


class Metering:
    """The two metering tasks of the transaction service `txn`
    (firmware/transactions/service.py)."""

    def __init__(self, cp, txn):
        self.cp = cp
        self.txn = txn
        self.missed = 0  # periodic samples that could not be taken (MemoryError, a bug)

    def begin(self, tx, t):
        names = measurands(self.cp.config, "StopTxnSampledData")
        if names:
            tx.begin = meter_value(self.cp.charger, names, "Transaction.Begin", t, self._ph())
        tx.sampled_ms = ticks_ms()

    def _ph(self):
        return self.cp.hal.board.get("phases", 3)

    async def run_sampled(self):
        cp = self.cp
        while True:
            await asleep_ms(1000)
            tx = cp.tx
            if tx is None:
                continue
            try:
                self.txn.meter_tick(tx)
                interval = cp.config.get("MeterValueSampleInterval")
                if interval <= 0 or ticks_diff(ticks_ms(), tx.sampled_ms) < interval * 1000:
                    continue
                tx.sampled_ms = ticks_ms()
                names = measurands(cp.config, "MeterValuesSampledData")
                mv = meter_value(cp.charger, names, "Sample.Periodic", None, self._ph())
                if mv is not None:
                    self.txn.journal_meter_values(tx, mv)
            except Exception as e:  # noqa: BLE001 - a bad reading must not end metering
                # Not taken is counted (`mvm`), never made up later.
                self.missed += 1
                log.failed(_TAG, "sample not taken", e)

    async def run_aligned(self):
        from firmware.ops import meter_values

        cp = self.cp
        due = None
        while True:
            await asleep_ms(1000)
            interval = cp.config.get("ClockAlignedDataInterval")
            if interval <= 0:
                due = None
                continue
            now = clock.now()
            if due is None or due - now > interval:  # first round, or the clock was set back
                due = next_aligned(now, interval)
                continue
            if now < due:
                continue
            t = due
            due = next_aligned(now, interval)
            try:
                tx = cp.tx
                ph = self._ph()
                names = measurands(cp.config, "MeterValuesAlignedData")
                mv = meter_value(cp.charger, names, "Sample.Clock", t, ph)
                if tx is not None:
                    stop_names = measurands(cp.config, "StopTxnAlignedData")
                    if stop_names:
                        tx.aligned = meter_value(cp.charger, stop_names, "Sample.Clock", t, ph)
                    if mv is not None:
                        self.txn.journal_meter_values(tx, mv)
                elif mv is not None and cp.session.accepted.is_set():
                    await meter_values.send(cp, 1, mv)
            except Exception as e:  # noqa: BLE001 - lost link, CALLERROR: not journaled
                log.warning(_TAG, "clock-aligned:", repr(e))
