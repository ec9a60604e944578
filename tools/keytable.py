"""The README's configuration key tables, generated from firmware/keys.py.

    python tools/keytable.py            print both tables
    python tools/keytable.py --write    rewrite them in README.md between their markers

tests_host/test_readme.py fails when README.md and the key table disagree.
"""

import os
import sys
import tempfile

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


def entries():
    from firmware.config import Config

    with tempfile.TemporaryDirectory() as d:
        return list(Config(d).entries())


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
