"""A message module the router imported for a CALL is dropped again once the CALL is
answered (firmware/ocpp/router.py done()): handlers and sys.modules entry gone, the next CALL
of that action imports it anew and is answered the same; a module with state that outlives
the answer (RESIDENT = True) stays."""

import asyncio
import json
import sys

from conftest import check_ocpp
from cpkit import FakeCP

from firmware.config import Config
from firmware.ocpp import router
from firmware.ocpp.rpc import RPC


class CP(FakeCP):
    def __init__(self, data_dir):
        self._declare()
        self.config = Config(str(data_dir))


def call(cp, action, payload, uid="u1"):
    sent = []

    async def send(text):
        sent.append(text)

    asyncio.run(RPC(send, cp).on_frame(json.dumps([2, uid, action, payload])))
    return json.loads(sent[-1])


def _forget(name, action):
    """As if the firmware had just booted: the module not loaded, the action only offered."""
    sys.modules.pop("firmware.ops." + name, None)
    pkg = sys.modules["firmware.ops"]
    if getattr(pkg, name, None) is not None:
        delattr(pkg, name)
    for d in (router.HANDLERS, router.AFTER, router.SCHEMAS):
        d.pop(action, None)
    router.offer((name,))


def test_a_rare_request_leaves_nothing_loaded_and_is_answered_again(tmp_path):
    cp = CP(tmp_path)
    _forget("get_configuration", "GetConfiguration")
    for uid in ("g1", "g2"):
        frame = call(cp, "GetConfiguration", {"key": ["HeartbeatInterval"]}, uid)
        assert frame[:2] == [3, uid]
        check_ocpp("GetConfiguration", frame[2], response=True)
        assert frame[2]["configurationKey"][0]["key"] == "HeartbeatInterval"
        assert "firmware.ops.get_configuration" not in sys.modules
        assert "GetConfiguration" not in router.HANDLERS
        assert getattr(sys.modules["firmware.ops"], "get_configuration", None) is None
        assert "GetConfiguration" not in router.LOADED


def test_an_error_answer_drops_the_module_too(tmp_path):
    cp = CP(tmp_path)
    _forget("change_configuration", "ChangeConfiguration")
    frame = call(cp, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "x"})
    assert frame[0] == 3 and frame[2]["status"] == "Rejected"
    frame = call(cp, "ChangeConfiguration", {"key": 5, "value": "x"})  # schema: CALLERROR
    assert frame[0] == 4
    assert "firmware.ops.change_configuration" not in sys.modules


def test_a_module_with_state_after_its_answer_stays(tmp_path):
    cp = CP(tmp_path)
    _forget("trigger_message", "TriggerMessage")
    frame = call(cp, "TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification2"})
    assert frame[0] == 4  # not in the schema's enum: answered, the module loaded meanwhile
    assert "firmware.ops.trigger_message" in sys.modules
    assert "TriggerMessage" in router.HANDLERS
