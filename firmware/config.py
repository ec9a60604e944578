"""The persisted key store: OCPP standard keys and product keys in one JSON file.

`<data_dir>/config.json` holds only the values that differ from the defaults in
`firmware/keys.py`; unknown or invalid entries in it are dropped with a warning (upgrade and
downgrade safe), a corrupt file gives the defaults and a log.error, never an exception.
Every applied update rewrites the file atomically (fs.write_atomic), then calls the
subscribers with the set of changed names (canonical names plus their product aliases).

Settings a controller writes often (rows flagged LAZY: `amp`, `frc`, `psm`, `fup`; a
solar-surplus controller changes `amp` every few seconds) take effect at once in RAM but
are written to flash at most once per 5 minutes (`flush()`, called every second by the app,
writes them once the oldest unsaved change is 5 minutes old), and at once on a proper
shutdown or reboot (`flush(force=True)`). So a day of such control costs at most 288 writes
of the file; a power cut loses at most the last 5 minutes of them. Any other update writes
the whole file at once, lazy values included.

Access: origin "ocpp" reaches the standard keys (CamelCase), origin "api" the product keys
(short names, aliases included). Secrets are returned by `get` for internal use only:
`ocpp_get`, `entries` and `api_view` never show them.
"""

import fs
import log
from compat import const, ticks_diff, ticks_ms
from firmware import keys
from firmware.keys import API, BOOL, CSL, INT, LAZY, NINT, NUM, OCPP, REBOOT, RO, ROT, SECRET, STR

_FILE = "/config.json"
_MISSING = object()
LAZY_MS = const(300000)  # unsaved LAZY changes reach flash at most this late


def _no():
    return False


def url_host(url):
    """The authority of a ws:// or wss:// URL (host[:port] as written, lowercase, without
    user info): the central system an AuthorizationKey belongs to."""
    rest = url.split("://", 1)[-1]
    auth = rest.split("/", 1)[0].split("?", 1)[0]
    return auth.rsplit("@", 1)[-1].lower()


def _rot_get(text):
    """ocppr view of ConnectorPhaseRotation: connector 1 wired with a non-standard rotation."""
    for item in text.split(","):
        if item.strip().startswith("1."):
            return item.strip()[2:] not in ("RST", "Unknown", "NotApplicable")
    return False


def _rot_set(text, on):
    items = [i.strip() for i in text.split(",") if i.strip() and not i.strip().startswith("1.")]
    items.append("1.STR" if on else "1.RST")
    items.sort()
    return ",".join(items)


class Config:
    def __init__(self, data_dir, now_ms=ticks_ms):
        self._path = data_dir.rstrip("/") + _FILE
        self._now = now_ms
        self._keys = {}
        for e in keys.rows():
            self._keys[e[0]] = e
        self._subs = []
        self._v = {}
        self._saved = {}  # what the file holds
        self._dirty = None  # ticks of the oldest LAZY change not on flash yet
        self.writes = 0  # flash writes of the file since start
        # () -> True when a client certificate came by OCPP (set by firmware/security).
        self.client_cert = _no
        data = fs.read_json(self._path, None)  # corrupt: log.error inside, defaults
        if data is None:
            return
        if not isinstance(data, dict):
            log.error("config", "bad config file, defaults")
            return
        for name in data:
            e = self._keys.get(name)
            value = data[name]
            if e is None or (e[2] & RO) or self._check(e, value, data) is not None:
                log.warning("config", "ignored", name)
                continue
            if value != e[3]:
                self._v[name] = value
        if self.get("AuthorizationKey") and not self.get("AuthorizationKeyHost"):
            # Written by a firmware that did not bind the key: it belongs to the central
            # system configured now (persisted with the next update).
            self._v["AuthorizationKeyHost"] = url_host(self.get("ocppu"))
        self._saved = dict(self._v)

    # -- reading ---------------------------------------------------------------------------
    def get(self, name):
        """Current value (secrets included: internal use). KeyError for unknown names."""
        canon = keys.ALIASES.get(name, name)
        value = self._v.get(canon, _MISSING)
        if value is _MISSING:
            value = self._keys[canon][3]
        if name == "ocppr":
            return _rot_get(value)
        return value

    def set_fact(self, name, value):
        """Set a read-only key from what the hardware is (e.g. ConnectorSwitch3to1Phase-
        Supported from the board): in RAM only, never persisted, no notification."""
        e = self._keys[name]
        if not e[2] & RO:
            raise ValueError(name + " is not read-only")
        if value == e[3]:
            self._v.pop(name, None)
        else:
            self._v[name] = value

    def is_secret(self, name):
        e = self._keys.get(keys.ALIASES.get(name, name))
        return e is not None and bool(e[2] & SECRET)

    def api_keys(self):
        """Names the local API reads and writes (product keys and aliases)."""
        for e in keys.rows():
            if e[2] & API:
                yield e[0]
        for name in keys.ALIASES:
            yield name

    def api_view(self, name):
        """Value for an API read: secrets show only whether they are set."""
        value = self.get(name)
        return bool(value) if self.is_secret(name) else value

    def entries(self):
        """Metadata of every key: dicts with key, type, access (R/RW/W), default, min, max
        (or allowed values / max length), reboot, ocpp, api, alias_of, doc."""
        for e in keys.rows():
            f = e[2]
            if not f & (OCPP | API):
                continue  # internal (e.g. AuthorizationKeyHost): no interface shows it
            yield {
                "key": e[0],
                "type": e[1],
                "access": "R" if f & RO else ("W" if f & SECRET else "RW"),
                "default": e[3],
                "min": keys.allowed(e) if e[1] == CSL else e[4],
                "max": e[5],
                "reboot": bool(f & REBOOT),
                "ocpp": bool(f & OCPP),
                "api": bool(f & API),
                "aliases": [a for a in keys.ALIASES if keys.ALIASES[a] == e[0]],
                "doc": keys.doc(e[0]),
            }

    def ocpp_names(self):
        for e in keys.rows():
            if e[2] & OCPP:
                yield e[0]

    def ocpp_get(self, name):
        """(value as OCPP string or None for a secret, readonly) or None when unknown."""
        e = self._keys.get(name)
        if e is None or not e[2] & OCPP:
            return None
        ro = bool(e[2] & RO)
        if e[2] & SECRET:
            return (None, ro)  # Security Whitepaper: AuthorizationKey is write-only
        value = self.get(name)
        if e[1] == BOOL:
            value = "true" if value else "false"
        return (str(value), ro)

    # -- writing ---------------------------------------------------------------------------
    def ocpp_set(self, name, text):
        """ChangeConfiguration: "Accepted" | "Rejected" | "RebootRequired" | "NotSupported"."""
        e = self._keys.get(name)
        if e is None or not e[2] & OCPP:
            return "NotSupported"
        if e[2] & RO or not isinstance(text, str):
            return "Rejected"
        t = e[1]
        if t == BOOL:
            low = text.lower()
            if low not in ("true", "false"):
                return "Rejected"
            value = low == "true"
        elif t == INT:
            s = text[1:] if text[:1] == "-" else text
            if not s or not s.isdigit():
                return "Rejected"
            value = int(text)
        elif t in (CSL, ROT):
            value = ",".join([i.strip() for i in text.split(",") if i.strip()])
        else:
            value = text
        if self.update({name: value}, "ocpp"):
            return "Rejected"
        return "RebootRequired" if e[2] & REBOOT else "Accepted"

    def subscribe(self, fn):
        self._subs.append(fn)

    def _write(self):
        fs.write_json(self._path, self._v)
        self.writes += 1
        self._saved = dict(self._v)
        self._dirty = None

    def flush(self, force=False):
        """Write unsaved LAZY changes once the oldest is LAZY_MS old (or now, with `force`:
        shutdown, reboot). True when the file was written. Never raises."""
        d = self._dirty
        if d is None or not (force or ticks_diff(self._now(), d) >= LAZY_MS):
            return False
        if self._v == self._saved:
            self._dirty = None  # changed back to what the file holds
            return False
        try:
            self._write()
        except OSError as ex:
            self._dirty = self._now()  # tried again one period later
            log.error("config", "write failed", ex)
            return False
        return True

    def _limit(self, bound, pending):
        if isinstance(bound, str):
            return pending[bound] if bound in pending else self.get(bound)
        return bound

    def _check(self, e, value, pending=None):
        """None when `value` is valid for entry `e`, else the reason."""
        pending = pending or {}
        t = e[1]
        name = e[0]
        if t == BOOL:
            return None if isinstance(value, bool) else "expected bool"
        if t == INT or t == NINT or t == NUM:
            if value is None and t != INT:
                return None
            if t == NUM and isinstance(value, float):
                if value - value != 0:
                    return "expected a finite number"
            elif not isinstance(value, int) or isinstance(value, bool):
                return "expected a number" if t == NUM else "expected int"
            lo = self._limit(e[4], pending)
            hi = self._limit(e[5], pending)
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                return "out of range %s..%s" % (lo, hi)
            return None
        if not isinstance(value, str):
            return "expected string"
        if t == STR:
            # "" always means "not set"; otherwise the length range applies.
            if value and not e[4] <= len(value) <= e[5]:
                return "length %d..%d" % (e[4], e[5])
            if name == "ocppu" and value and not value.startswith(("ws://", "wss://")):
                return "must start with ws:// or wss://"
            if name in ("ocppck", "ocppcc", "ocppsc") and value:
                if not value.startswith("-----BEGIN "):
                    return "expected PEM"
            return None
        items = [i for i in value.split(",") if i] if value else []
        maxlen = self._limit(e[5], pending)
        if len(items) > maxlen:
            return "too many values (max %d)" % maxlen
        seen = set()
        for item in items:
            if t == CSL:
                if item not in keys.allowed(e):
                    return "unsupported value " + item
                key = item
            else:
                # <connector>.<rotation>, the connector as OCPP writes it: 0..n, no leading
                # zero ("01.RST" would be stored as given and misread), once per connector.
                dot = item.find(".")
                key = item[:dot]
                if (dot < 1 or key.strip("0123456789") or (key[0] == "0" and dot > 1)
                        or int(key) > self.get("NumberOfConnectors")):
                    return "expected <connector>.<rotation>"
                if item[dot + 1 :] not in keys.ROTATIONS:
                    return "unsupported rotation " + item[dot + 1 :]
            if key in seen:
                return "duplicate " + key
            seen.add(key)
        return None

    def _cross(self, new, changes, origin):
        """Rules that span keys, on the state after the update."""
        errors = {}

        def val(k):
            return new[k] if k in new else self.get(k)

        sp = val("SecurityProfile")
        if "SecurityProfile" in new:
            if new["SecurityProfile"] < self.get("SecurityProfile") and origin != "fallback":
                errors["SecurityProfile"] = "cannot be lowered"
            elif sp in (1, 2) and not val("AuthorizationKey"):
                errors["SecurityProfile"] = "AuthorizationKey not set"
            elif sp == 3 and not (val("ocppcc") and val("ocppck")) and not self.client_cert():
                errors["SecurityProfile"] = "client certificate not set"
        url = val("ocppu")
        if sp >= 2 and url and not url.startswith("wss://"):
            errors["SecurityProfile" if "SecurityProfile" in new else "ocppu"] = "needs wss://"
        if sp in (1, 2) and "AuthorizationKey" in new and not new["AuthorizationKey"]:
            errors["AuthorizationKey"] = "needed by SecurityProfile"
        if sp >= 2:
            # Security Whitepaper: with TLS the server is always verified.
            for k in ("ocppss", "ocppcn"):
                if val(k) and (k in new or "SecurityProfile" in new):
                    errors[k if k in new else "SecurityProfile"] = (
                        "server verification required by SecurityProfile %d" % sp)
        # Map errors on canonical names back to the names the caller used.
        out = {}
        for k in errors:
            hit = k
            for c in changes:
                if keys.ALIASES.get(c, c) == k:
                    hit = c
            out[hit] = errors[k]
        return out

    def check(self, name, value, origin="api"):
        """Reason why update({name: value}, origin) would fail, or None."""
        return self._prepare({name: value}, origin)[1].get(name)

    def update_errors(self, changes, origin):
        """What update(changes, origin) would answer, without applying anything."""
        return self._prepare(changes, origin)[1]

    def _prepare(self, changes, origin):
        """(new values by canonical name, {key: reason})."""
        errors = {}
        new = {}
        for name in changes:
            value = changes[name]
            canon = keys.ALIASES.get(name, name)
            e = self._keys.get(canon)
            if name in keys.ALIASES:
                known = origin == "api"
            else:
                known = e is not None and bool(e[2] & (API if origin == "api" else OCPP))
            if not known:
                errors[name] = "unknown key"
                continue
            if e[2] & RO:
                errors[name] = "read-only"
                continue
            if name == "ocppr":
                if not isinstance(value, bool):
                    errors[name] = "expected bool"
                    continue
                value = _rot_set(self.get(canon), value)
            new[canon] = value
        if errors:
            return new, errors
        for canon in new:
            reason = self._check(self._keys[canon], new[canon], new)
            if reason is not None:
                hit = canon
                for c in changes:
                    if keys.ALIASES.get(c, c) == canon:
                        hit = c
                errors[hit] = reason
        if errors:
            return new, errors
        if new.get("AuthorizationKey"):
            # The key is sent only to the central system it was given for (firmware.ocpp.
            # session): bind it to the host of the URL in force when it is set.
            new["AuthorizationKeyHost"] = url_host(new.get("ocppu") or self.get("ocppu"))
        return new, self._cross(new, changes, origin)

    def update(self, changes, origin):
        """Apply all of `changes` and persist, or nothing: {} or {key: reason}. Changes of
        LAZY keys only are persisted later (flush)."""
        new, errors = self._prepare(changes, origin)
        if errors:
            return errors
        changed = set()
        old = dict(self._v)
        lazy = True
        for canon in new:
            if new[canon] != self.get(canon):
                changed.add(canon)
                lazy = lazy and bool(self._keys[canon][2] & LAZY)
                if new[canon] == self._keys[canon][3]:
                    self._v.pop(canon, None)
                else:
                    self._v[canon] = new[canon]
        if not changed:
            return {}
        if lazy:
            if self._dirty is None:
                self._dirty = self._now()
        else:
            try:
                self._write()
            except OSError as ex:
                self._v = old
                log.error("config", "write failed", ex)
                return {name: "storage error" for name in changes}
        for a in keys.ALIASES:
            if keys.ALIASES[a] in changed:
                changed.add(a)
        for fn in self._subs:
            try:
                fn(changed)
            except Exception as ex:  # a broken subscriber must not undo a persisted update
                log.error("config", "subscriber failed", ex)
        return {}
