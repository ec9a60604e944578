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
from compat import const, lend, ticks_diff, ticks_ms
from firmware import keys
from firmware.keys import API, BOOL, LAZY, OCPP, RO, SECRET

_FILE = "/config.json"
_RULES = "firmware.config_rules"
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


class Config:
    def __init__(self, data_dir, now_ms=ticks_ms):
        # Its fields and the file's settings (config_rules.py, lent for the boot).
        lend(_RULES).init(self, data_dir, now_ms)

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

    # -- writing (the rules: firmware/config_rules.py, lent for each change) --------------
    def ocpp_set(self, name, text):
        """ChangeConfiguration: "Accepted" | "Rejected" | "RebootRequired" | "NotSupported"."""
        return lend(_RULES).ocpp_set(self, name, text)

    def check(self, name, value, origin="api"):
        """Reason why update({name: value}, origin) would fail, or None."""
        return lend(_RULES).prepare(self, {name: value}, origin)[1].get(name)

    def update_errors(self, changes, origin):
        """What update(changes, origin) would answer, without applying anything."""
        return lend(_RULES).prepare(self, changes, origin)[1]

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

    def update(self, changes, origin, prepare=None):
        """Apply all of `changes` and persist, or nothing: {} or {key: reason}. Changes of
        LAZY keys only are persisted later (flush). `prepare`: the rules' prepare() when
        the caller holds them already (config_rules.ocpp_set), else they are lent."""
        new, errors = (prepare or lend(_RULES).prepare)(self, changes, origin)
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
