"""End-to-end, issue 13 (Security Whitepaper): the firmware on the MicroPython unix port
against real central systems on 127.0.0.1 (tools/csms.py over ws and wss)."""

import base64
import time

import pytest
from conftest import check_ocpp
from e2e import CsmsThread, Firmware
from ocpp.v16 import call

pytestmark = pytest.mark.e2e

KEY = "0123456789abcdef0123"


@pytest.fixture
def firmware_factory(tmp_path):
    started = []

    def make(url="", data=None, **kw):
        fw = Firmware(data or tmp_path / "data", url, **kw)
        started.append(fw)
        return fw.start()

    yield make
    for fw in started:
        fw.stop()
        print("---- firmware log ----\n" + fw.output())


def _basic(key):
    return "Basic " + base64.b64encode(("CP1:" + key).encode()).decode()


def _assert_all_valid(*servers):
    for c in servers:
        for _, action, payload in c.csms.received:
            check_ocpp(action, payload)


def _boots(c):
    return sum(1 for _, a, _p in c.csms.received if a == "BootNotification")


def _give_key_and_profile(c, profile):
    boots = _boots(c)
    resp = c.call("CP1", call.ChangeConfiguration(key="AuthorizationKey", value=KEY))
    assert resp.status == "Accepted"
    c.wait_for(lambda: _basic(KEY) in c.csms.auth_headers)  # reconnected with the key
    # The new connection is the one in use once its BootNotification came (not the old,
    # closing one: a call sent there would never be answered).
    c.wait_for(lambda: _boots(c) > boots, timeout=60)
    resp = c.call("CP1", call.ChangeConfiguration(key="SecurityProfile", value=str(profile)))
    assert resp.status == "Accepted"


def test_a_local_user_cannot_redirect_the_authorization_key(firmware_factory):
    """The attack of issue 13: with no API password, point ocppu at another server."""
    a = CsmsThread(heartbeat_interval=60)
    a.start()
    b = CsmsThread(heartbeat_interval=60)  # the attacker's server: records every header
    b.start()
    try:
        fw = firmware_factory(a.url())
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",))
        _give_key_and_profile(a, 1)
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",))
        code, body = fw.set(ocppu=b.url())
        assert code == 200, body
        b.wait_for(lambda: "BootNotification" in b.csms.actions(), timeout=30)
        assert b.csms.auth_headers and set(b.csms.auth_headers) == {None}
        assert KEY not in fw.output()
        # Back to the central system that gave the key: it is sent there again.
        before = len(a.csms.auth_headers)
        assert fw.set(ocppu=a.url())[0] == 200
        a.wait_for(lambda: len(a.csms.auth_headers) > before, timeout=30)
        assert a.csms.auth_headers[-1] == _basic(KEY)
        assert set(b.csms.auth_headers) == {None}
        _assert_all_valid(a, b)
    finally:
        a.close()
        b.close()


def test_profile_2_refuses_to_stop_verifying_the_server(tmp_path, firmware_factory):
    from tlsutil import make_pki, server_context

    pki = make_pki(tmp_path)
    a = CsmsThread(heartbeat_interval=60)
    a.start(ssl_context=server_context(pki))
    other = tmp_path / "other"
    other.mkdir()
    b = CsmsThread(heartbeat_interval=60)  # self-signed: a CA the charger does not know
    b.start(ssl_context=server_context(make_pki(other)))
    try:
        fw = firmware_factory()
        code, body = fw.set(ocppsc=pki["ca_pem"], ocppg=False, ocppu=a.url(scheme="wss"),
                            ocppe=True)
        assert code == 200, body
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=40)
        _give_key_and_profile(a, 2)
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=40)
        for extra in ({"ocppss": True}, {"ocppcn": True}):
            code, body = fw.set(ocppu=b.url(scheme="wss"), **extra)
            assert code == 400, body
            assert "SecurityProfile" in body[next(iter(extra))]
        assert fw.status("ocppu")["ocppu"] == a.url(scheme="wss")  # nothing applied
        # The URL alone may change, but the unknown server is never trusted.
        assert fw.set(ocppu=b.url(scheme="wss"))[0] == 200
        fw.wait_status(lambda s: s["ocpple"] is not None and not s["ocppc"],
                       keys=("ocpple", "ocppc"), timeout=40)
        assert b.csms.auth_headers == []
        _assert_all_valid(a)
    finally:
        a.close()
        b.close()


def _events(c):
    return [p for _, a, p in c.csms.received if a == "SecurityEventNotification"]


def test_critical_events_survive_a_power_cut_and_arrive_in_order(tmp_path, firmware_factory):
    from e2e import free_port

    port = free_port()
    url = "ws://127.0.0.1:%d/ocpp/CP1" % port  # nobody listens yet: an outage
    fw = firmware_factory(url)
    assert fw.set(ocppss=True)[0] == 200  # ReconfigurationOfSecurityParameters
    q = tmp_path / "data" / "security" / "q.log"
    deadline = time.monotonic() + 10
    while q.read_text().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    fw.kill()  # SIGKILL: a power cut
    fw.proc.wait(10)
    c = CsmsThread(heartbeat_interval=60)
    c.start(port=port)
    try:
        firmware_factory(url)
        c.wait_for(lambda: len(_events(c)) >= 3, timeout=30)
        got = [(p["type"], p.get("techInfo", "")) for p in _events(c)]
        assert [t for t, _ in got[:3]] == [
            "StartupOfTheDevice", "ReconfigurationOfSecurityParameters", "StartupOfTheDevice"]
        assert got[1][1] == "ocppss"
        _assert_all_valid(c)
    finally:
        c.close()


def test_a_redirect_away_from_the_key_is_a_security_event(firmware_factory):
    a = CsmsThread(heartbeat_interval=60)
    a.start()
    b = CsmsThread(heartbeat_interval=60)
    b.start()
    try:
        fw = firmware_factory(a.url())
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",))
        _give_key_and_profile(a, 1)
        assert fw.set(ocppu=b.url())[0] == 200
        b.wait_for(lambda: any("withheld" in p.get("techInfo", "") for p in _events(b)),
                   timeout=30)
        _assert_all_valid(a, b)
    finally:
        a.close()
        b.close()


def _hash_data(pem):
    import hashlib

    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import serialization

    c = cx.load_pem_x509_certificate(pem.encode())
    bits = c.public_key().public_bytes(serialization.Encoding.X962,
                                       serialization.PublicFormat.UncompressedPoint)
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(c.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(bits).hexdigest(),
        "serialNumber": "%x" % c.serial_number,
    }


def _camel(d):
    return {"".join(w.capitalize() if i else w for i, w in enumerate(k.split("_"))): v
            for k, v in d.items()}


def test_installed_central_system_root_verifies_the_link(tmp_path, firmware_factory):
    from tlsutil import make_pki, server_context

    pki = make_pki(tmp_path)
    a = CsmsThread(heartbeat_interval=60)
    a.start()
    b = CsmsThread(heartbeat_interval=60)
    b.start(ssl_context=server_context(pki))
    cs = "CentralSystemRootCertificate"
    try:
        fw = firmware_factory(a.url())
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",))
        r = a.call("CP1", call.GetInstalledCertificateIds(certificate_type=cs))
        assert r.status == "NotFound"
        leaf = open(pki["server_cert"]).read()
        r = a.call("CP1", call.InstallCertificate(certificate_type=cs, certificate=leaf))
        assert r.status == "Rejected"  # not a CA
        r = a.call("CP1", call.InstallCertificate(certificate_type=cs,
                                                  certificate=pki["ca_pem"]))
        assert r.status == "Accepted"
        r = a.call("CP1", call.GetInstalledCertificateIds(certificate_type=cs))
        assert r.status == "Accepted"
        assert [_camel(d) for d in r.certificate_hash_data] == [_hash_data(pki["ca_pem"])]
        r = a.call("CP1", call.GetInstalledCertificateIds(
            certificate_type="ManufacturerRootCertificate"))
        assert r.status == "NotFound"
        # No ocppsc, no global store: only the installed root can verify the server.
        code, body = fw.set(ocppu=b.url(scheme="wss"), ocppg=False, ocppsc="")
        assert code == 200, body
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=40)
        hd = _hash_data(pki["ca_pem"])
        r = b.call("CP1", call.DeleteCertificate(certificate_hash_data=hd))
        assert r.status == "Accepted"
        r = b.call("CP1", call.DeleteCertificate(certificate_hash_data=hd))
        assert r.status == "NotFound"
        r = b.call("CP1", call.GetInstalledCertificateIds(certificate_type=cs))
        assert r.status == "NotFound"
        _assert_all_valid(a, b)
    finally:
        a.close()
        b.close()


def _sign(ca_pem, ca_key_pem, csr_pem, days=30):
    """The central system's CA signs a CSR (the test's stand-in for a CPO's PKI)."""
    import datetime

    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca = cx.load_pem_x509_certificate(ca_pem.encode())
    key = serialization.load_pem_private_key(ca_key_pem.encode(), None)
    req = cx.load_pem_x509_csr(csr_pem.encode())
    assert req.is_signature_valid
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (cx.CertificateBuilder().subject_name(req.subject).issuer_name(ca.subject)
            .public_key(req.public_key()).serial_number(cx.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(cx.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(cx.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _csrs(c):
    return [p["csr"] for _, a, p in c.csms.received if a == "SignCertificate"]


def _trigger_csr(c, n):
    r = c.call("CP1", call.ExtendedTriggerMessage(
        requested_message="SignChargePointCertificate"))
    assert r.status == "Accepted"
    c.wait_for(lambda: len(_csrs(c)) >= n, timeout=30)
    return _csrs(c)[n - 1]


def test_profile_3_key_made_on_the_charger_csr_signed_then_mutual_tls(tmp_path,
                                                                      firmware_factory):
    """SignCertificate / CertificateSigned end to end: the key is made on the charger, the
    CSR signed by the central system's CA, the chain checked and installed, and the link
    reconnects presenting it to a server that requires client certificates."""
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID
    from tlsutil import make_pki, server_context

    pki = make_pki(tmp_path)
    (tmp_path / "w").mkdir()
    wrong = make_pki(tmp_path / "w")
    import ssl

    ctx = server_context(pki)  # asks for a client certificate, does not require one
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cafile=pki["ca"])
    a = CsmsThread(heartbeat_interval=60)
    a.start(ssl_context=ctx)
    b = CsmsThread(heartbeat_interval=60)  # requires a client certificate of the CA
    b.start(ssl_context=server_context(pki, client_auth=True))
    try:
        fw = firmware_factory()
        code, body = fw.set(ocppsc=pki["ca_pem"], ocppg=False, ocppu=a.url(scheme="wss"),
                            ocppe=True)
        assert code == 200, body
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=40)
        assert a.csms.peer_certs == [None]
        r = a.call("CP1", call.ChangeConfiguration(key="CpoName", value="Test CPO"))
        assert r.status == "Accepted"
        r = a.call("CP1", call.ChangeConfiguration(key="SecurityProfile", value="3"))
        assert r.status == "Rejected"  # no client certificate yet
        # A chain with no request outstanding.
        r = a.call("CP1", call.CertificateSigned(certificate_chain=pki["client_cert_pem"]))
        assert r.status == "Rejected"

        csr = cx.load_pem_x509_csr(_trigger_csr(a, 1).encode())
        assert csr.is_signature_valid
        assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SIM-0001"
        assert csr.subject.get_attributes_for_oid(
            NameOID.ORGANIZATION_NAME)[0].value == "Test CPO"
        assert csr.public_key().curve.name == "secp256r1"
        csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
        # Signed by a CA the charger does not trust; a certificate for another key.
        for bad in (_sign(wrong["ca_pem"], wrong["ca_key_pem"], csr_pem),
                    pki["client_cert_pem"]):
            r = a.call("CP1", call.CertificateSigned(certificate_chain=bad))
            assert r.status == "Rejected"
        a.wait_for(lambda: sum(p["type"] == "InvalidChargePointCertificate"
                               for p in _events(a)) >= 3, timeout=30)
        assert not (tmp_path / "data" / "security" / "cp.pem").exists()

        good = _sign(pki["ca_pem"], pki["ca_key_pem"], csr_pem)
        good_der = cx.load_pem_x509_certificate(good.encode()).public_bytes(
            serialization.Encoding.DER)
        r = a.call("CP1", call.CertificateSigned(certificate_chain=good))
        assert r.status == "Accepted"
        a.wait_for(lambda: a.csms.peer_certs[-1] == good_der and "CP1" in
                   a.csms.charge_points, timeout=40)  # reconnected presenting it
        # The server that requires client certificates takes it.
        assert fw.set(ocppu=b.url(scheme="wss"))[0] == 200
        b.wait_for(lambda: "BootNotification" in b.csms.actions(), timeout=40)
        assert b.csms.peer_certs[-1] == good_der
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=40)
        r = b.call("CP1", call.ChangeConfiguration(key="SecurityProfile", value="3"))
        assert r.status == "Accepted"
        b.wait_for(lambda: len(b.csms.peer_certs) >= 2 and "CP1" in b.csms.charge_points,
                   timeout=40)
        assert b.csms.peer_certs[-1] == good_der
        # The key is never readable: not over OCPP, not over the local API.
        r = b.call("CP1", call.GetConfiguration(key=["SecurityProfile", "CpoName"]))
        assert [k["value"] for k in r.configuration_key] == ["3", "Test CPO"]
        assert "PRIVATE" not in repr(r)
        assert "PRIVATE" not in repr(fw.status())
        _assert_all_valid(a, b)
    finally:
        a.close()
        b.close()


def test_a_raised_profile_that_cannot_connect_falls_back(tmp_path, firmware_factory):
    """2 -> 3 on a central system that still wants HTTP Basic: profile 3 sends none, every
    attempt is refused (401); after 5 attempts in a row the charger goes back to 2, says so
    with a security event, and connects again."""
    from tlsutil import make_pki, server_context

    pki = make_pki(tmp_path)
    c = CsmsThread(heartbeat_interval=60)
    c.start(ssl_context=server_context(pki))
    try:
        fw = firmware_factory()
        for kw in ({"ocppcc": pki["client_cert_pem"]}, {"ocppck": pki["client_key_pem"]},
                   {"ocppsc": pki["ca_pem"], "ocppg": False, "ocppe": True,
                    "ocppu": c.url(scheme="wss")}):
            code, body = fw.set(**kw)
            assert code == 200, body
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=40)
        _give_key_and_profile(c, 2)
        c.csms.basic_auth = ("CP1", KEY)  # from now on the server wants the key
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=40)
        r = c.call("CP1", call.ChangeConfiguration(key="SecurityProfile", value="1"))
        assert r.status == "Rejected"  # never lowered
        before = len(c.csms.auth_headers)
        r = c.call("CP1", call.ChangeConfiguration(key="SecurityProfile", value="3"))
        assert r.status == "Accepted"
        # Five failed attempts with the reconnect backoff: about 30 s, longer on a loaded
        # machine (the TLS handshakes of the MicroPython VM are slow there).
        c.wait_for(lambda: any("back to 2" in p.get("techInfo", "") for p in _events(c)),
                   timeout=180)
        c.wait_for(lambda: len(c.csms.auth_headers) > before, timeout=60)
        # The five profile-3 attempts were refused (401, never let in); back at 2, Basic.
        assert set(c.csms.auth_headers[before:]) == {_basic(KEY)}
        assert fw.output().count("HTTP 401") >= 5
        r = c.call("CP1", call.GetConfiguration(key=["SecurityProfile"]))
        assert r.configuration_key[0]["value"] == "2"
        _assert_all_valid(c)
    finally:
        c.close()


def _log_statuses(c):
    return [(p["status"], p.get("requestId")) for _, a, p in c.csms.received
            if a == "LogStatusNotification"]


def test_get_log_uploads_the_security_and_the_diagnostics_log(tmp_path, firmware_factory):
    from e2e import free_port

    import fileserver

    root = tmp_path / "srv"
    (root / "diag").mkdir(parents=True)  # FTP STOR does not make directories
    http = fileserver.serve_http(str(root))
    ftp = fileserver.serve_ftp(str(root))
    c = CsmsThread(heartbeat_interval=60)
    c.start()
    try:
        fw = firmware_factory(c.url())
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",))
        r = c.call("CP1", call.GetLog(log_type="SecurityLog", request_id=5,
                                      log={"remoteLocation": http.url("sec/")}))
        assert r.status == "Accepted" and r.filename.startswith("security-SIM-0001-")
        c.wait_for(lambda: ("Uploaded", 5) in _log_statuses(c), timeout=30)
        text = (root / "sec" / r.filename).read_text()
        assert text.count("StartupOfTheDevice firmware") == 1
        # Only the events up to a time: none before the firmware started.
        r = c.call("CP1", call.GetLog(log_type="SecurityLog", request_id=6, log={
            "remoteLocation": http.url("old/"), "latestTimestamp": "2000-01-01T00:00:00Z"}))
        c.wait_for(lambda: ("Uploaded", 6) in _log_statuses(c), timeout=30)
        assert (root / "old" / r.filename).read_text() == ""
        r = c.call("CP1", call.GetLog(log_type="DiagnosticsLog", request_id=7,
                                      log={"remoteLocation": ftp.url("diag/")}))
        assert r.status == "Accepted"
        c.wait_for(lambda: ("Uploaded", 7) in _log_statuses(c), timeout=30)
        diag = (root / "diag" / r.filename).read_text()
        assert "## configuration" in diag and KEY not in diag
        r = c.call("CP1", call.GetLog(log_type="SecurityLog", request_id=8, retries=2,
                                      retry_interval=1, log={
                                          "remoteLocation": "ftp://u:p@127.0.0.1:%d/"
                                                            % free_port()}))
        assert r.status == "Accepted"
        c.wait_for(lambda: ("UploadFailure", 8) in _log_statuses(c), timeout=30)
        r = c.call("CP1", call.GetLog(log_type="SecurityLog", request_id=9,
                                      log={"remoteLocation": "file:///etc/"}))
        assert r.status == "Rejected"
        assert [s for s in _log_statuses(c)] == [
            ("Uploading", 5), ("Uploaded", 5), ("Uploading", 6), ("Uploaded", 6),
            ("Uploading", 7), ("Uploaded", 7), ("Uploading", 8), ("UploadFailure", 8)]
        _assert_all_valid(c)
    finally:
        c.close()
        http.stop()
        ftp.stop()
