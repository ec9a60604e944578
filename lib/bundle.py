"""Application bundle reader: the file `make release` builds and OCPP UpdateFirmware installs.

Format 1: one JSON line (the manifest), then the files' bytes back to back in its order:

    {"format":1,"version":"1.2.0","files":[{"path":"lib/ws.mpy","size":5123,
    "sha256":"<64 hex>"},...]}\\n<5123 bytes of lib/ws.mpy>...

"files" is the manifest's last member (format and version come first). Paths are relative
to the board's root ("boot.py", "main.py", "lib/firmware/app.mpy"). The version is the
manifest's "version" and also the module `lib/version.mpy` inside the bundle
(`from version import VERSION`), so the installed firmware reports it as `fwv` and as
BootNotification firmwareVersion.

    version, count, size = bundle.info("fw.bundle")               checks the manifest
    version, count, size = await bundle.unpack("fw.bundle", "/staging")

unpack streams every file through one 1 KiB buffer into dest_dir (created as needed) and
checks its size and SHA-256. The manifest is read entry by entry, never held whole, and is
checked completely before anything is written. BundleError(reason) on a bad manifest, a path
that would leave dest_dir (absolute, "..", empty parts), a size or SHA-256 mismatch, a
truncated bundle, trailing bytes or too little free flash. The file being written when it
fails is removed; the rest of dest_dir is the caller's staging area to discard. unpack
yields to the event loop after every block, so the charger keeps running.
"""

import binascii
import hashlib
import json

from compat import asleep_ms, const
from fs import free_bytes, makedirs

FORMAT = const(1)
_BUF = const(256)  # the copy buffer: a small block, found on a fragmented heap too
_HEAD = const(256)  # format and version come first: "files" is within these bytes
_STEP = const(128)  # manifest bytes read at a time: an entry and a half at most held
_MAX_MANIFEST = const(65536)
_MAX_ENTRY = const(512)
_RESERVE = const(8192)  # flash that must stay free after unpacking
_HEX = "0123456789abcdef"


class BundleError(Exception):
    """The bundle is unusable; `reason` says why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _json(b):
    try:
        return json.loads(b)
    except ValueError:
        raise BundleError("manifest is not JSON: %r" % bytes(b[:40]))


def _check_entry(e):
    if not isinstance(e, dict):
        raise BundleError("bad file entry in manifest")
    p = e.get("path")
    if not isinstance(p, str) or not p or p[0] == "/" or "\\" in p or ":" in p:
        raise BundleError("bad path in manifest: %r" % (p,))
    for part in p.split("/"):
        if part in ("", ".", ".."):
            raise BundleError("bad path in manifest: %r" % (p,))
    n = e.get("size")
    s = e.get("sha256")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise BundleError("bad size for " + p)
    if not isinstance(s, str) or len(s) != 64 or any(c not in _HEX for c in s):
        raise BundleError("bad sha256 for " + p)
    return e


class _Manifest:
    """The manifest line of an open bundle: header, then its entries one at a time."""

    def __init__(self, f, buf):
        self.f = f
        # Where the line ends: the first file starts after it.
        n = 0
        while True:
            k = f.readinto(buf)
            if not k:
                raise BundleError("truncated: no manifest line")
            i = _newline(buf, k)
            if i >= 0:
                self.end = n + i
                break
            n += k
            if n > _MAX_MANIFEST:
                raise BundleError("manifest longer than %d bytes" % _MAX_MANIFEST)
        f.seek(0)
        head = f.read(self.end if self.end < _HEAD else _HEAD)
        i = head.find(b'"files"')
        j = head.find(b"[", i)
        if i < 0 or j < 0 or head[i + 7 : j].strip() != b":":
            raise BundleError('manifest without "files" after format and version')
        h = _json(head[:i].rstrip().rstrip(b",") + b"}")
        if not isinstance(h, dict) or h.get("format") != FORMAT:
            raise BundleError("not a format %d bundle" % FORMAT)
        v = h.get("version")
        if not isinstance(v, str) or not 0 < len(v) <= 50:
            raise BundleError("bad version in manifest")
        self.version = v
        self.start = j + 1

    def _read(self, pos, n):
        self.f.seek(pos)
        return self.f.read(min(n, self.end - pos))

    def entries(self):
        """Yield every file entry, checked. Seeks before each read: f is shared."""
        pos = self.start
        pend = b""
        state = 0  # 0: first entry or "]", 1: "," or "]", 2: an entry
        while True:
            pend = pend.lstrip()
            c = pend[:1]
            if not c or (state != 1 and c != b"]" and pend.find(b"}") < 0):
                if len(pend) > _MAX_ENTRY or pos >= self.end:
                    raise BundleError("bad file list in manifest")
                more = self._read(pos, _STEP)
                pos += len(more)
                pend += more
                continue
            if c == b"]" and state != 2:
                break
            if state == 1:
                if c != b",":
                    raise BundleError("bad file list in manifest")
                pend = pend[1:]
                state = 2
                continue
            if c != b"{":
                raise BundleError("bad file list in manifest")
            i = pend.find(b"}")
            e = pend[: i + 1]
            pend = pend[i + 1 :]
            state = 1
            yield _check_entry(_json(e))
        # After "]" only the closing "}" of the manifest, up to the end of the line.
        rest = pend[1:] + self._read(pos, 16)
        if rest.strip() != b"}" or pos + 16 < self.end:
            raise BundleError("unexpected data after the file list in manifest")


def _newline(buf, k):
    """Index of the first newline in buf[:k], or -1 (no copy of the buffer)."""
    for i in range(k):
        if buf[i] == 10:
            return i
    return -1


def _scan(f, buf):
    """Check the whole manifest -> (_Manifest, file count, total bytes)."""
    m = _Manifest(f, buf)
    count = 0
    total = 0
    for e in m.entries():
        count += 1
        total += e["size"]
    if not count:
        raise BundleError("no files in manifest")
    return m, count, total


def _open(path):
    try:
        return open(path, "rb")
    except OSError:
        raise BundleError("cannot open " + path)


def info(path):
    """(version, file count, total bytes of the files) of the bundle at path, checked."""
    with _open(path) as f:
        m, count, total = _scan(f, bytearray(_BUF))
    return m.version, count, total


async def unpack(path, dest_dir):
    """Write every file of the bundle at `path` under dest_dir, each checked
    -> (version, file count, total bytes)."""
    buf = bytearray(_BUF)
    mv = memoryview(buf)
    with _open(path) as f:
        m, count, total = _scan(f, buf)
        makedirs(dest_dir)
        free = free_bytes(dest_dir)
        if free is not None and total + _RESERVE > free:
            raise BundleError("not enough flash: %d bytes needed, %d free" % (total, free))
        base = dest_dir.rstrip("/") + "/"
        pos = m.end + 1
        for e in m.entries():
            await _write(f, pos, mv, base, e)
            pos += e["size"]
        f.seek(pos)
        if f.readinto(buf):
            raise BundleError("trailing bytes after the last file")
    return m.version, count, total


async def _write(f, pos, mv, base, e):
    name = e["path"]
    target = base + name
    i = name.rfind("/")
    if i > 0:
        makedirs(base + name[:i])
    h = hashlib.sha256()
    left = e["size"]
    size = len(mv)
    try:
        with open(target, "wb") as out:
            while left:
                f.seek(pos)  # the manifest reader moves f between blocks
                k = f.readinto(mv[: left if left < size else size])
                if not k:
                    raise BundleError("truncated in %s: %d bytes missing" % (name, left))
                h.update(mv[:k])
                out.write(mv[:k])
                left -= k
                pos += k
                await asleep_ms(0)
        if binascii.hexlify(h.digest()).decode() != e["sha256"]:
            raise BundleError("sha256 mismatch in " + name)
    except BaseException as err:
        import os

        try:
            os.remove(target)
        except OSError:
            pass
        if isinstance(err, OSError):  # ENOSPC, EIO...
            raise BundleError("cannot write %s: %r" % (name, err))
        raise
