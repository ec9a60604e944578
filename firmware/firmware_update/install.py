"""The work of an UpdateFirmware, loaded only when one runs (the transfer code with it).

A location whose path ends in `.bin` or `.app-bin` is a whole ESP32 application image: it
is streamed straight into the next OTA partition (cp.hal.ota, hal/esp32/ota.py; a board
without one fails the download). Any other file is an application bundle (lib/bundle.py).

fetch(): download the file (lib/xfer.py: http, https with the OCPP link's TLS settings,
ftp) to `<data>/fw.bundle`, await `check(sha256_hex)` when given (a SignedUpdateFirmware
verifies the file's signature there; it raises to stop), unpack it into the inactive A/B
slot (lib/bundle.py checks every file's size and SHA-256; a corrupt bundle fails here, before
anything is installed), remove the download. An application image (`.bin`, `.app-bin`)
streams into the next OTA partition instead. activate(): switch the slot pointer
(lib/slots.py) or the boot partition, the last step. discard(): remove what an attempt cut
short by a power cut left (the partial download, the half-unpacked inactive slot).

The transfer code (xfer, ~7 KB of heap from .mpy) and the unpacker (bundle, ~3.5 KB) are
never loaded together: each is imported for its step and let go (router.forget) before the
next, so the download's peak does not hold the unpacker, nor the unpacking the transfer.
"""

import os

import fs
import log
import slots
from compat import const
from firmware.firmware_update.service import BUNDLE

_FEW = const(8)  # names rmtree holds at a time


def rmtree(path):
    """Remove `path` and everything under it; True when it is gone (a missing path is).
    A directory's names are read a few at a time (os.ilistdir on MicroPython) and removed
    once each reading has ended: no list of a whole directory on the heap (a firmware slot
    holds a hundred files). What cannot be removed is passed over, and stays."""
    try:
        os.remove(path)  # a file (littlefs also removes an empty directory here)
        return True
    except OSError:
        pass
    skip = 0  # names at the head of the directory found not removable
    while True:
        names = []
        try:
            i = 0
            for name in _names(path):
                if skip <= i < skip + _FEW:
                    names.append(name)  # the rest read on, so that the reading ends
                i += 1
        except OSError:
            return not fs.exists(path)  # missing, or not a directory any more
        if not names:
            break
        for name in names:
            if not rmtree(path + "/" + name):
                skip += 1
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False


def _names(path):
    if hasattr(os, "ilistdir"):
        return (e[0] for e in os.ilistdir(path))
    return os.listdir(path)


def is_image(url):
    """A whole ESP32 application image (`.bin`, `.app-bin`), not a bundle."""
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(".bin") or path.endswith(".app-bin")


async def fetch(cp, url, data, check=None):
    """Download and stage the file -> the fields it adds to the request kept on flash:
    {"ver": bundle version} or {"ota": partition label} (raises on any failure). Short of
    memory (our want, not the file's fault): once more after router.shed(), the attempt not
    counted; a second MemoryError is the attempt's failure."""
    passed = []  # the SHA-256 the check passed: the same file is not checked (told) twice

    async def once(sha):
        if sha not in passed:
            await check(sha)
            passed.append(sha)

    try:
        return await _fetch(cp, url, data, check and once)
    except MemoryError:
        from firmware.ocpp import router

        log.memory("firmware", "download, once more")
        router.shed()
        return await _fetch(cp, url, data, check and once)


async def _download(url, sink, tls):
    import xfer
    from firmware.ocpp import router

    try:
        return await xfer.download(url, sink, tls=tls)
    finally:  # the unpacking (or the signature check) runs without it
        router.forget("xfer", "ftp", "httpfile")


async def _unpack(path, dest):
    from bundle import unpack
    from firmware.ocpp import router

    router.forget("bundle")  # `unpack` keeps it while it runs; freed with this frame
    return await unpack(path, dest)


async def _fetch(cp, url, data, check):
    tls = cp.session.tls() if url.startswith("https:") else None
    if is_image(url):
        ota = getattr(cp.hal, "ota", None)
        if ota is None:
            raise OSError("an application image, but this board has no OTA partition")
        size, sha = await _download(url, ota.open, tls)  # straight into the slot
        log.info("firmware", "image of %d bytes, sha256 %s in %s" % (size, sha, ota.label()))
        if check is not None:
            await check(sha)  # a bad signature: the partition is never made the boot one
        return {"ota": ota.label()}
    base = data.rstrip("/") + "/"
    path = base + BUNDLE
    try:
        size, sha = await _download(url, path, tls)
        log.info("firmware", "downloaded %d bytes, sha256 %s" % (size, sha))
        if check is not None:
            await check(sha)
        dest = base + slots.inactive(data)
        rmtree(dest)
        try:
            version, count, total = await _unpack(path, dest)
        except Exception:
            rmtree(dest)  # never leave a half slot that could be booted
            raise
        log.info("firmware", "bundle %s: %d files, %d bytes in %s" % (version, count, total,
                                                                        dest))
        return {"ver": version}
    finally:
        try:
            os.remove(path)
        except OSError:
            pass


def activate(cp, data, st):
    """Make the staged slot (or OTA partition) the one the next boot runs (on trial)."""
    if "ota" in st:
        ota = getattr(cp.hal, "ota", None)
        if ota is None:
            raise OSError("no OTA partition")
        ota.activate(st["ota"])
        return
    slot = slots.inactive(data)
    if not slots.usable(data, slot):
        raise OSError("staged slot %s is missing" % slot)
    slots.switch(data, slot)


def discard(data):
    """Remove a partial download and the staged slot (never the running one, nor the one a
    slot on trial would roll back to)."""
    base = data.rstrip("/") + "/"
    try:
        os.remove(base + BUNDLE)
    except OSError:
        pass
    if slots.read(data).get("ok"):
        rmtree(base + slots.inactive(data))
