"""Whole-image OTA into the ESP32's OTA app partitions (`esp32.Partition`), reached as
`hal.ota` (None on a board without OTA partitions: only application bundles then).

    ota = detect()                       Ota, or None when there is no next OTA partition
    sink = ota.open(total)               a download sink (lib/xfer.py): write, done, fail
    ota.activate(label)                  set_boot() on the partition written (validated)
    ota.running()                        the label of the partition running now
    ota.confirm()                        mark_app_valid_cancel_rollback() (after Accepted)

The image is streamed into `Partition(RUNNING).get_next_update()` in 4096-byte blocks
through one block buffer (writeblocks of a whole block erases it first): never the whole
image in RAM. The first byte must be the ESP image magic 0xE9. The reboot is the caller's
(cp.reboot = machine.reset); the bootloader runs the new image on trial and rolls back on
the next reset unless confirm() was called.
"""

import binascii
import hashlib

from esp32 import Partition

_BLOCK = 4096
_MAGIC = 0xE9


def _running():
    # Partition(int) is MicroPython's documented form (BOOT/RUNNING); the stubs only know
    # labels.
    return Partition(Partition.RUNNING)  # type: ignore[arg-type]


class ImageSink:
    """The image being downloaded, block by block, into partition `part`."""

    def __init__(self, part, total):
        self.part = part
        self.size = part.info()[3]
        if total is not None and total > self.size:
            raise OSError("image of %d bytes, partition %d" % (total, self.size))
        self.buf = bytearray(_BLOCK)
        self.fill = 0
        self.block = 0
        self.n = 0
        self.h = hashlib.sha256()

    def write(self, mv):
        if self.n == 0 and len(mv) and mv[0] != _MAGIC:
            raise OSError("not an ESP32 application image")
        if self.n + len(mv) > self.size:
            raise OSError("image larger than the %d bytes partition" % self.size)
        self.h.update(mv)
        self.n += len(mv)
        i = 0
        while i < len(mv):
            k = min(_BLOCK - self.fill, len(mv) - i)
            self.buf[self.fill : self.fill + k] = mv[i : i + k]
            self.fill += k
            i += k
            if self.fill == _BLOCK:
                self._flush()

    def _flush(self):
        self.part.writeblocks(self.block, self.buf)
        self.block += 1
        self.fill = 0

    def done(self):
        if self.n == 0:
            raise OSError("empty image")
        if self.fill:
            for j in range(self.fill, _BLOCK):
                self.buf[j] = 0xFF  # erased flash
            self._flush()
        self.buf = bytearray(0)  # the block buffer freed
        return self.n, binascii.hexlify(self.h.digest()).decode()

    def fail(self):
        self.buf = bytearray(0)  # the block buffer freed


class Ota:
    def __init__(self, nxt):
        self.nxt = nxt

    def label(self):
        return self.nxt.info()[4]

    def open(self, total):
        return ImageSink(self.nxt, total)

    def activate(self, label):
        part = _running().get_next_update()
        if part.info()[4] != label:
            raise OSError("OTA partition %s, expected %s" % (part.info()[4], label))
        part.set_boot()  # ESP-IDF checks the image here: OSError when invalid

    def running(self):
        return _running().info()[4]

    def confirm(self):
        try:
            Partition.mark_app_valid_cancel_rollback()
        except OSError:  # rollback not enabled in the bootloader, or nothing pending
            pass


def detect():
    """An Ota driver when the running image has a next OTA partition, else None."""
    try:
        return Ota(_running().get_next_update())
    except (OSError, AttributeError):
        return None
