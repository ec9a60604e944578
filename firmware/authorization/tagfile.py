"""Tables of idTags on flash, read a line at a time: the local authorization list and the
authorization cache (issue 9). RAM holds none of their entries: a list of 100 cards took
~15 KiB of heap when it was a dict, now a lookup reads the file (a card is presented, an
update is applied: rare events) and only counts stay in RAM.

File (JSON lines): the first line is a header object {"v": 2, ...}; then one entry a line, a
JSON array [idTag, status, expiryDate or null, parentIdTag or null, ...] (the cache adds its
last use). A file is only ever replaced whole (fs.write_atomic), so a power cut leaves the
old table or the new one. A line that does not parse makes the whole file unreadable
(load()): the caller starts empty with an error logged, never a failed boot. No room to read
it (MemoryError), or a file there but not readable now (OSError), raises: the table is not
taken for empty (a write would then replace it with less).
"""

import json

import fs
import log

FORMAT = 2


def _row(line, width):
    r = json.loads(line)
    if (not isinstance(r, list) or len(r) != width or not isinstance(r[0], str)
            or not isinstance(r[1], str)):
        raise ValueError("bad entry")
    return r


def scan(path, width, fn=None):
    """The header of the table at `path` (None when there is none) after calling fn(row) for
    each entry; raises ValueError for a line that is not an entry of `width` fields."""
    try:
        f = open(path)
    except OSError:
        if fs.exists(path):  # there, but not readable now (no file handle left...)
            raise
        return None
    with f:
        head = json.loads(f.readline() or "null")
        if not isinstance(head, dict):
            raise ValueError("bad header")
        while True:
            line = f.readline()
            if not line:
                return head
            r = _row(line, width)
            if fn is not None:
                fn(r)


def load(path, width, tag, fn=None):
    """scan(), with a table that cannot be read logged (tag) and taken as absent: (header or
    None, number of entries)."""
    n = [0]

    def each(r):
        n[0] += 1
        if fn is not None:
            fn(r)

    try:
        return scan(path, width, each), n[0]
    except (MemoryError, OSError):
        # Not a bad table: no room to read it, or a file not readable now. Taken as empty,
        # the next write would replace the table with less (the authorization is loaded
        # again whenever it is used, on a tight heap too): the caller fails instead.
        raise
    except Exception as e:  # noqa: BLE001 - ValueError, a bad shape: never a failed boot
        log.error(tag, "unreadable, starting empty:", repr(e))
        return None, 0


def find(path, width, id_tag):
    """The entry of `id_tag`, or None (also when the file is gone or a line is bad)."""
    try:
        f = open(path)
    except OSError:
        return None
    with f:
        f.readline()
        while True:
            line = f.readline()
            if not line:
                return None
            try:
                r = _row(line, width)
            except ValueError:
                continue  # load() found the file whole; a bad line is not this tag
            if r[0] == id_tag:
                return r


def write(path, head, rows):
    """Replace the table at `path`: `head` (a dict, "v" added), then rows(put) calls
    put(entry) for each entry in its order. Returns the number of entries written."""
    n = [0]

    def out(f):
        head["v"] = FORMAT
        f.write(json.dumps(head))
        f.write("\n")

        def put(r):
            f.write(json.dumps(r))
            f.write("\n")
            n[0] += 1

        rows(put)

    fs.write_atomic(path, out)
    return n[0]


def migrate(old, path, width, head_of):
    """Called first by both tables at boot. A replace that a power cut stopped between the
    removal of the old table and the rename of the new one (FAT: fs.commit) left only
    `<path>.tmp`, the complete new table: it takes its place. Then a table of format 1 (one
    JSON document at `old`: {"e": {idTag: [fields]}, ...}) is written as lines at `path`
    once, and removed. One that cannot be read is logged and removed (it never will be).
    One that cannot be written (a full flash) stays for the next boot and is returned (its
    document), so that the caller can serve it as it did before; None otherwise."""
    if not fs.exists(path) and fs.exists(path + ".tmp"):
        try:
            fs.commit(path + ".tmp", path)
        except OSError as ex:
            log.error("auth", "cannot recover", path, repr(ex))
    if fs.exists(path):
        fs.remove(old)  # beside a table of lines (a power cut between the two steps)
        return None
    d = fs.read_json(old, None)
    try:
        e = d["e"]
        rows = [[str(t)] + list(e[t])[: width - 1] for t in e]
        for r in rows:
            if len(r) != width or not isinstance(r[1], str):
                raise ValueError("bad entry")
        head = head_of(d)
    except Exception as ex:  # noqa: BLE001 - missing, corrupt, a bad shape: nothing to keep
        if d is not None:
            log.error("auth", old, "unreadable, dropped:", repr(ex))
        fs.remove(old)
        return None
    try:
        write(path, head, lambda put: [put(r) for r in rows])
    except OSError as ex:
        log.error("auth", "cannot rewrite", old, repr(ex))
        return d
    fs.remove(old)
    return None
