"""Demo central system for the simulator and the end-to-end tests, built on the `ocpp`
package (which validates every message the firmware sends against the official OCPP 1.6
JSON schemas, strictly).

    python tools/csms.py [--host 127.0.0.1] [--port 9000] [--cert C --key K] [--cards A,B]
                         [--files DIR]

It accepts BootNotification, authorizes cards (all, or those of --cards), hands out
transaction ids (recognising a re-sent StartTransaction by connector, idTag, timestamp
and meterStart, and answering it with the same id), and logs every frame readably:

    12:00:01 CP1 -> BootNotification {"chargePointVendor": ...}
    12:00:01 CP1 <- [3, "1", {"status": "Accepted", ...}]

FirmwareManagement: --files DIR serves DIR over HTTP (GET, and PUT for uploads) and FTP
(user cp, password secret; tools/fileserver.py), e.g. the bundles of `make release`
(RELEASE_DIR=DIR). Console lines on stdin send a request to every connected charge point:

    update <url or file name in DIR>        UpdateFirmware, retrieveDate now
    diag [ftp|http]                         GetDiagnostics to DIR/diag/ (default ftp)

Tests import `DemoCSMS` and drive it: `received` holds every CALL a charge point sent,
`raw` every frame in both directions, `charge_points[id].call(...)` sends requests,
`refuse[action] = n` answers the next n CALLs of that action with a CALLERROR.
"""

import argparse
import asyncio
import datetime
import json
import logging
import ssl
import sys
import time

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as _OcppChargePoint
from ocpp.v16 import call_result
from ocpp.v16.enums import Action


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[
        :-3
    ] + "Z"


class _Conn:
    """Wraps the websocket so every frame in both directions is recorded and logged."""

    def __init__(self, ws, csms, cp_id):
        self.ws = ws
        self.csms = csms
        self.cp_id = cp_id

    async def recv(self):
        text = await self.ws.recv()
        self.csms._frame(self.cp_id, "->", text)
        return text

    async def send(self, text):
        self.csms._frame(self.cp_id, "<-", text)
        await self.ws.send(text)


class CentralChargePoint(_OcppChargePoint):
    """One connected charge point, seen from the central system."""

    def __init__(self, cp_id, conn, csms):
        super().__init__(cp_id, conn, response_timeout=csms.response_timeout)
        self.csms = csms

    async def route_message(self, raw_msg):
        try:
            msg = json.loads(raw_msg)
        except ValueError:
            msg = None
        call = isinstance(msg, list) and len(msg) == 4 and msg[0] == 2
        if call:
            if self.csms.on_call is not None:
                self.csms.on_call(self.id, msg[2], msg[3])
        elif isinstance(msg, list) and msg and msg[0] in (3, 4):
            self.csms.answers.append((self.id, msg))
        try:
            if call and self.csms.refuse.get(msg[2], 0) > 0:
                # A central system that fails to process the message (tests).
                self.csms.refuse[msg[2]] -= 1
                await self._send(json.dumps([4, msg[1], "InternalError", "refused", {}]))
                return
            await super().route_message(raw_msg)
        except websockets.ConnectionClosed:
            # The charge point closed the link while its CALL was handled: that answer is
            # lost. What it sent before closing is still queued (the CALLRESULT to a call of
            # ours that made it reconnect: a ChangeConfiguration of AuthorizationKey);
            # ending start() here would leave it unread and that call to time out.
            if not call:
                raise
        finally:
            # Recorded once its handler has run (a test that sees a StartTransaction here
            # finds its transaction id too), and even when answering failed (a cut link).
            if call:
                self.csms.received.append((self.id, msg[2], msg[3]))
            self.csms._changed()

    async def send_raw(self, text):
        """Send a frame as is (malformed-frame tests)."""
        await self._connection.send(text)

    # -- CP -> CS messages ------------------------------------------------------------

    @on(Action.boot_notification)
    def on_boot(self, **kw):
        status = self.csms.next_boot_status()
        return call_result.BootNotification(
            current_time=utcnow(), interval=self.csms.interval(status), status=status
        )

    @on(Action.heartbeat)
    def on_heartbeat(self):
        return call_result.Heartbeat(current_time=utcnow())

    @on(Action.authorize)
    def on_authorize(self, id_tag):
        return call_result.Authorize(id_tag_info={"status": self.csms.card_status(id_tag)})

    @on(Action.start_transaction)
    def on_start(self, connector_id, id_tag, meter_start, timestamp, **kw):
        key = (self.id, connector_id, id_tag, meter_start, timestamp)
        tx = self.csms.transactions_by_key.get(key)
        if tx is None:
            self.csms.next_tx_id += 1
            tx = self.csms.next_tx_id
            self.csms.transactions_by_key[key] = tx
            self.csms.transactions[tx] = {"cp": self.id, "start": key, "stops": []}
        return call_result.StartTransaction(
            transaction_id=tx, id_tag_info={"status": self.csms.card_status(id_tag)}
        )

    @on(Action.stop_transaction)
    def on_stop(self, transaction_id, meter_stop, timestamp, **kw):
        tx = self.csms.transactions.get(transaction_id)
        if tx is not None:
            tx["stops"].append((meter_stop, timestamp, kw.get("reason")))
        return call_result.StopTransaction()

    @on(Action.meter_values)
    def on_meter_values(self, **kw):
        return call_result.MeterValues()

    @on(Action.status_notification)
    def on_status(self, **kw):
        return call_result.StatusNotification()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id, **kw):
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.diagnostics_status_notification)
    def on_diag_status(self, **kw):
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_fw_status(self, **kw):
        return call_result.FirmwareStatusNotification()

    @on(Action.security_event_notification)
    def on_security_event(self, **kw):
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, **kw):
        return call_result.SignCertificate(status="Accepted")

    @on(Action.log_status_notification)
    def on_log_status(self, **kw):
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_fw_status(self, **kw):
        return call_result.SignedFirmwareStatusNotification()


class DemoCSMS:
    """A central system on 127.0.0.1. `boot_statuses`: the answers to successive
    BootNotifications (the last one repeats), e.g. ["Pending", "Accepted"]."""

    def __init__(self, boot_statuses=("Accepted",), cards=None, heartbeat_interval=300,
                 retry_interval=2, response_timeout=30, quiet=False, basic_auth=None):
        self.boot_statuses = list(boot_statuses)
        self.boots = 0
        self.cards = cards  # None: every card is accepted
        self.heartbeat_interval = heartbeat_interval
        self.retry_interval = retry_interval
        self.response_timeout = response_timeout
        self.quiet = quiet
        self.basic_auth = basic_auth  # (user, password) required, or None
        self.received = []  # (cp_id, action, payload) of every CALL from a charge point
        self.answers = []  # (cp_id, frame) of every CALLRESULT/CALLERROR from a charge point
        self.raw = []  # (cp_id, direction, text)
        self.charge_points = {}
        self.connections = 0
        self.auth_headers = []
        self.peer_certs = []  # DER of the client certificate of each connection (or None)
        self.transactions = {}
        self.transactions_by_key = {}
        self.next_tx_id = 0
        self.server = None
        self._event = asyncio.Event()
        # Tests: fn(cp_id, action, payload) called on every CALL before it is answered.
        self.on_call = None
        # Tests: {action: n}: answer the next n CALLs of `action` with CALLERROR InternalError.
        self.refuse = {}

    # -- policy ------------------------------------------------------------------------
    def next_boot_status(self):
        i = min(self.boots, len(self.boot_statuses) - 1)
        self.boots += 1
        return self.boot_statuses[i]

    def interval(self, status):
        return self.heartbeat_interval if status == "Accepted" else self.retry_interval

    def card_status(self, id_tag):
        if self.cards is None or id_tag in self.cards:
            return "Accepted"
        return "Invalid"

    # -- plumbing ----------------------------------------------------------------------
    def _frame(self, cp_id, direction, text):
        self.raw.append((cp_id, direction, text))
        if not self.quiet:
            stamp = time.strftime("%H:%M:%S")
            try:
                msg = json.loads(text)
                if isinstance(msg, list) and msg and msg[0] == 2 and len(msg) > 3:
                    text = "%s %s" % (msg[2], json.dumps(msg[3]))
            except ValueError:
                pass
            print("%s %s %s %s" % (stamp, cp_id, direction, text), flush=True)

    def _changed(self):
        self._event.set()

    async def wait_for(self, predicate, timeout=20.0):
        """Wait until predicate() is true (re-checked on every frame); returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("condition not met within %.1f s" % timeout)
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), min(left, 0.2))
            except asyncio.TimeoutError:
                pass

    def actions(self, cp_id=None):
        return [a for c, a, _ in self.received if cp_id is None or c == cp_id]

    async def _handler(self, ws):
        path = ws.request.path
        cp_id = path.rstrip("/").split("/")[-1]
        self.auth_headers.append(ws.request.headers.get("Authorization"))
        tls = ws.transport.get_extra_info("ssl_object")
        self.peer_certs.append(tls.getpeercert(binary_form=True) if tls else None)
        self.connections += 1
        cp = CentralChargePoint(cp_id, _Conn(ws, self, cp_id), self)
        self.charge_points[cp_id] = cp
        self._changed()
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.charge_points.get(cp_id) is cp:
                del self.charge_points[cp_id]
            self._changed()

    def _check_request(self, connection, request):
        if self.basic_auth is None:
            return None
        import base64

        expected = "Basic " + base64.b64encode(
            ("%s:%s" % self.basic_auth).encode()
        ).decode()
        if request.headers.get("Authorization") != expected:
            return connection.respond(401, "Unauthorized\n")
        return None

    async def start(self, host="127.0.0.1", port=0, ssl_context=None):
        from websockets.asyncio.server import serve

        self.server = await serve(
            self._handler,
            host,
            port,
            subprotocols=["ocpp1.6"],
            ssl=ssl_context,
            process_request=self._check_request,
            ping_interval=None,
            max_size=1 << 20,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


async def console(csms, root, host):
    """Serve `root` over HTTP and FTP; read `update ...` / `diag ...` lines from stdin."""
    import os

    from ocpp.v16 import call

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fileserver

    os.makedirs(os.path.join(root, "diag"), exist_ok=True)
    http = fileserver.serve_http(root, host=host)
    ftp = fileserver.serve_ftp(root, host=host)
    print("files of %s on %s and %s" % (root, http.url(), ftp.url()), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        words = line.split()
        if not words:
            continue
        if words[0] == "update" and len(words) == 2:
            url = words[1] if "://" in words[1] else http.url(words[1])
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            req = call.UpdateFirmware(location=url, retrieve_date=now)
        elif words[0] == "diag":
            srv = http if words[1:] == ["http"] else ftp
            req = call.GetDiagnostics(location=srv.url("diag/"))
        else:
            print("commands: update <url or file>, diag [ftp|http]", flush=True)
            continue
        for cp_id, cp in list(csms.charge_points.items()):
            try:
                print(cp_id, await cp.call(req, suppress=False), flush=True)
            except Exception as e:  # noqa: BLE001 - a demo console reports and goes on
                print(cp_id, "failed:", e, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--cert", help="server certificate (PEM) for wss://")
    ap.add_argument("--key", help="server key (PEM) for wss://")
    ap.add_argument("--cards", help="comma-separated accepted idTags (default: all)")
    ap.add_argument("--heartbeat", type=int, default=300, help="HeartbeatInterval to hand out")
    ap.add_argument("--files", help="directory served over HTTP and FTP (firmware, uploads)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    csms = DemoCSMS(cards=a.cards.split(",") if a.cards else None,
                    heartbeat_interval=a.heartbeat)

    async def run():
        port = await csms.start(a.host, a.port, ctx)
        print("demo central system on %s://%s:%d/ocpp/<identity>"
              % ("wss" if ctx else "ws", a.host, port), flush=True)
        if a.files:
            await console(csms, a.files, a.host)
        await asyncio.Future()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
