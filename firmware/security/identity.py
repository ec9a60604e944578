"""The charge point's own key and certificate (Security Whitepaper, SecurityProfile 3:
SignCertificate / CertificateSigned). Imported only when one of those runs; lib/p256,
lib/csr and lib/x509 with it.

Files under <data_dir>/security/ (never read by the API, OCPP, diagnostics or GetLog):
- csr.key: the P-256 key of the last CSR sent (SEC 1 PEM), waiting for its certificate. A
  new CSR replaces it (the previous request can then never be completed).
- cp.pem: the installed chain (leaf first) followed by its key; one file written
  atomically, so the certificate and the key always belong together. The OCPP link presents
  it as its TLS client certificate (certs.client_pair); it wins over `ocppcc`/`ocppck`.
- cp.new: the same for a chain being checked, written ahead so that its DER can be let go
  before the roots are read; it replaces cp.pem only once the chain is accepted.

A chain is accepted (rules decided here) when: it is 1 to 4 PEM certificates of at most
CertificateSignedMaxChainSize characters; the leaf is not a CA and holds the public key of
csr.key; its CN is the serial number (what the CSR asked for) and, when CpoName is set, its
O is CpoName; each certificate is signed by the next one, which is a CA; the last is signed
by (or is) an installed CentralSystemRootCertificate or the `ocppsc` certificate; with the
clock set, the leaf is within its validity. Anything else is Rejected and changes nothing.
"""

import fs
import log

_MAX_CHAIN = 4


def _dir(cp):
    return cp.data_dir.rstrip("/") + "/security"


def new_csr(cp):
    """A new key on flash (csr.key) and the PEM CSR for it: CN = serial, O = CpoName."""
    import csr
    import p256

    d, q = p256.keygen()
    fs.makedirs(_dir(cp))
    fs.write_atomic(_dir(cp) + "/csr.key", csr.key_pem(d, q).encode())
    return csr.make_csr(d, q, cp.info.get("serial") or "", cp.config.get("CpoName"))


def _rooted(cp, last):
    """None when `last` (x509.light of a chain's last certificate) is, or is signed by, a
    trusted root (certs.roots), else the reason."""
    from firmware.security import certs

    last["key"] = None  # its signature is checked here, not its key: one big integer less
    for root in certs.roots(cp, False):  # a root here signs: its own signature is not read
        if root["sha"] == last["sha"] or certs.signed(last, root):
            return None
    return "does not chain to an installed CentralSystemRootCertificate"


def _request_key(cp):
    """The public key of csr.key (the last CSR's), or None: its publicKey field ([1], RFC
    5915), which the charger wrote with the key and put into the CSR (csr.key_pem,
    make_csr): the key the certificate must hold. Read without the EC code (csr, p256, and
    no scalar multiplication to derive it again): the chain's checks need the room."""
    import der
    import x509

    from compat import lend

    try:
        with open(_dir(cp) + "/csr.key") as f:
            (b,) = lend("pem").pem_decode(f.read(), "EC PRIVATE KEY")
        _, s, e = der.read(b, 0, len(b))
        for t, _, vs, ve in der.items(b, s, e):
            if t == 0xA1:
                t, bs, be = der.read(b, vs, ve)
                if t == 0x03 and be > bs and not b[bs]:  # BIT STRING, no unused bits
                    return x509.point(b[bs + 1 : be])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read(cp, i, want_sig=True):
    """certs._light of certificate i of cp.new; a str (the reason) when it cannot be read."""
    from firmware.security import certs

    try:
        return certs._light(cp, _dir(cp) + "/cp.new", i, want_sig)
    except ValueError as e:
        return "unparsable: %s" % e
    except OSError as e:
        return "unreadable: %r" % (e,)


def _chain(cp):
    """The reason the chain written to cp.new is refused, or x509.light of its last
    certificate. Each is read from there in turn: at most one certificate's DER is on the
    heap at a time, and none while a signature is checked; at each check one signature and
    one key (512 bytes each for RSA-4096): a certificate's own signature is read again at
    the next link rather than held through this one; and without the parser (certs.signed).
    """
    from firmware import clock
    from firmware.security import certs

    q = _request_key(cp)  # before any certificate is on the heap (it lends lib/pem.py)
    prev = None
    for i in range(_MAX_CHAIN + 1):
        if i > 1:  # prev was read without its signature (_read): read again with it
            prev = _read(cp, i - 1)
            if type(prev) is str:
                return prev
            prev["key"] = None
        c = _read(cp, i, i == 0)  # a link's own signature: checked at the next one
        if type(c) is str:
            return c
        if c is None:
            break
        if i == _MAX_CHAIN:
            return "more than %d certificates" % _MAX_CHAIN
        if prev is None:  # the leaf
            if q is None:
                return "no certificate request outstanding"
            if c["ca"] or c["key_type"] != "ec" or c["key"] != q:
                return "not the key of the certificate request"
            if c["cn"] != cp.info.get("serial"):
                return "CN is not the serial number"
            cpo = cp.config.get("CpoName")
            if cpo and c["o"] != cpo:
                return "O is not CpoName"
            if clock.is_set() and not c["not_before"] <= clock.now() <= c["not_after"]:
                return "not valid now"
            c["key"] = None  # compared: a key less at the next link's read
        else:
            if not c["ca"] or not certs.signed(prev, c):
                return "certificate %d not signed by the next one" % (i - 1)
        prev = c  # (the loop ends at the None past the last: prev read again, with its sig)
    return "no certificate" if prev is None else prev


def _stage(cp, payload):
    """The chain's text written as it came to cp.new, then dropped from the payload; the
    reason it is refused, or None. Nothing of it is decoded here: the chain is checked
    from flash (_chain), so its text and DER are never on the heap at once."""
    v = payload["certificateChain"]  # a str, or a wsfar.Far: the text on flash already
    if len(v) > cp.config.get("CertificateSignedMaxChainSize"):
        return "chain too long"

    def write(f):
        for p in v.pieces() if hasattr(v, "pieces") else (v,):
            f.write(p)

    try:
        fs.makedirs(_dir(cp))
        fs.write_atomic(_dir(cp) + "/cp.new", write)
    except OSError as e:
        return "write failed: %r" % (e,)
    del payload["certificateChain"]
    return None


def _commit(cp):
    """cp.pem from the checked chain of cp.new (each certificate as PEM, as pem_write makes
    it: nothing else of the text the central system sent) and the request's key."""
    import pem

    d = _dir(cp)
    with open(d + "/csr.key") as f:
        key = f.read()

    tmp = d + "/cp.der"

    def write(f):
        i = 0
        # One certificate at a time, through a DER file: none is ever whole on the heap.
        while pem.pem_file(lambda: pem.file_lines(d + "/cp.new"), tmp, only=i)[1] is not None:
            pem.pem_copy(f, tmp)
            i += 1
        f.write(key)

    try:
        fs.write_atomic(d + "/cp.pem", write)
    finally:
        fs.remove(tmp)


def install(cp, payload):
    """"Accepted" or "Rejected" (CertificateSigned.conf) for the PEM chain of
    payload["certificateChain"] (dropped from the payload once on flash); a rejection
    raises the security event InvalidChargePointCertificate. The chain is written ahead
    (cp.new) and checked from there; cp.pem is made from it only once it is accepted. A
    power cut in between leaves cp.new, never used, written anew by the next chain."""
    from firmware.ocpp import router

    why = _stage(cp, payload)
    if why is None:
        why = router.roomy(_chain, cp)  # reads only: may run twice
    if type(why) is not str:
        why = router.roomy(_rooted, cp, why)  # reads only
    if why is None:
        try:
            _commit(cp)
        except OSError as e:
            why = "write failed: %r" % (e,)
        else:
            fs.remove(_dir(cp) + "/csr.key")  # one certificate per request
    fs.remove(_dir(cp) + "/cp.new")
    if why is not None:
        log.error("security", "CertificateSigned rejected:", why)
        if cp.security is not None:
            cp.security.event("InvalidChargePointCertificate", why)
        return "Rejected"
    log.info("security", "charge point certificate installed")
    return "Accepted"
