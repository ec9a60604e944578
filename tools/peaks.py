"""The peaks a central system can cause at any moment (issue 9), for the reference scenario of
`make bench` (tools/bench.py): while the car charges, the demo central system sends each
request below, one after the other, and waits for its answer and for what it starts.

    p = Peaks(csms, fw)          # csms: tests_host/e2e.py CsmsThread; fw: its Firmware
    p.during(tx_id)              # True, or "fail: <request> <what went wrong>"
    p.after()                    # once the session is over (the reservation, see below)
    p.close()                    # the file server, the temporary files

During the session, in this order (STEPS; in brackets what makes it a peak), each passing
with the answer given after the arrow:
- configuration: GetConfiguration without a key -> every key (at least 20, none unknown);
- profile: SetChargingProfile, a TxProfile for the running transaction on connector 1 [24
  periods, ChargingScheduleMaxPeriods] -> Accepted; GetCompositeSchedule of connector 1
  [86400 s, a day] -> Accepted with a schedule; ClearChargingProfile of that profile ->
  Accepted, so the rest of the session charges as before;
- local_list: SendLocalList Full [32 cards, SendLocalListMaxLength, each with an expiry and
  a parent] -> Accepted;
- trigger: TriggerMessage StatusNotification of connector 1 -> Accepted, and that
  StatusNotification arrives (not MeterValues: the scenario counts the periodic ones);
- data_transfer: DataTransfer of another vendor whose whole CALL frame is FRAME_BYTES long
  [just under the 16 KiB websocket cap of firmware/ocpp/session.py] -> any status;
- update_firmware: UpdateFirmware of a bundle of tools/release.py served over HTTP with a
  byte flipped in its last file, retrieveDate now, one attempt [the download and unpacking
  code, run over the whole bundle] -> answered, then FirmwareStatusNotification
  DownloadFailed for that file's SHA-256 (nothing is installed: the firmware never reboots);
- diagnostics: GetDiagnostics to an HTTP file server (tools/fileserver.py) -> a fileName,
  then DiagnosticsStatusNotification Uploaded and the file on the server;
- reserve_busy: ReserveNow of connector 1 [the reservation code] -> Occupied (a car is in);
- certificates: InstallCertificate of a CentralSystemRootCertificate [an RSA-4096 root of
  ROOT_CHARS characters, the schema allows 5500] -> Accepted; ExtendedTriggerMessage
  SignChargePointCertificate [a key made on the charger, its CSR] -> Accepted and a
  SignCertificate arrives; CertificateSigned with a chain signed for that CSR [leaf and an
  RSA-4096 intermediate, CHAIN_CHARS characters: CertificateSignedMaxChainSize is 5600;
  checked up to the root just installed] -> Accepted.
After the session (no car: the station can be reserved): ReserveNow of connector 0 ->
Accepted, then CancelReservation of it -> Accepted.

The fail string names the request and how it failed: "fail: DataTransfer got InternalError
(out of memory)" (a CALLERROR), "fail: GetConfiguration no answer within 30 s",
"fail: SetChargingProfile answered Rejected", "fail: GetDiagnostics: no Uploaded (got
['Uploading', 'UploadFailed'])". The certificates and the bundle are made once a process
(`cryptography`, tools/release.py); the CSR is signed anew in every run.

    python tools/peaks.py [--frozen32 | --mpy32] [--hi KIB] [NAME ...]

runs bench.min_heap_kib (--quick) with each named peak alone (default: none, then each) and
prints the smallest heap each needs and what failed just below it: where the heap goes.
"""

import asyncio
import concurrent.futures
import datetime
import logging
import os
import shutil
import tempfile
import time

FRAME_BYTES = 16380  # the DataTransfer CALL frame; the firmware's cap is 16384
ROOT_CHARS = 5480  # InstallCertificate: the schema allows 5500
CHAIN_CHARS = 5590  # CertificateSigned: CertificateSignedMaxChainSize is 5600
CARDS = 32  # SendLocalListMaxLength
PERIODS = 24  # ChargingScheduleMaxPeriods
PROFILE_ID = 901
RESERVATION_ID = 77
ANSWER_S = 35  # the demo central system waits 30 s (its response_timeout) for an answer
FOLLOW_S = 60  # for what a request starts (an upload, a download attempt, a CSR)

# The peaks of during(), in their order; ONLY (names of STEPS) limits a run to those (the
# command line below), "none" to none of them.
STEPS = ("configuration", "profile", "local_list", "trigger", "data_transfer",
         "update_firmware", "diagnostics", "reserve_busy", "certificates")
ONLY = []
_PKI = {}
_BUNDLE = {}


def _utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def corrupt_bundle():
    """An application bundle of tools/release.py with a byte flipped inside its last file:
    downloaded and unpacked whole, then refused for that file's SHA-256. Made once a
    process."""
    if "bundle" not in _BUNDLE:
        import release

        out = tempfile.mkdtemp(prefix="bench-release-")
        try:
            path, _ = release.release("9.9.9", out)
            with open(path, "rb") as f:
                data = bytearray(f.read())
        finally:
            shutil.rmtree(out, ignore_errors=True)
        data[-10] ^= 0xFF
        _BUNDLE["bundle"] = bytes(data)
    return _BUNDLE["bundle"]


class Peaks:
    def __init__(self, csms, fw):
        self.csms = csms
        self.c = csms.csms
        self.fw = fw
        self.dir = tempfile.mkdtemp(prefix="bench-peaks-")
        os.makedirs(os.path.join(self.dir, "diag"))
        self.http = None
        self.n = 0
        self.seconds = {}  # how long each step of during() took
        # A CALLERROR is reported in the fail string; not also as the package's warning.
        logging.getLogger("ocpp").setLevel(logging.ERROR)
        pki_material()  # made once a process, before any session: not in its timing
        corrupt_bundle()

    def close(self):
        if self.http is not None:
            self.http.stop()
            self.http = None
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- plumbing ------------------------------------------------------------------------
    def call(self, payload, uid=None):
        """The answer (an ocpp call_result) to `payload`, or raises Failed with the reason."""
        name = type(payload).__name__
        self.n += 1
        uid = uid or "peak-%d" % self.n
        cp = self.c.charge_points.get("CP1")
        if cp is None:
            raise Failed("%s: no OCPP link to send it on" % name)
        try:
            return self.csms.run(cp.call(payload, suppress=False, unique_id=uid), ANSWER_S)
        except (TimeoutError, asyncio.TimeoutError, concurrent.futures.TimeoutError):
            raise Failed("%s no answer within %d s" % (name, self.c.response_timeout))
        except Exception as e:  # noqa: BLE001 - a CALLERROR, or an answer the schema refuses
            frame = self.answer(uid)
            if frame is not None and frame[0] == 4:
                raise Failed("%s got %s (%s)" % (name, frame[2], frame[3]))
            raise Failed("%s answer not valid: %s %r" % (name, type(e).__name__, e))

    def answer(self, uid):
        for _, frame in list(self.c.answers):
            if len(frame) > 1 and frame[1] == uid:
                return frame
        return None

    def expect(self, payload, *statuses):
        r = self.call(payload)
        if statuses and r.status not in statuses:
            raise Failed("%s answered %s" % (type(payload).__name__, r.status))
        return r

    def follow(self, what, predicate, seen=None):
        """Wait until predicate(); else Failed: `what` within FOLLOW_S (and seen(), what
        came instead)."""
        try:
            self.csms.wait_for(predicate, timeout=FOLLOW_S)
        except (TimeoutError, asyncio.TimeoutError, concurrent.futures.TimeoutError):
            extra = "" if seen is None else " (got %r)" % (seen(),)
            raise Failed("%s within %d s%s" % (what, FOLLOW_S, extra))

    def sent(self, action, since):
        return [p for _, a, p in self.c.received[since:] if a == action]

    # -- the peaks -----------------------------------------------------------------------
    def during(self, tx_id):
        """Every peak of the session (those of ONLY when set); True or "fail: ..."."""
        try:
            for name in STEPS:
                if ONLY and name not in ONLY:
                    continue
                t = time.monotonic()
                getattr(self, name)(tx_id)
                self.seconds[name] = time.monotonic() - t
        except Failed as e:
            return "fail: %s" % e
        return True

    def after(self):
        """A reservation of the station once no car is there, then its cancellation."""
        from ocpp.v16 import call

        if ONLY and "reserve_busy" not in ONLY:
            return True
        try:
            self.expect(call.ReserveNow(connector_id=0, expiry_date=_utc(time.time() + 3600),
                                        id_tag="BENCH002", reservation_id=RESERVATION_ID),
                        "Accepted")
            self.expect(call.CancelReservation(reservation_id=RESERVATION_ID), "Accepted")
        except Failed as e:
            return "fail: %s" % e
        return True

    def configuration(self, tx_id):
        from ocpp.v16 import call

        r = self.call(call.GetConfiguration())
        if r.unknown_key or len(r.configuration_key or ()) < 20:
            raise Failed("GetConfiguration answered %d keys"
                         % len(r.configuration_key or ()))

    def profile(self, tx_id):
        from ocpp.v16 import call

        periods = [{"startPeriod": i * 600, "limit": 16 - i % 6, "numberPhases": 3}
                   for i in range(PERIODS)]
        self.expect(call.SetChargingProfile(connector_id=1, cs_charging_profiles={
            "chargingProfileId": PROFILE_ID, "transactionId": tx_id, "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "minChargingRate": 6,
                                 "chargingSchedulePeriod": periods}}), "Accepted")
        r = self.expect(call.GetCompositeSchedule(connector_id=1, duration=86400,
                                                  charging_rate_unit="A"), "Accepted")
        if not r.charging_schedule:
            raise Failed("GetCompositeSchedule answered no schedule")
        self.expect(call.ClearChargingProfile(id=PROFILE_ID), "Accepted")

    def local_list(self, tx_id):
        from ocpp.v16 import call

        exp = _utc(time.time() + 30 * 86400)
        cards = [{"idTag": "PEAK%04d" % i, "idTagInfo": {
            "status": "Accepted", "expiryDate": exp, "parentIdTag": "FLEET%02d" % (i % 4)}}
            for i in range(CARDS)]
        self.expect(call.SendLocalList(list_version=7, update_type="Full",
                                       local_authorization_list=cards), "Accepted")

    def trigger(self, tx_id):
        from ocpp.v16 import call

        since = len(self.c.received)
        self.expect(call.TriggerMessage(requested_message="StatusNotification",
                                        connector_id=1), "Accepted")
        self.follow("TriggerMessage: no StatusNotification of connector 1",
                    lambda: any(p["connectorId"] == 1
                                for p in self.sent("StatusNotification", since)))

    def data_transfer(self, tx_id):
        uid = "peak-data"
        r = self.call(data_transfer(uid), uid)
        sent = [t for _, d, t in self.c.raw if d == "<-" and t.startswith('[2,"%s"' % uid)]
        if [len(t.encode()) for t in sent] != [FRAME_BYTES]:
            raise RuntimeError("the DataTransfer frame is not %d bytes" % FRAME_BYTES)
        if r.status not in ("UnknownVendorId", "UnknownMessageId", "Accepted", "Rejected"):
            raise Failed("DataTransfer answered %s" % r.status)

    def update_firmware(self, tx_id):
        from ocpp.v16 import call

        with open(os.path.join(self.dir, "fw.bundle"), "wb") as f:
            f.write(corrupt_bundle())
        since = len(self.c.received)
        self.call(call.UpdateFirmware(location=self.server().url("fw.bundle"),
                                      retrieve_date=_utc(time.time() - 1), retries=1))

        def statuses():
            return [p["status"] for p in self.sent("FirmwareStatusNotification", since)]

        self.follow("UpdateFirmware: no DownloadFailed",
                    lambda: {"Downloaded", "DownloadFailed"} & set(statuses()), statuses)
        if "DownloadFailed" in statuses():
            self.fw.wait_line("download failed")  # why (the output may be a moment behind)
        why = [line for line in self.fw.lines if "download failed" in line]
        if "DownloadFailed" not in statuses() or not why or "sha" not in why[-1].lower():
            raise Failed("UpdateFirmware: not refused for its checksum (got %r, %r)"
                         % (statuses(), why[-1:]))

    def server(self):
        import fileserver

        if self.http is None:
            self.http = fileserver.serve_http(self.dir)
        return self.http

    def diagnostics(self, tx_id):
        from ocpp.v16 import call

        since = len(self.c.received)
        r = self.call(call.GetDiagnostics(location=self.server().url("diag/")))
        if not r.file_name:
            raise Failed("GetDiagnostics answered no fileName")

        def statuses():
            return [p["status"] for p in self.sent("DiagnosticsStatusNotification", since)]

        self.follow("GetDiagnostics: no Uploaded",
                    lambda: {"Uploaded", "UploadFailed"} & set(statuses()), statuses)
        if "Uploaded" not in statuses():
            raise Failed("GetDiagnostics: no Uploaded (got %r)" % (statuses(),))
        if not any(u[0] == "diag/" + r.file_name for u in self.http.uploads):
            raise Failed("GetDiagnostics: %s not on the server" % r.file_name)

    def reserve_busy(self, tx_id):
        from ocpp.v16 import call

        self.expect(call.ReserveNow(connector_id=1, expiry_date=_utc(time.time() + 3600),
                                    id_tag="BENCH002", reservation_id=RESERVATION_ID),
                    "Occupied")

    def certificates(self, tx_id):
        from ocpp.v16 import call

        pki = pki_material()
        self.expect(call.InstallCertificate(certificate_type="CentralSystemRootCertificate",
                                            certificate=pki["root_pem"]), "Accepted")
        since = len(self.c.received)
        self.expect(call.ExtendedTriggerMessage(
            requested_message="SignChargePointCertificate"), "Accepted")
        self.follow("ExtendedTriggerMessage: no SignCertificate",
                    lambda: self.sent("SignCertificate", since))
        chain = sign_chain(self.sent("SignCertificate", since)[0]["csr"])
        self.expect(call.CertificateSigned(certificate_chain=chain), "Accepted")


class Failed(Exception):
    pass


def data_transfer(uid):
    """A DataTransfer of another vendor whose CALL frame (uid as its unique id, encoded as the
    `ocpp` package encodes it) is FRAME_BYTES long."""
    import json

    from ocpp.v16 import call

    def frame(data):
        p = {"vendorId": "com.example.fleet", "messageId": "TariffTable", "data": data}
        return json.dumps([2, uid, "DataTransfer", p], separators=(",", ":"))

    row = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ;"
    n = FRAME_BYTES - len(frame(""))
    data = (row * (n // len(row) + 1))[:n]
    assert len(frame(data)) == FRAME_BYTES
    return call.DataTransfer(vendor_id="com.example.fleet", message_id="TariffTable",
                             data=data)


# ---------------------------------------------------------------- certificates


def _pad_ext(n):
    """A non-critical private extension of n content bytes (stands in for the policies,
    distribution points and names of a real CPO's certificates)."""
    from cryptography import x509 as cx

    return cx.UnrecognizedExtension(cx.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x00" * n)


def _ca_cert(cn, key, issuer, issuer_key, pad, days=3650):
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    name = cx.Name([cx.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                    cx.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench CPO"),
                    cx.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (cx.CertificateBuilder().subject_name(name)
         .issuer_name(name if issuer is None else issuer.subject)
         .public_key(key.public_key()).serial_number(cx.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(cx.BasicConstraints(ca=True, path_length=None), True)
         .add_extension(cx.KeyUsage(True, False, False, False, False, True, True, False,
                                    False), True))
    if pad:
        b = b.add_extension(_pad_ext(pad), False)
    return b.sign(issuer_key or key, hashes.SHA256())


def _pem(cert):
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _leaf(csr_pem, inter, inter_key):
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    req = cx.load_pem_x509_csr(csr_pem.encode())
    now = datetime.datetime.now(datetime.timezone.utc)
    return (cx.CertificateBuilder().subject_name(req.subject).issuer_name(inter.subject)
            .public_key(req.public_key()).serial_number(cx.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(cx.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(cx.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(inter_key, hashes.SHA256()))


def _fit(make, target):
    """The certificate make(pad) whose PEM is as long as possible, at most `target`."""
    pad = 0
    for _ in range(8):
        size = len(_pem(make(pad)))
        if target - 8 <= size <= target:
            break
        pad = max(0, pad + (target - 4 - size) * 3 // 4)
    cert = make(pad)
    while len(_pem(cert)) > target:
        pad -= 16
        cert = make(pad)
    return cert


def pki_material():
    """The root (ROOT_CHARS, for InstallCertificate) and the intermediate sized so that a leaf
    for the charger's CSR and it make a chain of about CHAIN_CHARS. Made once a process."""
    if _PKI:
        return _PKI
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    root_key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    root = _fit(lambda pad: _ca_cert("Bench Root CA", root_key, None, None, pad), ROOT_CHARS)
    inter_key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    # A leaf for a P-256 key and a subject as the firmware's CSR has it (CN = serial): its
    # size is the same for every CSR, give or take a byte of the random serial.
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes, serialization

    k = ec.generate_private_key(ec.SECP256R1())
    subject = cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, "SIM-0001")])
    csr = cx.CertificateSigningRequestBuilder().subject_name(subject).sign(k, hashes.SHA256())
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()

    def inter(pad):
        return _ca_cert("Bench Sub CA", inter_key, root, root_key, pad)

    leaf_chars = len(_pem(_leaf(csr_pem, inter(0), inter_key)))
    it = _fit(inter, CHAIN_CHARS - leaf_chars - 4)  # room for a longer serial, subject
    _PKI.update(root_pem=_pem(root), inter=it, inter_key=inter_key, inter_pem=_pem(it))
    return _PKI


def sign_chain(csr_pem):
    """The chain (leaf for the CSR, then the intermediate) that CertificateSigned sends."""
    pki = pki_material()
    chain = _pem(_leaf(csr_pem, pki["inter"], pki["inter_key"])) + pki["inter_pem"]
    if len(chain) > 5600:
        raise RuntimeError("chain of %d characters: over CertificateSignedMaxChainSize"
                           % len(chain))
    return chain


def main():
    """Each peak alone: the smallest heap at which the reference scenario passes with only
    that peak (bench.min_heap_kib, --quick bisection), and what failed just below."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="peaks (%s, none); default: each"
                    % ", ".join(STEPS))
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--frozen32", action="store_true", help="32-bit, firmware frozen in")
    where.add_argument("--mpy32", action="store_true", help="32-bit, from .mpy files")
    ap.add_argument("--hi", type=int, default=1024, help="a heap (KiB) that passes")
    a = ap.parse_args()
    names = a.names or ["none"] + list(STEPS)
    for n in names:
        if n != "none" and n not in STEPS:
            sys.exit("unknown peak %r" % n)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench
    import build
    import mp32
    import peaks  # the module bench uses (this file runs as __main__)

    bench.QUICK["on"] = True
    build.compile_all(bench.BOARD)
    build.compile_files(build.host_files(), bench.BOARD, "x64")
    setup = None
    if a.frozen32:
        setup = bench.frozen_in(mp32.frozen())
    elif a.mpy32:
        build.compile_all(bench.BOARD32, mp32.MARCH)
        build.compile_files(build.host_files(), bench.BOARD32, mp32.MARCH)
        setup = bench.from_mpy(bench.BOARD32, mp32.plain())
    out = []
    for n in names:
        peaks.ONLY[:] = [n]
        print("-- %s" % n, flush=True)
        kib = bench.min_heap_kib(hi=a.hi, setup=setup)
        out.append((n, kib, bench.LAST.get("below", "")))
    for n, kib, below in out:
        print("%-16s %5d KiB   below: %s" % (n, kib, below))


if __name__ == "__main__":
    main()
