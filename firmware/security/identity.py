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
    """None when `last` (x509.signed_part of a chain's last certificate) is, or is signed by,
    a trusted root (certs.roots), else the reason."""
    import hashlib

    import x509

    from firmware.security import certs

    for root in certs.roots(cp):
        if hashlib.sha256(root["der"]).digest() == last["sha"] or x509.verify_signed_by(
                last, root):
            return None
    return "does not chain to an installed CentralSystemRootCertificate"


def _chain(cp, ders):
    """The reason the chain itself is refused, or x509.signed_part() of its last
    certificate. A function of its own: once it returns, nothing on the stack still points
    at the parsed chain, so each root is read into the room it leaves."""
    import csr
    import x509

    from firmware import clock

    if not 0 < len(ders) <= _MAX_CHAIN:
        return "no certificate"
    try:
        chain = [x509.parse(d) for d in ders]
    except ValueError as e:
        return "unparsable: %s" % e
    leaf = chain[0]
    try:
        with open(_dir(cp) + "/csr.key") as f:
            _, q = csr.load_key(f.read())
    except (OSError, ValueError):
        return "no certificate request outstanding"
    if leaf["ca"] or leaf["key_type"] != "ec" or leaf["key"] != q:
        return "not the key of the certificate request"
    if leaf["cn"] != cp.info.get("serial"):
        return "CN is not the serial number"
    cpo = cp.config.get("CpoName")
    if cpo and leaf["o"] != cpo:
        return "O is not CpoName"
    if clock.is_set() and not leaf["not_before"] <= clock.now() <= leaf["not_after"]:
        return "not valid now"
    for i in range(len(chain) - 1):
        if not chain[i + 1]["ca"] or not x509.verify_signed_by(chain[i], chain[i + 1]):
            return "certificate %d not signed by the next one" % i
    return x509.signed_part(chain[-1])


def _take(cp, payload):
    """The DER of each certificate of payload["certificateChain"], the text then dropped from
    the payload (certs.take_pem); or the reason it is refused. No frame of the caller ever
    holds the text."""
    from firmware.security import certs

    if len(payload["certificateChain"]) > cp.config.get("CertificateSignedMaxChainSize"):
        return "chain too long"
    try:
        return certs.take_pem(payload, "certificateChain")
    except ValueError as e:
        return "unparsable: %s" % e


def _stage(cp, payload):
    """x509.signed_part of the chain's last certificate, with the chain and the key of the
    request written to cp.new; or the reason the chain is refused. When it returns, the
    chain's text and DER (up to 10 KB) are let go: each root is then read into their room.
    Each step reads only, so may run twice (router.roomy); cp.new is written anew."""
    from firmware.ocpp import router

    ders = router.roomy(_take, cp, payload)
    if type(ders) is str:
        return ders
    last = router.roomy(_chain, cp, ders)
    if type(last) is str:
        return last
    d = _dir(cp)
    try:
        with open(d + "/csr.key") as f:
            key = f.read()
        import der

        def write(f):
            for c in ders:
                der.pem_write(f, c)
            f.write(key)

        fs.write_atomic(d + "/cp.new", write)
    except OSError as e:
        return "write failed: %r" % (e,)
    return last


def install(cp, payload):
    """"Accepted" or "Rejected" (CertificateSigned.conf) for the PEM chain of
    payload["certificateChain"] (dropped from the payload once decoded); a rejection raises
    the security event InvalidChargePointCertificate. The chain is written ahead (cp.new)
    and takes the place of cp.pem only once it is known to chain to a trusted root; a
    power cut in between leaves cp.new, never read, written anew by the next chain."""
    import os

    from firmware.ocpp import router

    last = _stage(cp, payload)
    why = last if type(last) is str else router.roomy(_rooted, cp, last)  # reads only
    d = _dir(cp)
    if why is None:
        try:
            fs.commit(d + "/cp.new", d + "/cp.pem")
        except OSError as e:
            why = "write failed: %r" % (e,)
        else:
            try:
                os.remove(d + "/csr.key")  # one certificate per request
            except OSError:
                pass
    else:
        try:
            os.remove(d + "/cp.new")
        except OSError:
            pass
    if why is not None:
        log.error("security", "CertificateSigned rejected:", why)
        if cp.security is not None:
            cp.security.event("InvalidChargePointCertificate", why)
        return "Rejected"
    log.info("security", "charge point certificate installed")
    return "Accepted"
