"""Every frame up to the 16 KiB websocket cap gets its answer, the right one, with the
firmware on the MicroPython VM from source at 512 KiB (issue 9: there, frames of 7 KB and
more were dropped, later answered "out of memory"): a DataTransfer of each size (another
vendor's, and ours with a `data` too long for any of our messages), a long string where no
request allows one, a malformed frame near the cap; the link stays up throughout. Frames
over 4 KiB are read compacted in pieces (lib/ws.py _compacted): the sizes straddle that."""

import json

import pytest
from conftest import check_ocpp
from e2e import assert_calls_valid
from ocpp.v16 import call

pytestmark = pytest.mark.e2e

CAP = 16384


def frame(uid, action, payload, size):
    """A CALL of exactly `size` bytes: payload["data"] padded (escapes included)."""
    payload = dict(payload, data="")
    base = len(json.dumps([2, uid, action, payload]).encode())
    unit = 'é\\"x'  # UTF-8, an escaped quote and a backslash in every unit
    n = (size - base) // len(json.dumps(unit)[1:-1].encode())
    payload["data"] = unit * n
    text = json.dumps([2, uid, action, payload], ensure_ascii=False)
    text = text[:-3] + " " * (size - len(text.encode())) + text[-3:]
    assert len(text.encode()) == size
    return text


def answer(csms, text):
    before = len(csms.csms.answers)
    csms.send_raw("CP1", text)
    csms.wait_for(lambda: len(csms.csms.answers) > before, timeout=20)
    return csms.csms.answers[before][1]


def test_every_frame_up_to_the_cap_is_answered_and_the_link_stays_up(csms, start_firmware):
    fw = start_firmware(csms.url())
    fw.wait_accepted()
    connections = csms.csms.connections
    for size in (1024, 2100, 4096, 4200, 7000, 8192, 12000, CAP - 4):
        uid = "o%d" % size
        got = answer(csms, frame(uid, "DataTransfer", {"vendorId": "Other"}, size))
        assert got == [3, uid, {"status": "UnknownVendorId"}], size
    # Ours, with a filter far longer than any message of ours takes.
    uid = "w1"
    got = answer(csms, frame(uid, "DataTransfer",
                             {"vendorId": "OpenWallbox", "messageId": "GetStatus"}, CAP - 4))
    assert got[:2] == [3, uid] and got[2]["status"] == "Rejected", got
    assert json.loads(got[2]["data"]) == {"data": "too long"}
    # A string over 6 KiB where no request has one: beyond its maxLength.
    text = frame("c1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "x"}, 12000)
    got = answer(csms, text.replace('"value": "x", ', ""))
    assert got[:3] == [4, "c1", "PropertyConstraintViolation"], got
    # Malformed near the cap: still FormationViolation, never a dropped link.
    bad = frame("m1", "DataTransfer", {"vendorId": "Other"}, CAP - 4)[:-2] + ",]"
    got = answer(csms, bad)
    assert got[0] == 4 and got[2] == "FormationViolation", got
    resp = csms.call("CP1", call.GetConfiguration(key=["HeartbeatInterval"]))
    assert resp.configuration_key[0]["key"] == "HeartbeatInterval"
    assert csms.csms.connections == connections
    assert not any("MemoryError" in line for line in fw.lines), fw.output()
    assert_calls_valid(csms)
    for _, got in csms.csms.answers:
        if got[0] == 3 and got[1] != "-1" and "status" in got[2]:
            check_ocpp("DataTransfer", got[2], response=True)
