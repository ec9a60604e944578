"""Heartbeat (OCPP 1.6 §4.6): sent every HeartbeatInterval; the answer sets the clock."""

import log
from firmware import clock

ACTION = "Heartbeat"
_JUMP_S = 60  # a correction larger than this is a security event (SettingSystemTime)


def set_clock(cp, conf, what):
    """Take the central system's currentTime (BootNotification, Heartbeat). Setting the clock
    the first time after a boot, or moving it by more than a minute, is the critical
    security event SettingSystemTime; an impossible time is refused and the clock kept."""
    try:
        t = clock.parse(conf["currentTime"])
        before = clock.now() if clock.is_set() else None
        clock.set(t)
    except ValueError:
        log.warning("ocpp", what + ": bad currentTime", conf.get("currentTime"))
        return
    if before is None or abs(t - before) > _JUMP_S:
        sec = getattr(cp, "security", None)
        if sec is not None:
            sec.event("SettingSystemTime", "%s %s" % (what, conf["currentTime"]))


async def send(cp, rpc):
    conf = await rpc.call(ACTION, {})
    set_clock(cp, conf, "Heartbeat")
    return conf
