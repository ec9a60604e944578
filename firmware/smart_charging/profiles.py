"""Smart charging engine (OCPP 1.6 §3.13): profile store, limit at time t, composite schedule.

Pure logic: time comes in as integer Unix seconds, storage is injected (`load()`/`save(obj)`,
see FileStore), configuration through `config.get(name)`.

Rules this module implements (spec §3.13, §5.16, §6.43; decisions where the spec is silent
are marked *):
- Purposes: ChargePointMaxProfile only on connector 0; TxDefaultProfile on 0 (all connectors)
  or a connector; TxProfile only on a connector with an active transaction, bound to its
  transactionId (a given transactionId must match) and removed by `end_transaction`.
- Within a purpose the highest stack level *in force* at t wins: a profile outside
  validFrom/validTo, before its start or past its duration yields to the lower ones.
  *TxDefault on a connector and on connector 0 compete by stack level; on a tie the
  connector's own profile wins.
- validFrom is inclusive, validTo exclusive.
- Absolute: from startSchedule (*missing: the moment the profile was set, stored resolved).
  Recurring Daily/Weekly: anchored at startSchedule, repeating every 86400/604800 s; *not in
  force before startSchedule; without duration the last period runs to the end of the cycle.
  Relative: from the transaction start. *Without a transaction a Relative profile gives its
  first period (what a transaction starting now would get); a composite schedule asked for
  without a transaction is laid out as if the transaction started at the schedule start.
- Limits in W become A per period: A = W / (V × phases), V the measured voltage (set_voltage)
  or nominal 230 V, phases the period's numberPhases (default 3) when the charger can switch
  to it (`can_switch`), else the phases the charger supplies (`phases_hw`): a car on three
  phases must not get a one-phase watt figure per phase.
- Effective limit = min(ChargePointMax, TxProfile else TxDefault, local limits), in A per
  phase, with phases = the smallest numberPhases given by the periods in force (default 3).
  Below 6 A the charger must pause the car; this module only reports the value.
- Composite schedule: the effective limit over the window; *where nothing limits, the
  installation maximum (`max_current`) is reported, never -1. Limits are rounded *down* to
  0.1 so a reported figure never exceeds a profile; adjacent equal periods are merged.

Internally a profile is one flat list (see _ID…_PER); periods are a flat int list
[startPeriod, limit×10, numberPhases or 0, …], so 24 periods cost one list of small ints.
The same lists are what profiles.json holds.
"""

import log
from compat import const
from firmware import clock

ACCEPTED = "Accepted"
REJECTED = "Rejected"
UNKNOWN = "Unknown"

_CPMAX = const(0)
_TXDEF = const(1)
_TX = const(2)
PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
_ABS = const(0)
_REC = const(1)
_REL = const(2)
_KINDS = ("Absolute", "Recurring", "Relative")
_DAY = const(86400)
_WEEK = const(604800)

# Profile list layout.
_ID = const(0)
_CONN = const(1)
_PUR = const(2)
_STACK = const(3)
_KIND = const(4)
_CYCLE = const(5)  # recurrence length in s, 0 when not Recurring
_VFROM = const(6)
_VTO = const(7)
_TXID = const(8)
_START = const(9)
_DUR = const(10)
_UNITW = const(11)  # 1 when limits are in W
_MINRATE = const(12)  # minChargingRate × 10, or None
_PER = const(13)
_FIELDS = const(14)

_FORMAT = const(1)
_NOMINAL_V = 230.0
_MAX_STEPS = const(1000)  # bound on boundaries walked by next_change / composite



class FileStore:
    """profiles.json in `data_dir`, written atomically through lib/fs.py (its presence at boot
    is what loads the engine: service._FILE)."""

    def __init__(self, data_dir):
        self.path = data_dir.rstrip("/") + "/profiles.json"

    def load(self):
        import fs

        return fs.read_json(self.path, strict=True)

    def save(self, obj):
        import fs

        fs.write_json(self.path, obj)


def _opt_time(d, key):
    v = d.get(key)
    return None if v is None else clock.parse(v)


def _int(v):
    # JSON integers only: bool is an int subclass, floats are not accepted.
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(v)
    return v


def _tenths(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise ValueError(v)
    return int(v * 10 + 0.5)


def floor_tenth(x):
    """x rounded down to 0.1 (a tiny epsilon absorbs float noise such as 15.99999999).
    service._floor_tenth is the same, so that the limit loop needs no engine."""
    return int(x * 10 + 1e-6) / 10


class SmartCharging:
    def __init__(self, store=None, config=None, connectors=1, max_current=32.0):
        # Phases the charger supplies, and whether it can switch to numberPhases: set by
        # firmware.smart_charging.service from the board (defaults: three phases, switchable).
        self.phases_hw = 3
        self.can_switch = True
        self._store = store
        self._config = config
        self.connectors = connectors
        self.max_current = float(max_current)  # installation maximum, A per phase
        self.voltage = _NOMINAL_V
        self._local = {}
        self._p = []  # profiles, sorted: highest stack first, connector's own before 0
        self.on_change = None  # fn(): profiles changed, the limit may have too (wake the app)
        self._load()

    # ---- persistence -------------------------------------------------------------

    def _load(self):
        if self._store is None:
            return
        try:
            data = self._store.load()
        except (MemoryError, OSError):
            # No room to read it, or a file not readable now: not "no profiles" (the next
            # commit would replace them with less); the engine is not made (service.engine).
            raise
        except Exception as e:  # a broken store must not stop the charger
            log.error("smart", "load failed", e)
            return
        if data is None:
            return
        try:
            if data["v"] != _FORMAT:
                raise ValueError("format")
            items = []
            for p in data["p"]:
                if len(p) != _FIELDS or len(p[_PER]) % 3 or not p[_PER]:
                    raise ValueError("profile")
                items.append(p)
        except Exception as e:
            log.error("smart", "profiles.json ignored", e)
            return
        self._p = items
        self._sort()

    def _save(self):
        if self._store is None:
            return True
        try:
            self._store.save({"v": _FORMAT, "p": self._p})
            return True
        except MemoryError:  # our shortage: the caller's CALL gets InternalError
            raise
        except Exception as e:
            log.error("smart", "save failed", e)
            return False

    def _sort(self):
        self._p.sort(key=lambda p: (-p[_STACK], -p[_CONN]))

    def _commit(self, new_list):
        """Adopt new_list if it can be persisted; else keep the old one."""
        old = self._p
        self._p = new_list
        self._sort()
        try:
            saved = self._save()
        except BaseException:
            self._p = old
            raise
        if saved:
            if self.on_change is not None:
                self.on_change()
            return True
        self._p = old
        return False

    # ---- configuration and inputs ------------------------------------------------

    def _cfg(self, name):
        v = None
        if self._config is not None:
            try:
                v = self._config.get(name)
            except Exception:
                v = None
        if v is None:  # a configuration without the key: this feature's default (KEYS)
            from firmware.smart_charging.service import KEYS

            for e in KEYS:
                if e[0] == name:
                    return e[3]
        return v

    def set_voltage(self, volts):
        """Measured phase voltage for W↔A; None or implausible (< 100 V) → nominal 230 V."""
        self.voltage = volts if volts is not None and volts >= 100 else _NOMINAL_V

    def set_local_limit(self, name, amps):
        """A local cap in A per phase (load management, temperature…); None removes it."""
        if amps is None:
            self._local.pop(name, None)
        else:
            self._local[name] = amps

    def count(self):
        return len(self._p)

    # ---- SetChargingProfile / ClearChargingProfile --------------------------------

    def set_profile(self, connector_id, profile, tx=None, now=None):
        """Install csChargingProfiles for connector_id → "Accepted" or "Rejected".

        tx: the connector's active transaction (`transaction_id`, `start_time`) or None.
        now: Unix seconds, used when an Absolute/Recurring profile has no startSchedule.
        """
        try:
            p = self._parse(connector_id, profile, tx, now)
        except MemoryError:  # our shortage, not a bad profile: InternalError, not Rejected
            raise
        except Exception as e:  # malformed content or out of the configured limits
            log.info("smart", "profile rejected:", e)
            return REJECTED
        keep = []
        for q in self._p:
            same_slot = q[_PUR] == p[_PUR] and q[_STACK] == p[_STACK] and q[_CONN] == p[_CONN]
            if q[_ID] != p[_ID] and not same_slot:
                keep.append(q)
        keep.append(p)
        if len(keep) > int(self._cfg("MaxChargingProfilesInstalled")):
            log.info("smart", "profile rejected: MaxChargingProfilesInstalled")
            return REJECTED
        return ACCEPTED if self._commit(keep) else REJECTED

    def _parse(self, conn, prof, tx, now):
        conn = _int(conn)
        if conn < 0 or conn > self.connectors:
            raise ValueError("connectorId")
        pur = PURPOSES.index(prof["chargingProfilePurpose"])
        kind = _KINDS.index(prof["chargingProfileKind"])
        stack = _int(prof["stackLevel"])
        if stack < 0 or stack > int(self._cfg("ChargeProfileMaxStackLevel")):
            raise ValueError("stackLevel")
        txid = prof.get("transactionId")
        if pur == _CPMAX and conn != 0:
            raise ValueError("ChargePointMaxProfile needs connector 0")
        if pur == _TX:
            if conn == 0 or tx is None:
                raise ValueError("TxProfile needs an active transaction")
            if txid is not None and txid != tx.transaction_id:
                raise ValueError("transactionId")
            txid = tx.transaction_id
        elif txid is not None:
            raise ValueError("transactionId only for TxProfile")
        cycle = 0
        if kind == _REC:
            cycle = (_DAY, _WEEK)[("Daily", "Weekly").index(prof["recurrencyKind"])]
        vfrom = _opt_time(prof, "validFrom")
        vto = _opt_time(prof, "validTo")
        if vfrom is not None and vto is not None and vto <= vfrom:
            raise ValueError("validTo")
        sch = prof["chargingSchedule"]
        unit = ("A", "W").index(sch["chargingRateUnit"])
        allowed = self._cfg("ChargingScheduleAllowedChargingRateUnit")
        if ("Current", "Power")[unit] not in allowed:
            raise ValueError("chargingRateUnit")
        start = None
        if kind != _REL:
            start = _opt_time(sch, "startSchedule")
            if start is None:
                start = now if now is not None else clock.now()
        dur = sch.get("duration")
        if dur is not None and _int(dur) < 0:
            raise ValueError("duration")
        minrate = sch.get("minChargingRate")
        if minrate is not None:
            minrate = _tenths(minrate)
        periods = sch["chargingSchedulePeriod"]
        n = len(periods)
        if n < 1 or n > int(self._cfg("ChargingScheduleMaxPeriods")):
            raise ValueError("chargingSchedulePeriod count")
        flat = []
        last = -1
        for per in periods:
            s = _int(per["startPeriod"])
            # §5.16: startPeriod also ends the previous period; the first starts the schedule.
            if s <= last or (last < 0 and s != 0):
                raise ValueError("startPeriod")
            last = s
            ph = per.get("numberPhases")
            ph = 0 if ph is None else _int(ph)
            if ph < 0 or ph > 3:
                raise ValueError("numberPhases")
            flat.append(s)
            flat.append(_tenths(per["limit"]))
            flat.append(ph)
        return [
            _int(prof["chargingProfileId"]),
            conn,
            pur,
            stack,
            kind,
            cycle,
            vfrom,
            vto,
            txid,
            start,
            dur,
            unit,
            minrate,
            flat,
        ]

    def clear(self, profile_id=None, connector_id=None, purpose=None, stack_level=None):
        """ClearChargingProfile → "Accepted" when something was removed, else "Unknown".

        With an id only that profile is removed (the other criteria are ignored, §6.9);
        otherwise every profile matching all given criteria; nothing given clears all.
        """
        pur = None
        if purpose is not None:
            if purpose not in PURPOSES:
                return UNKNOWN
            pur = PURPOSES.index(purpose)
        keep = []
        for p in self._p:
            if profile_id is not None:
                hit = p[_ID] == profile_id
            else:
                hit = (
                    (connector_id is None or p[_CONN] == connector_id)
                    and (pur is None or p[_PUR] == pur)
                    and (stack_level is None or p[_STACK] == stack_level)
                )
            if not hit:
                keep.append(p)
        if len(keep) == len(self._p):
            return UNKNOWN
        self._commit(keep)
        return ACCEPTED

    def end_transaction(self, connector_id):
        """The transaction on connector_id ended: its TxProfiles go (§3.13.2)."""
        keep = [p for p in self._p if not (p[_PUR] == _TX and p[_CONN] == connector_id)]
        if len(keep) != len(self._p):
            self._commit(keep)

    # ---- evaluation ----------------------------------------------------------------

    def _offset(self, p, t, anchor):
        """Seconds into p's schedule at t, or -1 when p is not in force at t."""
        if p[_VFROM] is not None and t < p[_VFROM]:
            return -1
        if p[_VTO] is not None and t >= p[_VTO]:
            return -1
        if p[_KIND] == _REL:
            off = 0 if anchor is None else t - anchor
        else:
            off = t - p[_START]
        if off < 0:
            return -1
        if p[_KIND] == _REC:
            off %= p[_CYCLE]
        if p[_DUR] is not None and off >= p[_DUR]:
            return -1
        return off

    def _amps(self, p, off):
        """(A per phase, numberPhases or 0) of p's period at offset off."""
        per = p[_PER]
        i = 0
        n = len(per)
        while i + 3 < n and per[i + 3] <= off:
            i += 3
        lim = per[i + 1] / 10
        ph = per[i + 2]
        if p[_UNITW]:
            # Convert with the phases the car can really draw on: numberPhases only when
            # the charger switches to it; otherwise every phase it supplies (a 1-phase
            # figure on a 3-phase car would allow three times the power).
            n = ph or 3
            if not self.can_switch or n > self.phases_hw:
                n = self.phases_hw
            lim = lim / (self.voltage * n)
        return lim, ph

    def _eval(self, t, conn, txid, anchor):
        # The list is sorted by stack level, so the first profile in force of each group is
        # the one that counts. TxProfile overrides TxDefaultProfile whatever their levels.
        hit = [None, None, None]
        for p in self._p:
            pur = p[_PUR]
            if hit[pur] is not None:
                continue
            if pur == _TX:
                if txid is None or p[_TXID] != txid or p[_CONN] != conn:
                    continue
            elif pur == _TXDEF and p[_CONN] != 0 and p[_CONN] != conn:
                continue
            off = self._offset(p, t, anchor)
            if off >= 0:
                hit[pur] = self._amps(p, off)
        if hit[_TX] is not None:
            hit[_TXDEF] = None
        cap = None
        phases = 3
        for h in hit:
            if h is not None:
                if cap is None or h[0] < cap:
                    cap = h[0]
                if h[1] and h[1] < phases:
                    phases = h[1]
        for a in self._local.values():
            if cap is None or a < cap:
                cap = a
        return cap, phases

    def limit_at(self, t, connector_id=1, tx=None, anchor=None):
        """(amps per phase or None for no limit, phases) at Unix second t.

        tx: the connector's active transaction or None. anchor: start of Relative profiles
        (default: the transaction start; without a transaction, their first period).
        Under 6 A the charger must pause the car (IEC 61851: no PWM below 6 A).
        """
        if tx is not None:
            if anchor is None:
                anchor = tx.start_time
            return self._eval(t, connector_id, tx.transaction_id, anchor)
        return self._eval(t, connector_id, None, anchor)

    def _edge(self, p, t, anchor):
        """First second after t at which p's contribution may change, or None."""
        best = None
        for c in (p[_VFROM], p[_VTO]):
            if c is not None and c > t and (best is None or c < best):
                best = c
        kind = p[_KIND]
        if kind == _REL:
            if anchor is None:
                return best
            base = anchor
        else:
            base = p[_START]
        dur = p[_DUR]
        if kind == _REC and t >= base:
            cyc = p[_CYCLE]
            base += (t - base) // cyc * cyc
            end = base + cyc
            if dur is not None and dur < cyc:
                end = base + dur if base + dur > t else base + cyc
        else:
            end = None if dur is None else base + dur
        if end is not None and end > t and (best is None or end < best):
            best = end
        per = p[_PER]
        for i in range(0, len(per), 3):
            c = base + per[i]
            if c > t:
                if best is None or c < best:
                    best = c
                break
        return best

    def _next_edge(self, t, anchor):
        best = None
        for p in self._p:
            c = self._edge(p, t, anchor)
            if c is not None and (best is None or c < best):
                best = c
        return best

    def next_change(self, t, connector_id=1, tx=None, anchor=None):
        """The next Unix second after t at which limit_at changes, or None if it never does.

        Repeating profiles whose boundaries never change the limit are walked for at most
        _MAX_STEPS boundaries; then the last one is returned as a time to look again."""
        txid = None
        if tx is not None:
            txid = tx.transaction_id
            if anchor is None:
                anchor = tx.start_time
        cur = self._eval(t, connector_id, txid, anchor)
        b = t
        for _ in range(_MAX_STEPS):
            b = self._next_edge(b, anchor)
            if b is None:
                return None
            if self._eval(b, connector_id, txid, anchor) != cur:
                return b
        return b

    def composite(self, connector_id, start, duration, unit="A", tx=None, max_periods=48):
        """The composite chargingSchedule (wire dict without startSchedule) for
        [start, start + duration) in unit "A" or "W"; None for an unknown connector.

        At most max_periods periods (the answer must fit the heap): a longer schedule is
        cut, and its duration shortened to where the last period reported ends."""
        if connector_id < 0 or connector_id > self.connectors or duration < 0:
            return None
        txid = None
        anchor = start
        if tx is not None:
            txid = tx.transaction_id
            anchor = tx.start_time
        end = start + duration
        out = []
        last = None
        t = start
        for _ in range(_MAX_STEPS):
            a, ph = self._eval(t, connector_id, txid, anchor)
            if a is None:
                a = self.max_current
            v = floor_tenth(a * self.voltage * ph if unit == "W" else a)
            if last is None or v != last[0] or ph != last[1]:
                if len(out) >= max_periods:
                    break
                out.append({"startPeriod": t - start, "limit": v, "numberPhases": ph})
                last = (v, ph)
            t = self._next_edge(t, anchor)
            if t is None or t >= end:
                break
        if t is not None and t < end:  # cut short: report only what was computed
            duration = t - start
        return {"duration": duration, "chargingRateUnit": unit, "chargingSchedulePeriod": out}
