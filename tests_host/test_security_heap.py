"""Heap (firmware/security/service.py): the security log, the queue of critical events and their
delivery (firmware/security/events.py, SecurityEventNotification's module, the delivery task)
are loaded only while an event waits to be sent. What stays (cp.security) keeps the rules: a
critical event is on flash before event() returns, the queue left on flash by a power cut is
delivered in order at boot, and the SecurityProfile fallback needs none of it."""

import asyncio
import os
import sys

import pytest
import test_certificate_signed as certificate_signed_test

import log
from firmware import app
from firmware.ocpp import router
from firmware.security import service
from firmware.security.service import _FALLBACK_TRIES

EVENTS = "firmware.security.events"
SEN = "firmware.ops.security_event_notification"
KEY = "0123456789abcdef"


class Session:
    """What the security service uses of firmware/ocpp/session.py: Accepted or not, the hooks,
    and the CALLs (each answered after a turn of the loop: a CALL in flight)."""

    profile = 0

    def __init__(self):
        self.accepted = asyncio.Event()
        self.on_accepted = []
        self.on_attempt = []
        self.sent = []

    def is_accepted(self):
        return self.accepted.is_set()

    async def call(self, action, payload):
        await asyncio.sleep(0)
        self.sent.append((action, payload))
        return {}


class CP(certificate_signed_test.CP):  # the same charge point, with a session
    def __init__(self, data_dir):
        super().__init__(data_dir)
        self.session = Session()
        self.security = None


@pytest.fixture
def cp(tmp_path, monkeypatch):
    monkeypatch.setattr(log, "on_memory", None)  # attach sets it
    cp = CP(tmp_path)
    assert cp.config.update({"AuthorizationKey": KEY}, "test") == {}
    return cp


@pytest.fixture
def modules_back():
    """The service lets the modules go (sys.modules, their packages): put back afterwards, so
    the other tests keep the module objects they imported."""
    from cpkit import modules_kept

    import firmware.ops
    import firmware.security

    with modules_kept(firmware.ops, firmware.security):
        yield


async def _until(cond):
    for _ in range(200):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("never")


def _types(cp):
    return [p["type"] for a, p in cp.session.sent if a == "SecurityEventNotification"]


def _others():
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def _unloaded(cp):
    sec = cp.security
    return (EVENTS not in sys.modules and SEN not in sys.modules and sec.log is None
            and sec.queue is None and cp.tasks == [] and cp.makers == {} and _others() == [])


async def _sent(cp, *types):
    """Until these are the events sent, and a few turns more."""
    await _until(lambda: _types(cp) == list(types))
    for _ in range(20):
        await asyncio.sleep(0)


def _attach(cp):
    app._start(cp, service.attach(cp))  # as app.attach does


async def _booted(cp):
    """attach with the link Accepted: StartupOfTheDevice delivered and acknowledged."""
    cp.session.accepted.set()
    _attach(cp)
    await _sent(cp, "StartupOfTheDevice")


def _flash(cp, name):
    path = cp.data_dir + "/security/" + name
    return open(path).read() if os.path.exists(path) else ""


def test_once_startup_is_delivered_nothing_of_it_stays(cp, modules_back):
    async def go():
        await _booted(cp)
        assert _unloaded(cp)  # no module, no task
        assert '"StartupOfTheDevice"' in _flash(cp, "q.log")
        assert _flash(cp, "ack.json") == '{"ack": 1}'

    asyncio.run(go())


def test_a_later_event_loads_it_journals_delivers_and_lets_go(cp, modules_back):
    async def go():
        await _booted(cp)
        cp.session.accepted.clear()  # an outage
        cp.security.event("SettingSystemTime", "BootNotification t")
        # Loaded by the event, and on flash before it returned.
        assert EVENTS in sys.modules and len(cp.tasks) == 1
        assert '"SettingSystemTime"' in _flash(cp, "q.log")
        assert "SettingSystemTime BootNotification t" in _flash(cp, "log.txt")
        cp.security.event("InvalidMessages", "x")  # not critical: in RAM, sent once
        assert '"InvalidMessages"' not in _flash(cp, "q.log")
        assert "InvalidMessages x" in _flash(cp, "log.txt")
        for _ in range(20):
            await asyncio.sleep(0)
        assert not _unloaded(cp) and len(cp.tasks) == 1  # waits for the link
        cp.session.accepted.set()
        await _sent(cp, "StartupOfTheDevice", "SettingSystemTime", "InvalidMessages")
        assert _unloaded(cp) and cp.security.sent == 3

    asyncio.run(go())


def test_a_queue_left_on_flash_at_boot_is_delivered_first(cp, modules_back):
    from firmware.security.events import Queue

    os.makedirs(cp.data_dir + "/security")
    q = Queue(cp.data_dir + "/security")  # what a power cut left undelivered
    q.append({"type": "ResetOrReboot", "timestamp": "2026-01-01T00:00:00Z"})
    q.append({"type": "FirmwareUpdated", "timestamp": "2026-01-01T00:00:01Z"})
    router.forget(EVENTS)  # as on a board that has just booted

    async def go():
        await _until(lambda: True)
        cp.session.accepted.set()
        _attach(cp)
        await _sent(cp, "ResetOrReboot", "FirmwareUpdated", "StartupOfTheDevice")
        assert _unloaded(cp)
        assert _flash(cp, "ack.json") == '{"ack": 3}'

    asyncio.run(go())


def test_the_fallback_comes_while_nothing_of_it_is_loaded(cp, modules_back):
    async def go():
        await _booted(cp)
        assert cp.config.update({"SecurityProfile": 1}, "ocpp") == {}  # on trial
        await _sent(cp, "StartupOfTheDevice", "ReconfigurationOfSecurityParameters")
        cp.session.accepted.clear()  # the new profile never reaches Accepted
        for i in range(_FALLBACK_TRIES - 1):
            assert _unloaded(cp), i
            cp.security.on_attempt(False)
        assert cp.config.get("SecurityProfile") == 1 and _unloaded(cp)
        cp.security.on_attempt(False)
        assert cp.config.get("SecurityProfile") == 0
        assert not os.path.exists(cp.data_dir + "/security/fallback.json")
        assert "back to 0" in _flash(cp, "q.log")  # journaled before on_attempt returned
        cp.session.accepted.set()
        await _sent(cp, "StartupOfTheDevice", *["ReconfigurationOfSecurityParameters"] * 3)
        assert "back to 0" in cp.session.sent[-1][1]["techInfo"]
        assert _unloaded(cp)

    asyncio.run(go())


def test_no_room_to_load_it_keeps_the_event_in_ram_and_delivers_it(cp, modules_back,
                                                                    monkeypatch, capsys):
    real = router.roomy

    def short(fn, *args):
        if args[:1] == (EVENTS,):
            raise MemoryError("heap full")
        return real(fn, *args)

    async def go():
        await _booted(cp)
        cp.session.accepted.clear()
        monkeypatch.setattr(router, "roomy", short)
        n = log.oom
        cp.security.event("SettingSystemTime", "Heartbeat t")  # does not raise
        assert [p["type"] for p in cp.security._loose] == ["SettingSystemTime"]
        assert log.oom == n + 1 and "SettingSystemTime not logged" in capsys.readouterr().out
        assert _flash(cp, "q.log").count("\n") == 1  # not journaled (StartupOfTheDevice only)
        (task,) = cp.tasks
        await _until(task.done)  # the delivery task could not load it either
        assert isinstance(task.exception(), MemoryError)
        monkeypatch.setattr(router, "roomy", real)
        monkeypatch.setattr(app, "_RESTART_MS", 0)
        app._revive(cp)  # the housekeeping starts it again
        cp.session.accepted.set()
        await _sent(cp, "StartupOfTheDevice", "SettingSystemTime")
        assert _unloaded(cp) and cp.security._loose == []

    asyncio.run(go())


def test_a_delivery_that_cannot_start_is_started_by_the_next_accepted(cp, modules_back,
                                                                      monkeypatch):
    async def go():
        await _booted(cp)
        real = asyncio.create_task

        def short(coro):
            coro.close()
            raise MemoryError("heap full")

        monkeypatch.setattr(asyncio, "create_task", short)
        cp.security.event("SettingSystemTime", "Heartbeat t")  # does not raise
        monkeypatch.setattr(asyncio, "create_task", real)
        assert '"SettingSystemTime"' in _flash(cp, "q.log") and cp.tasks == []
        await cp.security.on_accepted(cp)
        await _sent(cp, "StartupOfTheDevice", "SettingSystemTime")
        assert _unloaded(cp)

    asyncio.run(go())
