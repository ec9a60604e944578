"""Fake `esp32` module: only what hal/esp32 may touch in host tests.

`Partition`: a bytearray-backed partition table. `Partition.setup(("factory",))` (no OTA) or
`("ota_0", "ota_1")` with the running label; tests read `Partition.TABLE[label].data`,
`Partition.boot_label`, `Partition.valid_calls`. `Partition.invalid` (a set of labels):
set_boot refuses those (ESP-IDF validates the image)."""


def mcu_temperature():
    return 40


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1
    TABLE = {}
    ORDER = []
    running_label = ""
    boot_label = ""
    valid_calls = 0
    invalid = set()

    @classmethod
    def setup(cls, labels, running=None, size=65536):
        cls.TABLE = {}
        cls.ORDER = list(labels)
        for i, lab in enumerate(labels):
            p = object.__new__(cls)
            p.label = lab
            p.offset = 0x10000 + i * size
            p.data = bytearray(b"\xff" * size)
            p.writes = 0
            cls.TABLE[lab] = p
        cls.running_label = cls.boot_label = running or labels[0]
        cls.valid_calls = 0
        cls.invalid = set()

    def __new__(cls, id, block_size=4096):
        if id == cls.RUNNING:
            return cls.TABLE[cls.running_label]
        if id == cls.BOOT:
            return cls.TABLE[cls.boot_label]
        if id in cls.TABLE:
            return cls.TABLE[id]
        raise ValueError("no partition " + repr(id))

    def __init__(self, id, block_size=4096):
        pass

    def info(self):
        return (self.TYPE_APP, 0x10 + self.ORDER.index(self.label), self.offset,
                len(self.data), self.label, False)

    def get_next_update(self):
        ota = [lab for lab in self.ORDER if lab.startswith("ota_")]
        if self.label not in ota and not ota or len(ota) < 2 and self.label in ota:
            raise OSError(2)  # ENOENT: no OTA partition to update
        if self.label not in ota:
            return self.TABLE[ota[0]]
        return self.TABLE[ota[(ota.index(self.label) + 1) % len(ota)]]

    def readblocks(self, block_num, buf, offset=0):
        start = block_num * 4096 + offset
        buf[:] = self.data[start : start + len(buf)]

    def writeblocks(self, block_num, buf, offset=None):
        if offset is None:
            assert len(buf) % 4096 == 0, "a whole-block write must be block aligned"
            offset = 0
        start = block_num * 4096 + offset
        if start + len(buf) > len(self.data):
            raise OSError(22)
        self.data[start : start + len(buf)] = buf
        self.writes += 1

    def ioctl(self, op, arg=None):
        return 4096 if op == 5 else len(self.data) // 4096 if op == 4 else 0

    def set_boot(self):
        if self.label in Partition.invalid or self.data[0] != 0xE9:
            raise OSError(-5379)  # ESP_ERR_OTA_VALIDATE_FAILED
        Partition.boot_label = self.label

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        cls.valid_calls += 1

    @staticmethod
    def find(type=0, subtype=0xFF, label=None):
        return [p for lab, p in Partition.TABLE.items() if label is None or lab == label]


Partition.setup(("factory",))  # a board without OTA partitions unless a test says otherwise
