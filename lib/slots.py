"""A/B application slots on the filesystem (UpdateFirmware on every board).

An update unpacks its bundle (lib/bundle.py) into the inactive one of two directories of
the data directory, `app_a` and `app_b` (`/app_a` on a board), then writes the pointer file
`slot.json` atomically (last, so a power cut at any moment leaves either the old or the new
pointer, both bootable):

    {"run": "app_b", "prev": "app_a" or "" (the base image), "ok": false, "try": 0}

`boot(data)` runs first in main.py, before any other module is imported: it puts
`<data>/<run>/lib` at the very front of sys.path, before '' (the current directory; the
script's directory on the unix port) and '.frozen', so the slot's .mpy files win over the
modules frozen into the image and over /lib. A slot that is not confirmed yet
("ok": false) counts its boots; after MAX_TRIES boots without `confirm()` (which the
firmware calls once the new slot's BootNotification was Accepted) the previous slot comes
back and the pointer records the failed one ("failed": "app_b") for InstallationFailed.
A missing or corrupt pointer, or a slot directory without lib/, means the base image.
main.py of the slot is not run: the launcher main.py of the image stays (it only calls
`boot` and the application). Only builtins are imported here, so every application module
comes from the selected slot.
"""

import json
import os
import sys

FILE = "slot.json"
SLOTS = ("app_a", "app_b")
MAX_TRIES = 3


def _path(data):
    return data.rstrip("/") + "/" + FILE


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def read(data):
    """The pointer (a dict); the base image when missing or unreadable."""
    p = _path(data)
    for name in (p, p + ".tmp"):  # a power cut between remove and rename (FAT) leaves .tmp
        try:
            with open(name) as f:
                d = json.load(f)
            if isinstance(d, dict) and d.get("run") in SLOTS + ("",):
                return d
        except (OSError, ValueError):
            pass
    return {"run": "", "prev": "", "ok": True}


def write(data, d):
    """Replace the pointer atomically (write a temporary, flush, rename over)."""
    p = _path(data)
    with open(p + ".tmp", "w") as f:
        f.write(json.dumps(d))
        f.flush()
        if hasattr(os, "fsync"):
            os.fsync(f.fileno())
    try:
        os.rename(p + ".tmp", p)
    except OSError:  # FAT refuses to rename over a file: read() falls back to the .tmp
        os.remove(p)
        os.rename(p + ".tmp", p)


def usable(data, slot):
    return slot in SLOTS and _exists(data.rstrip("/") + "/" + slot + "/lib")


def boot(data):
    """Select the slot to run (count a trial boot, roll back after MAX_TRIES); put its lib
    first on sys.path. Returns the pointer in effect. Never raises: a flash error means the
    base image runs."""
    try:
        d = read(data)
        run = d["run"]
        if run and not d.get("ok"):
            n = d.get("try", 0) + 1
            if n > MAX_TRIES or not usable(data, run):
                prev = d.get("prev", "")
                d = {"run": prev if usable(data, prev) else "", "prev": "", "ok": True,
                     "failed": run}
            else:
                d["try"] = n
            write(data, d)
        run = d["run"]
        if run and usable(data, run):
            sys.path.insert(0, data.rstrip("/") + "/" + run + "/lib")
        return d
    except Exception as e:  # noqa: BLE001 - the base image must start whatever happened
        print("E slots:", repr(e))
        return {"run": "", "prev": "", "ok": True}


def switch(data, slot):
    """Run `slot` from the next boot on, on trial (the last step of an installation)."""
    cur = read(data)
    write(data, {"run": slot, "prev": cur["run"] if cur.get("ok") else cur.get("prev", ""),
                 "ok": False, "try": 0})


def confirm(data):
    """The running slot works (its BootNotification was Accepted): keep it. Returns the
    pointer; "failed" (a rolled-back slot) is left for the caller to report and clear."""
    d = read(data)
    if d["run"] and not d.get("ok"):
        d["ok"] = True
        d["try"] = 0
        write(data, d)
    return d


def inactive(data):
    """The slot an update may overwrite (never the running or the trial one)."""
    return SLOTS[1] if read(data)["run"] == SLOTS[0] else SLOTS[0]
