"""The rules of a configuration change (firmware/config.py): ChangeConfiguration's text
to a value, each value's type, range, length and allowed items, and the rules that span
keys. Lent for a change or the loading of the file at boot (compat.lend) and let go after: a
charger holds only the store (2.5 KB less heap from .mpy, 32-bit).
"""

import fs
import log
from firmware import keys
from firmware.config import url_host
from firmware.keys import API, BOOL, CSL, INT, NINT, NUM, OCPP, REBOOT, RO, ROT, STR


def init(cfg, data_dir, now_ms):
    """Config.__init__: its fields, then the settings of the file (each checked; one that
    fails is logged and left out; a corrupt file: the defaults)."""
    from firmware.config import _FILE, _no

    cfg._path = data_dir.rstrip("/") + _FILE
    cfg._now = now_ms
    cfg._keys = {}
    for e in keys.rows():
        cfg._keys[e[0]] = e
    cfg._subs = []
    cfg._v = {}
    cfg._saved = {}  # what the file holds
    cfg._dirty = None  # ticks of the oldest LAZY change not on flash yet
    cfg.writes = 0  # flash writes of the file since start
    # () -> True when a client certificate came by OCPP (set by firmware/security).
    cfg.client_cert = _no
    data = fs.read_json(cfg._path, None)  # corrupt: log.error inside, defaults
    if data is None:
        return
    if not isinstance(data, dict):
        log.error("config", "bad config file, defaults")
        return
    for name in data:
        e = cfg._keys.get(name)
        value = data[name]
        if e is None or (e[2] & RO) or check(cfg, e, value, data) is not None:
            log.warning("config", "ignored", name)
            continue
        if value != e[3]:
            cfg._v[name] = value
    if cfg.get("AuthorizationKey") and not cfg.get("AuthorizationKeyHost"):
        # Written by a firmware that did not bind the key: it belongs to the central
        # system configured now (persisted with the next update).
        cfg._v["AuthorizationKeyHost"] = url_host(cfg.get("ocppu"))
    cfg._saved = dict(cfg._v)


def ocpp_set(cfg, name, text):
    """ChangeConfiguration: "Accepted" | "Rejected" | "RebootRequired" | "NotSupported"."""
    e = cfg._keys.get(name)
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
    if cfg.update({name: value}, "ocpp", prepare):  # with these rules: not lent twice
        return "Rejected"
    return "RebootRequired" if e[2] & REBOOT else "Accepted"


def _limit(cfg, bound, pending):
    if isinstance(bound, str):
        return pending[bound] if bound in pending else cfg.get(bound)
    return bound


def check(cfg, e, value, pending=None):
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
        lo = _limit(cfg, e[4], pending)
        hi = _limit(cfg, e[5], pending)
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
    maxlen = _limit(cfg, e[5], pending)
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
                    or int(key) > cfg.get("NumberOfConnectors")):
                return "expected <connector>.<rotation>"
            if item[dot + 1 :] not in keys.ROTATIONS:
                return "unsupported rotation " + item[dot + 1 :]
        if key in seen:
            return "duplicate " + key
        seen.add(key)
    return None


def _cross(cfg, new, changes, origin):
    """Rules that span keys, on the state after the update."""
    errors = {}

    def val(k):
        return new[k] if k in new else cfg.get(k)

    sp = val("SecurityProfile")
    if "SecurityProfile" in new:
        if new["SecurityProfile"] < cfg.get("SecurityProfile") and origin != "fallback":
            errors["SecurityProfile"] = "cannot be lowered"
        elif sp in (1, 2) and not val("AuthorizationKey"):
            errors["SecurityProfile"] = "AuthorizationKey not set"
        elif sp == 3 and not (val("ocppcc") and val("ocppck")) and not cfg.client_cert():
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
    # Errors on canonical names go back under the names the caller used.
    out = {}
    for k in errors:
        out[_said(changes, k)] = errors[k]
    return out


def _said(changes, canon):
    """The name `changes` used for the key `canon` (an alias, or the key itself)."""
    hit = canon
    for c in changes:
        if keys.ALIASES.get(c, c) == canon:
            hit = c
    return hit


def prepare(cfg, changes, origin):
    """(new values by canonical name, {key: reason})."""
    errors = {}
    new = {}
    for name in changes:
        value = changes[name]
        canon = keys.ALIASES.get(name, name)
        e = cfg._keys.get(canon)
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
            value = _rot_set(cfg.get(canon), value)
        new[canon] = value
    if errors:
        return new, errors
    for canon in new:
        reason = check(cfg, cfg._keys[canon], new[canon], new)
        if reason is not None:
            errors[_said(changes, canon)] = reason
    if errors:
        return new, errors
    if new.get("AuthorizationKey"):
        # The key is sent only to the central system it was given for (firmware.ocpp.
        # session): bind it to the host of the URL in force when it is set.
        new["AuthorizationKeyHost"] = url_host(new.get("ocppu") or cfg.get("ocppu"))
    return new, _cross(cfg, new, changes, origin)


def _rot_set(text, on):
    items = [i.strip() for i in text.split(",") if i.strip() and not i.strip().startswith("1.")]
    items.append("1.STR" if on else "1.RST")
    items.sort()
    return ",".join(items)
