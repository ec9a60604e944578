"""Round trip of central-system requests (CONTRACT.md §5), as `make bench` reports it.

    python tools/rtt.py [-n 200]

This process plays the central system: a websocket server on 127.0.0.1 (no compression)
that the charge point connects to. Once the charge point's BootNotification is answered it
sends N pre-encoded CALL frames of each kind, one at a time, and times each answer from
the moment the frame is handed to the socket to the moment the CALLRESULT arrives:
- GetConfiguration of all keys,
- SetChargingProfile with 24 periods (valid: every answer must be Accepted).
Frames from the charge point meanwhile (StatusNotification…) get a canned answer.

Peers, each in its own process:
- `fw`: the firmware on the MicroPython unix port with the simulated hardware, started as
  tests_host/e2e.py's Firmware does; from the .mpy build (build/board, as `make bench`
  leaves it) when that build is complete and newer than the sources, else from source.
- `ref`: the reference, a charge point built on the `ocpp` package on CPython (this file's
  `--peer ref`): @on handlers for GetConfiguration (the same key list the firmware has) and
  SetChargingProfile (Accepted). The package validates both ways against the schemas, as
  the firmware checks its payloads.
- `echo`: the floor, a websocket client on CPython that sends every frame straight back.

measure(n=200) -> [(name, value, unit), ...]:
    rtt_ms_p50 / rtt_ms_p99               firmware, both requests together
    rtt_ms_p50_ref / rtt_ms_p99_ref       reference, both requests together
    rtt_ratio_p50 / rtt_ratio_p99         firmware / reference
    rtt_ms_{p50,p99}_{getconfiguration,setchargingprofile}_{fw,ref}
    rtt_ratio_p50_{getconfiguration,setchargingprofile}
    rtt_ms_p50_echo / rtt_ms_p99_echo     bare websocket echo on loopback
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD = os.path.join(ROOT, "build", "board")
_WARMUP = 5
_TIMEOUT_S = 15.0
last_source = None  # where the firmware came from in the last measure(): ".mpy" or "source"


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def _rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def requests(n):
    """{kind: [(unique id, pre-encoded CALL frame), ...]} for the two request kinds."""
    start = _rfc3339(int(time.time()) - 60)
    periods = [{"startPeriod": i * 3600, "limit": 6 + (i * 7) % 11, "numberPhases": 3}
               for i in range(24)]
    scp = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "startSchedule": start,
                "chargingRateUnit": "A",
                "minChargingRate": 6,
                "chargingSchedulePeriod": periods,
            },
        },
    }
    out = {}
    for kind, action, payload in (("getconfiguration", "GetConfiguration", {}),
                                  ("setchargingprofile", "SetChargingProfile", scp)):
        frames = []
        for i in range(n + _WARMUP):
            uid = "%s-%d" % (kind[:3], i)
            frames.append((uid, json.dumps([2, uid, action, payload], separators=(",", ":"))))
        out[kind] = frames
    return out


def _check(kind, payload):
    if kind == "getconfiguration":
        keys = payload.get("configurationKey") if isinstance(payload, dict) else None
        if not keys or len(keys) < 20:
            raise RuntimeError("GetConfiguration answer without the keys: %r" % (payload,))
    elif kind == "setchargingprofile" and payload != {"status": "Accepted"}:
        raise RuntimeError("SetChargingProfile not Accepted: %r" % (payload,))


class Central:
    """The measuring side: one charge point connection at a time."""

    def __init__(self):
        self.ws = None
        self.booted = None
        self.closed = None
        self.pending = None  # (unique id or None for echo, future)
        self.server = None
        self.port = None

    async def start(self):
        from websockets.asyncio.server import serve

        self.booted = asyncio.Event()
        self.server = await serve(self._handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"],
                                  compression=None, ping_interval=None, max_size=1 << 20)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()

    def url(self, ident):
        return "ws://127.0.0.1:%d/ocpp/%s" % (self.port, ident)

    async def _handler(self, ws):
        self.ws = ws
        try:
            async for text in ws:
                t1 = time.perf_counter()
                pend = self.pending
                if pend is not None and pend[0] is None:  # echo: any frame answers
                    self.pending = None
                    pend[1].set_result((t1, None))
                    continue
                msg = json.loads(text)
                if msg[0] == 2:
                    await ws.send(json.dumps([3, msg[1], self._answer(msg[2])]))
                    if msg[2] == "BootNotification":
                        self.booted.set()
                elif pend is not None and msg[1] == pend[0]:
                    self.pending = None
                    if msg[0] == 3:
                        pend[1].set_result((t1, msg[2]))
                    else:
                        pend[1].set_exception(RuntimeError("CALLERROR %r" % (msg,)))
        except Exception:  # the peer went away: the waiting request times out
            pass
        finally:
            if self.ws is ws:
                self.ws = None

    @staticmethod
    def _answer(action):
        now = _rfc3339(time.time())
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": now, "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action in ("Authorize", "StartTransaction"):
            return {"idTagInfo": {"status": "Accepted"}, "transactionId": 1}
        return {}

    async def wait_connected(self, timeout, echo=False):
        deadline = time.monotonic() + timeout
        while self.ws is None or not (echo or self.booted.is_set()):
            if time.monotonic() > deadline:
                raise TimeoutError("the peer did not connect and boot")
            await asyncio.sleep(0.02)

    async def rtt(self, frames, kind=None):
        """Send each frame, wait for its answer; returns the round trips in ms (warm-up
        frames excluded)."""
        loop = asyncio.get_running_loop()
        out = []
        for i, (uid, text) in enumerate(frames):
            fut = loop.create_future()
            self.pending = (None if kind is None else uid, fut)
            t0 = time.perf_counter()
            await self.ws.send(text)
            t1, payload = await asyncio.wait_for(fut, _TIMEOUT_S)
            if kind is not None:
                _check(kind, payload)
            if i >= _WARMUP:
                out.append((t1 - t0) * 1000.0)
        return out


def _board_build_ok():
    """True when build/board holds a complete, current .mpy build (sim modules included)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import build
    except ImportError:
        return False
    files = list(build.board_files()) + list(build.host_files())
    for src, dst in files:
        d = os.path.join(BOARD, dst)
        if not os.path.exists(d) or os.path.getmtime(d) < os.path.getmtime(
                os.path.join(ROOT, src)):
            return False
    return True


async def _measure_fw(central, reqs, n):
    sys.path.insert(0, os.path.join(ROOT, "tests_host"))
    from e2e import Firmware

    data = tempfile.mkdtemp(prefix="rtt-")
    fw = Firmware(data, central.url("RTT"))
    source = "source"
    if os.path.isdir(BOARD) and _board_build_ok():
        fw.main_py = os.path.join(BOARD, "main.py")
        fw.mp_path = os.path.join(BOARD, "lib")
        source = ".mpy"
    await asyncio.to_thread(fw.start)
    try:
        await central.wait_connected(30)
        await asyncio.sleep(1.0)  # let the StatusNotifications after boot go by
        res = {}
        for kind in ("getconfiguration", "setchargingprofile"):
            res[kind] = await central.rtt(reqs[kind], kind)
        return res, source
    except Exception as e:
        raise RuntimeError("%s\n---- firmware log ----\n%s" % (e, fw.output())) from e
    finally:
        await asyncio.to_thread(fw.stop)
        import shutil

        shutil.rmtree(data, ignore_errors=True)


async def _measure_peer(central, peer, reqs):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--peer", peer, central.url(peer.upper()),
        stdout=asyncio.subprocess.DEVNULL)
    try:
        await central.wait_connected(30, echo=peer == "echo")
        res = {}
        if peer == "echo":
            res["echo"] = await central.rtt(reqs["getconfiguration"])
        else:
            for kind in ("getconfiguration", "setchargingprofile"):
                res[kind] = await central.rtt(reqs[kind], kind)
        return res
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def _measure(n):
    reqs = requests(n)
    results = {}
    for name in ("fw", "ref", "echo"):
        central = Central()
        await central.start()
        try:
            if name == "fw":
                results[name], source = await _measure_fw(central, reqs, n)
            else:
                results[name] = await _measure_peer(central, name, reqs)
        finally:
            await central.stop()
    return results, source


def measure(n=200):
    """Run the three peers; returns rows (name, value, unit)."""
    results, source = asyncio.run(_measure(n))
    rows = []

    def ms(name, v):
        rows.append((name, round(v, 3), "ms"))

    fw, ref = results["fw"], results["ref"]
    both_fw = fw["getconfiguration"] + fw["setchargingprofile"]
    both_ref = ref["getconfiguration"] + ref["setchargingprofile"]
    for p in (50, 99):
        ms("rtt_ms_p%d" % p, percentile(both_fw, p))
    for p in (50, 99):
        ms("rtt_ms_p%d_ref" % p, percentile(both_ref, p))
    for p in (50, 99):
        rows.append(("rtt_ratio_p%d" % p,
                     round(percentile(both_fw, p) / percentile(both_ref, p), 2), "x"))
    for kind in ("getconfiguration", "setchargingprofile"):
        for who, res in (("fw", fw), ("ref", ref)):
            for p in (50, 99):
                ms("rtt_ms_p%d_%s_%s" % (p, kind, who), percentile(res[kind], p))
        rows.append(("rtt_ratio_p50_" + kind,
                     round(percentile(fw[kind], 50) / percentile(ref[kind], 50), 2), "x"))
    for p in (50, 99):
        ms("rtt_ms_p%d_echo" % p, percentile(results["echo"]["echo"], p))
    global last_source
    last_source = source
    return rows


# ---- the peers (run as `tools/rtt.py --peer ref|echo URL`) ------------------------------


def _key_list():
    """The firmware's OCPP keys with their default values, as GetConfiguration lists them."""
    for p in (os.path.join(ROOT, "lib"), ROOT):
        if p not in sys.path:
            sys.path.insert(0, p)
    from firmware.config import Config

    with tempfile.TemporaryDirectory() as d:
        cfg = Config(d)
        out = []
        for name in cfg.ocpp_names():
            value, ro = cfg.ocpp_get(name)
            item = {"key": name, "readonly": ro}
            if value is not None:
                item["value"] = value[:500]
            out.append(item)
    return out


async def _reference(url):
    import websockets
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call, call_result
    from ocpp.v16.enums import Action

    keys = _key_list()

    class ReferenceChargePoint(ChargePoint):
        @on(Action.get_configuration)
        def on_get_configuration(self, key=None):
            return call_result.GetConfiguration(configuration_key=keys)

        @on(Action.set_charging_profile)
        def on_set_charging_profile(self, connector_id, cs_charging_profiles):
            return call_result.SetChargingProfile(status="Accepted")

    async with websockets.connect(url, subprotocols=["ocpp1.6"], compression=None,
                                  ping_interval=None, max_size=1 << 20) as ws:
        cp = ReferenceChargePoint("REF", ws)
        task = asyncio.create_task(cp.start())
        await cp.call(call.BootNotification(charge_point_model="Reference",
                                            charge_point_vendor="ocpp"))
        await task


async def _echo(url):
    import websockets

    async with websockets.connect(url, subprotocols=["ocpp1.6"], compression=None,
                                  ping_interval=None, max_size=1 << 20) as ws:
        async for text in ws:
            await ws.send(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=200, help="requests per kind and peer")
    ap.add_argument("--peer", choices=("ref", "echo"), help=argparse.SUPPRESS)
    ap.add_argument("url", nargs="?", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.peer:
        import logging

        logging.basicConfig(level=logging.ERROR)
        try:
            asyncio.run(_reference(a.url) if a.peer == "ref" else _echo(a.url))
        except Exception:  # the central system closed the connection: done
            pass
        return
    t0 = time.monotonic()
    for name, value, unit in measure(a.n):
        print("%-40s %10s %s" % (name, value, unit), flush=True)
    print("(rtt: %d requests per kind and peer, firmware from %s, took %.0f s)"
          % (a.n, last_source, time.monotonic() - t0))


if __name__ == "__main__":
    main()
