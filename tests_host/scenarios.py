"""One client script, both runtimes: run scenarios in-process on CPython or on the MicroPython
unix port (mp_run), with the same results.

The script defines `async def main(cfg)` that returns {scenario name: JSON-able result} and
prints each result as a JSON line {"name": ..., "res": ...}; `run(script, cfg, rt, tmp)`
returns that dict for rt "cpython" or "micropython". `guarded(coro)` (defined in PRELUDE,
available to scripts) turns an exception into {"exc": class name, "msg": reason}.
"""

import asyncio
import json
import os

from conftest import mp_run

RUNTIMES = ("cpython", "micropython")

PRELUDE = r'''
import asyncio, json, os

def exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False

async def guarded(coro):
    try:
        return await coro
    except Exception as e:
        return {"exc": type(e).__name__, "msg": getattr(e, "reason", str(e))}

async def run_all(jobs):
    out = {}
    for name, coro in jobs:
        res = await guarded(coro)
        out[name] = res
        print(json.dumps({"name": name, "res": res}))
    return out
'''


def run(script, cfg, rt, tmp, heap="2m", timeout=180):
    """Results of `script`'s main(cfg) on runtime rt; tmp: a directory for the config."""
    code = PRELUDE + script
    if rt == "cpython":
        ns = {}
        exec(compile(code, "scenarios_" + rt, "exec"), ns)
        return asyncio.run(ns["main"](cfg))
    path = os.path.join(str(tmp), "cfg-%s.json" % rt)
    with open(path, "w") as f:
        json.dump(cfg, f)
    code += "\nasyncio.run(main(json.load(open(%r))))\n" % path
    p = mp_run(code, timeout=timeout, heap=heap)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    res = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            res[d["name"]] = d["res"]
    return res
