"""Two critical security events raised where they happen: SettingSystemTime when the central
system sets the clock the first time after a boot or moves it by more than a minute (not at
every Heartbeat), MemoryExhaustion at the first MemoryError after a boot (later ones are only
counted, so a shortage cannot flood the flash)."""

import types

import log
from firmware import clock
from firmware.ops import heartbeat


class Sec:
    def __init__(self):
        self.events = []

    def event(self, kind, tech=None):
        self.events.append(kind)


def test_setting_system_time_is_a_security_event_only_when_it_matters(monkeypatch):
    monkeypatch.setattr(clock, "_set", False)
    cp = types.SimpleNamespace(security=Sec())
    heartbeat.set_clock(cp, {"currentTime": "2026-12-02T10:00:00Z"}, "BootNotification")
    assert cp.security.events == ["SettingSystemTime"]  # the first time after a boot
    heartbeat.set_clock(cp, {"currentTime": "2026-12-02T10:00:30Z"}, "Heartbeat")
    assert cp.security.events == ["SettingSystemTime"]  # a small correction: no event
    heartbeat.set_clock(cp, {"currentTime": "2026-12-02T12:00:00Z"}, "Heartbeat")
    assert cp.security.events == ["SettingSystemTime"] * 2  # moved by two hours
    before = clock.now()
    heartbeat.set_clock(cp, {"currentTime": "2026-02-30T10:00:00Z"}, "Heartbeat")
    assert cp.security.events == ["SettingSystemTime"] * 2 and abs(clock.now() - before) < 5


def test_memory_exhaustion_is_raised_once_per_boot(monkeypatch):
    got = []
    monkeypatch.setattr(log, "on_memory", lambda: got.append("MemoryExhaustion"))
    n = log.oom
    log.memory("test", "first")
    log.memory("test", "second")
    assert got == ["MemoryExhaustion"] and log.oom == n + 2


def test_a_failing_memory_hook_never_hides_the_count(monkeypatch):
    def boom():
        raise MemoryError

    monkeypatch.setattr(log, "on_memory", boom)
    n = log.oom
    log.memory("test", "x")
    assert log.oom == n + 1
