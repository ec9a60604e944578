"""Whole-image OTA (hal/esp32/ota.py) against the fake bytearray-backed esp32.Partition
(tests_host/fake_machine), fed by a real HTTP server on 127.0.0.1, and the OCPP side
(firmware/firmware_update) choosing it for `.bin` / `.app-bin` locations."""

import asyncio
import hashlib
import json
import os
import sys

import pytest
from conftest import ROOT, check_ocpp
from cpkit import FakeCP

import xfer
from firmware.firmware_update import install, service

sys.path.insert(0, os.path.join(ROOT, "tools"))

import fileserver  # noqa: E402

IMAGE = bytes([0xE9]) + bytes((i * 7 + 3) & 0xFF for i in range(10000))  # 2.4 blocks


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "fw.app-bin").write_bytes(IMAGE)
    (root / "notimage.bin").write_bytes(b'{"format":1}\n' + bytes(5000))
    (root / "huge.bin").write_bytes(bytes([0xE9]) + bytes(70000))
    s = fileserver.serve_http(root, chunked=False)
    yield s
    s.stop()


@pytest.fixture
def ota(hw):
    import esp32

    esp32.Partition.setup(("ota_0", "ota_1"), running="ota_0")
    from hal.esp32 import ota

    return esp32.Partition, ota


def test_no_ota_partition_means_no_driver(hw):
    import esp32

    from hal.esp32 import ota

    esp32.Partition.setup(("factory",))
    assert ota.detect() is None


def test_image_is_streamed_in_whole_blocks_then_boot_is_set(ota, served):
    part, mod = ota
    drv = mod.detect()
    assert drv.label() == "ota_1" and drv.running() == "ota_0"
    size, sha = asyncio.run(xfer.download(served.url("fw.app-bin"), drv.open))
    assert (size, sha) == (len(IMAGE), hashlib.sha256(IMAGE).hexdigest())
    data = part.TABLE["ota_1"].data
    assert data[: len(IMAGE)] == IMAGE
    assert data[len(IMAGE) : 3 * 4096] == b"\xff" * (3 * 4096 - len(IMAGE))
    assert part.TABLE["ota_1"].writes == 3  # one writeblocks per 4096-byte block
    assert part.TABLE["ota_0"].data == bytearray(b"\xff" * len(data))  # running untouched
    assert part.boot_label == "ota_0"
    drv.activate("ota_1")
    assert part.boot_label == "ota_1"
    drv.confirm()
    assert part.valid_calls == 1


@pytest.mark.parametrize("name,why", [("notimage.bin", "not an ESP32 application image"),
                                      ("huge.bin", "partition")])
def test_a_file_that_is_no_image_or_too_big_fails_and_boot_stays(ota, served, name, why):
    part, mod = ota
    drv = mod.detect()
    with pytest.raises(xfer.TransferError) as e:
        asyncio.run(xfer.download(served.url(name), drv.open))
    assert why in e.value.reason
    with pytest.raises(OSError):
        drv.activate("ota_1")  # nothing valid was written: ESP-IDF refuses it
    assert part.boot_label == "ota_0"


def test_activate_refuses_another_partition(ota):
    part, mod = ota
    with pytest.raises(OSError):
        mod.detect().activate("ota_0")


def test_image_or_bundle_by_the_location_suffix():
    assert install.is_image("http://h/fw/wallbox-1.2.app-bin")
    assert install.is_image("https://h/firmware.BIN?token=x")
    assert not install.is_image("http://h/wallbox-1.2.bundle")
    assert not install.is_image("ftp://h/bin/fw")


# -- the OCPP side: UpdateFirmware of an image -----------------------------------------------
class Session:
    def __init__(self):
        self.sent = []
        self.on_accepted = []
        self.accepted = asyncio.Event()

    def tls(self):
        return None

    async def call(self, action, payload):
        check_ocpp(action, payload)
        self.sent.append(payload["status"])
        return {}


class Charger:
    energized = False

    def set_available(self, on):
        pass


class Hal:
    ota = None


class CP(FakeCP):
    def __init__(self, data_dir, ota=None):
        self._declare()
        self.data_dir = str(data_dir)
        self.info = {"vendor": "V", "model": "M", "serial": "S1", "fw": "1.0"}
        self.session = Session()
        self.charger = Charger()
        self.hal = Hal()
        self.hal.ota = ota
        self.reboots = 0

    def reboot(self):
        self.reboots += 1


def _update(cp, url):
    fw = service.Firmware(cp)
    assert fw.request(url, 0, 1, 0)

    async def go():
        await fw._download(fw.state)
        if fw.state is not None and fw.state["stage"] == "install":
            await fw._install(fw.state)

    asyncio.run(go())
    return fw


def test_update_firmware_with_an_image_installs_it_and_reports_installed(ota, served,
                                                                         tmp_path):
    part, mod = ota
    cp = CP(tmp_path, mod.detect())
    _update(cp, served.url("fw.app-bin"))
    assert cp.session.sent == ["Downloading", "Downloaded", "Installing"]
    assert cp.reboots == 1 and part.boot_label == "ota_1"
    st = json.loads((tmp_path / service.FILE).read_text())
    assert st["stage"] == "reboot" and st["ota"] == "ota_1"
    assert not (tmp_path / "app_a").exists() and not (tmp_path / "slot.json").exists()
    # The reboot: the bootloader runs ota_1 on trial; Accepted confirms it -> Installed.
    part.running_label = "ota_1"
    cp2 = CP(tmp_path, mod.detect())
    fw2 = service.Firmware(cp2)
    asyncio.run(fw2.on_accepted(cp2))
    assert part.valid_calls == 1
    assert cp2.session.sent == ["Installed"]
    assert not (tmp_path / service.FILE).exists()


def test_a_rolled_back_image_is_installation_failed(ota, served, tmp_path):
    part, mod = ota
    cp = CP(tmp_path, mod.detect())
    _update(cp, served.url("fw.app-bin"))
    # The new image never confirmed itself: the bootloader went back to ota_0.
    cp2 = CP(tmp_path, mod.detect())
    fw2 = service.Firmware(cp2)
    asyncio.run(fw2.on_accepted(cp2))
    assert cp2.session.sent == ["InstallationFailed"]


def test_an_image_on_a_board_without_ota_is_download_failed(served, tmp_path):
    cp = CP(tmp_path, None)
    _update(cp, served.url("fw.app-bin"))
    assert cp.session.sent == ["Downloading", "DownloadFailed"]
    assert cp.reboots == 0 and not (tmp_path / service.FILE).exists()
