"""The README's configuration key tables, generated from firmware/keys.py.

    python tools/keytable.py            print both tables
    python tools/keytable.py --write    rewrite them in README.md between their markers

tests_host/test_readme.py fails when README.md and the key table disagree.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "lib"), ROOT]

TYPES = {"b": "bool", "i": "integer", "s": "string", "l": "CSL", "n": "integer or null",
         "d": "number or null", "r": "CSL"}
MARKERS = {
    "ocpp": ("<!-- keys:ocpp -->", "<!-- /keys:ocpp -->"),
    "api": ("<!-- keys:api -->", "<!-- /keys:api -->"),
}


def _default(e):
    d = e["default"]
    if e["access"] == "W":
        return "(not set)"
    if isinstance(d, bool):
        return "true" if d else "false"
    if d is None:
        return "null"
    if d == "":
        return '""'
    return str(d)


def _range(e):
    if isinstance(e["min"], (tuple, list)) or (e["min"] is None and isinstance(e["max"], str)):
        # A list of allowed values (measurands, rotations): listed once in the README.
        return " (at most %s entries)" % e["max"] if e["max"] else ""
    if e["min"] is None and e["max"] is None:
        return ""
    lo = "" if e["min"] is None else e["min"]
    hi = "" if e["max"] is None else e["max"]
    return " (%s…%s)" % (lo, hi)


def doc(name):
    """One-line meaning of a key from its owner's docstring (firmware/keys.py, the modules
    of keys.owners(); MicroPython strips docstrings, so this runs on the host only)."""
    from firmware import keys

    texts = [keys.__doc__ or ""]
    for owner in keys.owners():
        texts.append(__import__(owner, None, None, ("KEYS",)).__doc__ or "")
    for text in texts:
        start = text.find("\n" + name + ": ")
        if start >= 0:
            start += len(name) + 3
            return text[start:text.find("\n", start)]
    return ""


def entries():
    """Metadata of every key an interface shows, from the key rows: dicts with key, type,
    access (R/RW/W), default, min, max (or allowed values / max length), reboot, ocpp, api,
    aliases, doc."""
    from firmware import keys

    out = []
    for e in keys.rows():
        f = e[2]
        if not f & (keys.OCPP | keys.API):
            continue  # internal (e.g. AuthorizationKeyHost): no interface shows it
        out.append({
            "key": e[0],
            "type": e[1],
            "access": "R" if f & keys.RO else ("W" if f & keys.SECRET else "RW"),
            "default": e[3],
            "min": keys.allowed(e) if e[1] == keys.CSL else e[4],
            "max": e[5],
            "reboot": bool(f & keys.REBOOT),
            "ocpp": bool(f & keys.OCPP),
            "api": bool(f & keys.API),
            "aliases": [a for a in keys.ALIASES if keys.ALIASES[a] == e[0]],
            "doc": doc(e[0]),
        })
    return out


def ocpp_table():
    rows = ["| key | access | type | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for e in entries():
        if not e["ocpp"]:
            continue
        access = {"R": "R", "RW": "RW", "W": "W (write-only)"}[e["access"]]
        alias = " Same value as `%s`." % "`, `".join(e["aliases"]) if e["aliases"] else ""
        rows.append("| %s | %s | %s%s | %s | %s%s |" % (
            e["key"], access, TYPES[e["type"]], _range(e), _default(e), e["doc"], alias))
    return "\n".join(rows)


def api_table():
    rows = ["| key | access | type | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for e in entries():
        if e["ocpp"]:
            for a in e["aliases"]:
                if e["type"] == "r":  # the API shows the rotation as a bool (see config.py)
                    kind, default = "bool", "false"
                else:
                    kind, default = TYPES[e["type"]], _default(e)
                rows.append("| `%s` | R/W | %s | %s | same value as the OCPP key %s |" % (
                    a, kind, default, e["key"]))
            continue
        access = {"R": "R", "RW": "R/W", "W": "W (secret)"}[e["access"]]
        rows.append("| `%s` | %s | %s%s | %s | %s |" % (
            e["key"], access, TYPES[e["type"]], _range(e), _default(e), e["doc"]))
    return "\n".join(rows)


def render(text):
    for name, table in (("ocpp", ocpp_table()), ("api", api_table())):
        start, end = MARKERS[name]
        i = text.index(start) + len(start)
        j = text.index(end)
        text = text[:i] + "\n" + table + "\n" + text[j:]
    return text


def main():
    path = os.path.join(ROOT, "README.md")
    if "--write" in sys.argv:
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(render(text))
    else:
        print(ocpp_table())
        print()
        print(api_table())


if __name__ == "__main__":
    main()
