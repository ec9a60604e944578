"""A websocket whose stream never drains (the first send blocks for ever): the hang the
liveness tests inject into the OCPP session. Runs on CPython and on the MicroPython VM."""

import asyncio
import json

from compat import ticks_ms

made = []


async def never():
    await asyncio.Event().wait()


class StuckWS:
    def __init__(self):
        self.closed = False
        self.sent = []
        self.last_rx_ms = ticks_ms()
        made.append(self)

    async def send(self, text):
        self.sent.append(text)
        await never()

    async def send_json(self, obj):
        await self.send(json.dumps(obj))

    async def recv(self):
        await never()

    async def ping(self, data=b""):
        pass

    async def close(self, code=1000, reason=""):
        self.closed = True


async def connect(url, **kw):
    return StuckWS()
