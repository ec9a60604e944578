"""Atomic file writes and JSON files with a safe fallback (littlefs, FAT, POSIX).

A file is replaced by writing `<path>.tmp` in the same directory, flushing it (fsync where
the port has it; littlefs commits on close), then renaming it over the old file. A power cut
leaves either the old or the new file; a stray `.tmp` is harmless and `cleanup(dir)` removes
it at boot. MicroPython's `os` has no `os.path`, so paths are plain strings with "/".
"""

import json
import os

import log

_TMP = ".tmp"


def exists(path):
    """True when `path` is there (os.stat; MicroPython has no os.path)."""
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def saved(path):
    """True when a file written with write_atomic is there to be read: `path`, or only its
    complete `.tmp` (a FAT rename cut short; read_json takes it)."""
    return exists(path) or exists(path + _TMP)


_EEXIST = 17  # errno: FAT (oofatfs) refuses to rename over an existing file


def write_atomic(path, data):
    """Replace `path` with `data` so that a reader sees old or new, never a mix. `data` is str,
    bytes, or a function that writes the content into the (text) file it is given, so that a
    large document is never held whole.

    On any failure the old file stays in place and the error is raised. Only when the
    filesystem refuses to rename over an existing file (FAT) is the old file removed first;
    from then on the complete `.tmp` is never deleted, since it may be the only copy
    (read_json falls back to it).
    """
    tmp = path + _TMP
    try:
        with open(tmp, "wb" if isinstance(data, (bytes, bytearray)) else "w") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            sync = getattr(os, "fsync", None)
            if sync is not None:
                sync(f.fileno())
    except BaseException:
        remove(tmp)
        raise
    commit(tmp, path)


def commit(tmp, path):
    """Put the complete file `tmp` in the place of `path` (write_atomic's last step; also
    for a file written ahead and kept only once it is known to be wanted). On a failure
    `tmp` is removed and the old `path` stays."""
    try:
        os.rename(tmp, path)
    except OSError as e:
        if not (e.args and e.args[0] == _EEXIST and exists(path)):
            # ENOSPC, EIO…: the old file is untouched; drop the temporary and report.
            remove(tmp)
            raise
        os.remove(path)
        os.rename(tmp, path)


def remove(path):
    """Remove the file if it is there (a leftover, a staged file not wanted)."""
    try:
        os.remove(path)
    except OSError:
        pass


def _load(path):
    with open(path) as f:
        return json.loads(f.read())


def read_json(path, default=None, expected=False, strict=False):
    """Parsed content of `path`, or `default`.

    A missing file is normal (first boot) unless `expected`; a corrupt or unreadable file
    is logged with log.error and yields `default`. Raises only MemoryError (no room to read
    it says nothing about the file) and, when `strict`, the OSError of a file that is there
    but cannot be read now (for a caller that would overwrite it taking it for absent).
    """
    try:
        return _load(path)
    except MemoryError:  # our shortage: the file is fine, the caller must not take default
        raise
    except OSError:
        if exists(path):
            if strict:
                raise
            log.error("fs", "cannot read", path)
            return default
    except Exception:  # ValueError from json on CPython and MicroPython alike
        log.error("fs", "corrupt", path)
        return default
    # Missing: a rename interrupted on FAT leaves only the complete temporary file.
    try:
        value = _load(path + _TMP)
        log.warning("fs", "recovered", path)
        return value
    except MemoryError:
        raise
    except Exception:
        pass
    if expected:
        log.error("fs", "missing", path)
    return default


def write_json(path, obj):
    """write_atomic of obj as JSON, streamed into the file by json.dump."""
    write_atomic(path, lambda f: json.dump(obj, f))


def makedirs(path):
    """Create `path` and its parents; existing directories are fine."""
    parts = path.split("/")
    cur = "/" if path.startswith("/") else ""
    for p in parts:
        if not p:
            continue
        cur = cur + p if (not cur or cur.endswith("/")) else cur + "/" + p
        if not exists(cur):
            try:
                os.mkdir(cur)
            except OSError:
                if not exists(cur):
                    raise


def cleanup(path):
    """Remove leftover temporary files in directory `path` (call at boot); returns the count."""
    n = 0
    try:
        names = os.listdir(path)
    except OSError:
        return 0
    base = path.rstrip("/") + "/"
    for name in names:
        # Keep a `.tmp` whose target is missing: it may be the only copy (see write_atomic).
        if name.endswith(_TMP) and exists(base + name[: -len(_TMP)]):
            try:
                os.remove(base + name)
                n += 1
            except OSError:
                pass
    return n


def free_bytes(path):
    """Free bytes on the filesystem holding `path`, or None where statvfs is missing."""
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:
        return None
    try:
        st = statvfs(path)
    except OSError:
        return None
    return st[4] * (st[1] or st[0])
