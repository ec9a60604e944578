"""Local HTTP API in the style of the go-eCharger API v2 (CONTRACT.md section 2).

    GET /api/status                  every readable key, one JSON object
    GET /api/status?filter=amp,car   only those keys (unknown names are left out)
    GET /api/set?amp=10&ocppu=%22wss%3A%2F%2Fh%2FCP1%22
                                     values JSON-encoded; 200 {"amp": true, "ocppu": true}.
                                     Any unknown key, read-only key, malformed JSON or invalid
                                     value: 400 {"key": "reason"} and nothing applied.
    GET /api/sim?cp=C&load=16        simulator only (404 without a simulator): plain values,
                                     `sim.control(params)` -> 200 state, ValueError -> 400.
    GET /                            the web page (web/index.html): the gzipped file at
                                     `page` on flash, streamed in pieces (httpfile.File);
                                     404 JSON when there is none
    anything else                    404 {"error": "not found"}

Secrets (`ocppck`, `wke`, `apw`; the OCPP AuthorizationKey is not an API key at all) are
write-only: a read shows `true` when set, `false` when not. Once `apw` is set every request
needs HTTP Basic with that password (any user name), else 401 with WWW-Authenticate.

Providers. Parts of the firmware add keys without touching this module: a provider is any
object with
    status(out)          add its readable keys to the dict `out` (only keys it owns: a
                         filtered read asks only the providers owning a key of the filter)
    owns(key) -> bool    whether `key` belongs to it
    check(key, value)    None when `value` (JSON-decoded) may be set, else the reason string
                         ("read-only" for keys that cannot be written)
    check_many(changes)  optional, used instead of check() when present: {key: reason} for
                         all the provider's keys of one request at once (rules across keys)
    apply(changes)       set the checked values (dict); returns None or {} on success, or
                         {key: reason} when a rule across keys fails. Only the first
                         provider (the config) may fail here; the others must accept what
                         their check() passed, so a request is applied completely or not
                         at all.
The config is always the first provider (its product keys); the ones given follow in order;
the first that owns a key decides.
"""

import json

import httpd


class ConfigProvider:
    """The product keys of firmware.config: `ocppe`, `amp`, `ocpph` ..."""

    def __init__(self, config):
        self.config = config
        self._names = tuple(config.api_keys())

    def status(self, out):
        c = self.config
        for k in self._names:
            out[k] = c.api_view(k)

    def owns(self, key):
        return key in self._names

    def check(self, key, value):
        return self.config.check(key, value, "api")

    def check_many(self, changes):
        # Together, so that amp=20&ama=32 passes while ama is still 16.
        return self.config.update_errors(changes, "api")

    def apply(self, changes):
        return self.config.update(changes, "api")


def _same(a, b):
    """Compare without an early exit, so the time does not tell how much matched."""
    a = a.encode()
    b = b.encode()
    diff = len(a) ^ len(b)
    for i in range(min(len(a), len(b))):
        diff |= a[i] ^ b[i]
    return diff == 0


class Api:
    def __init__(self, config, providers=(), sim=None, page=None):
        self.config = config
        self.providers = [ConfigProvider(config)] + list(providers)
        self.sim = sim
        self.page = page
        self.server = None

    async def start(self, host="127.0.0.1", port=80, max_conns=4):
        self.server = httpd.Server(self.handle, auth=self.authorized, max_conns=max_conns)
        await self.server.start(host, port)
        return self.server

    async def close(self):
        if self.server is not None:
            await self.server.close()

    def authorized(self, headers):
        pw = self.config.get("apw")
        if not pw:
            return True
        creds = httpd.basic_credentials(headers)
        return creds is not None and _same(creds[1], pw)

    def status(self, keys=None):
        out = {}
        for p in self.providers:
            # A filtered read asks only the providers that own a key of it (no 10 cards
            # built for ?filter=car).
            if keys is None or any(p.owns(k) for k in keys):
                p.status(out)
        if keys is None:
            return out
        return {k: out[k] for k in keys if k in out}

    def set(self, query):
        """(status, body) for /api/set with the raw (percent-decoded) query values."""
        if not query:
            return 400, {"error": "no keys"}
        errors = {}
        by_provider = {}
        for key in query:
            try:
                value = json.loads(query[key])
            except Exception:  # ValueError; a deep nesting: RecursionError or MemoryError
                errors[key] = "malformed JSON"
                continue
            owner = None
            for i, p in enumerate(self.providers):
                if p.owns(key):
                    owner = i
                    break
            if owner is None:
                errors[key] = "unknown key"
                continue
            if owner not in by_provider:
                by_provider[owner] = {}
            by_provider[owner][key] = value
        for i in by_provider:
            p = self.providers[i]
            batch = by_provider[i]
            if hasattr(p, "check_many"):
                errors.update(p.check_many(batch))
                continue
            for key in batch:
                reason = p.check(key, batch[key])
                if reason:
                    errors[key] = reason
        if errors:
            return 400, errors
        for i in sorted(by_provider):  # the config (0) first: the only one that may refuse
            failed = self.providers[i].apply(by_provider[i])
            if failed:
                return 400, failed
        return 200, {k: True for k in query}

    def handle(self, path, query, headers):
        if path == "/api/status":
            f = query.get("filter")
            return 200, self.status(None if f is None else [k for k in f.split(",") if k])
        if path == "/api/set":
            return self.set(query)
        if path == "/api/sim" and self.sim is not None:
            try:
                return 200, self.sim.control(query)
            except ValueError as ex:
                return 400, {"error": str(ex.args[0]) if ex.args else "invalid"}
        if path == "/" and self.page:
            return self.web_page()
        return 404, {"error": "not found"}

    def web_page(self):
        from httpfile import File  # on first use: the page is a rare request

        try:
            f = File(self.page, "text/html; charset=utf-8")
        except OSError:
            return 404, {"error": "no web page on flash"}
        return 200, f, {"Content-Encoding": "gzip", "Cache-Control": "no-cache"}
