"""The work of an UpdateFirmware, loaded only when one runs (the transfer code with it).

fetch(): download the file (lib/xfer.py: http, https with the OCPP link's TLS settings,
ftp) to `<data>/fw.bundle`, await `check(sha256_hex)` when given (a SignedUpdateFirmware
verifies the file's signature there; it raises to stop), unpack it into the inactive A/B
slot (lib/bundle.py checks every file's size and SHA-256; a corrupt bundle fails here, before
anything is installed), remove the download. activate(): switch the slot pointer
(lib/slots.py), the last step.
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


async def fetch(cp, url, data, check=None):
    """Download and stage the bundle -> its version (raises on any failure)."""
    base = data.rstrip("/") + "/"
    path = base + BUNDLE
    tls = cp.session.tls() if url.startswith("https:") else None
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
        return version
    finally:
        try:
            os.remove(path)
        except OSError:
            pass


def activate(data, st):
    """Make the staged slot the one the next boot runs (on trial)."""
    slot = slots.inactive(data)
    if not slots.usable(data, slot):
        raise OSError("staged slot %s is missing" % slot)
    slots.switch(data, slot)
