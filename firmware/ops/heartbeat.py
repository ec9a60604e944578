"""Heartbeat (OCPP 1.6 §4.6): sent every HeartbeatInterval; the answer sets the clock."""

import log
from firmware import clock

ACTION = "Heartbeat"


async def send(cp, rpc):
    conf = await rpc.call(ACTION, {})
    try:
        clock.set(clock.parse(conf["currentTime"]))
    except ValueError:
        log.warning("ocpp", "Heartbeat: bad currentTime", conf.get("currentTime"))
    return conf
