"""End-to-end: a dead link is noticed from traffic alone and the charger reconnects.

Between the firmware and the central system sits a TCP relay that can freeze: it keeps
both sockets open but stops forwarding, which is what a half-dead NAT or WiFi link looks
like. Nothing is closed, so only the websocket ping with its pong deadline can notice.
"""

import socket
import threading

import pytest
from ocpp.v16 import call

pytestmark = [pytest.mark.e2e, pytest.mark.csms(heartbeat_interval=3600)]


class FreezableRelay:
    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.frozen = set()  # connection numbers that no longer forward
        self.count = 0
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.upstream))
            n = self.count
            self.count += 1
            self.socks += [a, b]
            threading.Thread(target=self._pump, args=(a, b, n), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a, n), daemon=True).start()

    def _pump(self, src, dst, n):
        while True:
            try:
                data = src.recv(4096)
            except OSError:
                return
            if not data:
                return
            if n in self.frozen:
                continue  # swallowed: the link is dead, but nobody closes it
            try:
                dst.sendall(data)
            except OSError:
                return

    def freeze_all(self):
        self.frozen.update(range(self.count))

    def close(self):
        self.srv.close()
        for s in self.socks:
            s.close()


@pytest.fixture
def relay(csms):
    r = FreezableRelay(csms.port)
    yield r
    r.close()


def test_a_silent_dead_link_is_noticed_and_the_charger_reconnects(csms, relay, start_firmware):
    fw = start_firmware("ws://127.0.0.1:%d/ocpp/CP1" % relay.port, accepted=True)
    resp = csms.call("CP1", call.ChangeConfiguration(key="WebSocketPingInterval", value="2"))
    assert resp.status == "Accepted"
    boots = csms.csms.boots
    relay.freeze_all()
    # Nothing was closed; the firmware must find out by itself and connect anew.
    csms.wait_for(lambda: csms.csms.boots > boots, timeout=30)
    assert relay.count >= 2
    assert fw.wait_line("link dead") is not None, fw.output()
    fw.wait_accepted()
