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
"""

import os

import log
import slots
import xfer
from bundle import unpack
from firmware.firmware_update.service import BUNDLE


def rmtree(path):
    """Remove `path` and everything under it; a missing path is fine."""
    try:
        names = os.listdir(path)
    except OSError:
        try:
            os.remove(path)
        except OSError:
            pass
        return
    for name in names:
        rmtree(path + "/" + name)
    try:
        os.rmdir(path)
    except OSError:
        pass


def is_image(url):
    """A whole ESP32 application image (`.bin`, `.app-bin`), not a bundle."""
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(".bin") or path.endswith(".app-bin")


async def fetch(cp, url, data, check=None):
    """Download and stage the file -> the fields it adds to the request kept on flash:
    {"ver": bundle version} or {"ota": partition label} (raises on any failure)."""
    tls = cp.session.tls() if url.startswith("https:") else None
    if is_image(url):
        ota = getattr(cp.hal, "ota", None)
        if ota is None:
            raise OSError("an application image, but this board has no OTA partition")
        size, sha = await xfer.download(url, ota.open, tls=tls)  # straight into the slot
        log.info("firmware", "image of %d bytes, sha256 %s in %s" % (size, sha, ota.label()))
        if check is not None:
            await check(sha)  # a bad signature: the partition is never made the boot one
        return {"ota": ota.label()}
    base = data.rstrip("/") + "/"
    path = base + BUNDLE
    try:
        size, sha = await xfer.download(url, path, tls=tls)
        log.info("firmware", "downloaded %d bytes, sha256 %s" % (size, sha))
        if check is not None:
            await check(sha)
        dest = base + slots.inactive(data)
        rmtree(dest)
        try:
            version, count, total = await unpack(path, dest)
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
