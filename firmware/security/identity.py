"""The charge point's own key and certificate (Security Whitepaper, SecurityProfile 3:
SignCertificate / CertificateSigned). Imported only when one of those runs; lib/p256,
lib/csr and lib/x509 with it.

Files under <data_dir>/security/ (never read by the API, OCPP, diagnostics or GetLog):
- csr.key: the P-256 key of the last CSR sent (SEC 1 PEM), waiting for its certificate. A
  new CSR replaces it (the previous request can then never be completed).
- cp.pem: the installed chain (leaf first) followed by its key; one file written
  atomically, so the certificate and the key always belong together. The OCPP link presents
  it as its TLS client certificate (certs.client_pair); it wins over `ocppcc`/`ocppck`.

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


def check_chain(cp, pem):
    """None when `pem` is an acceptable chain for csr.key (module doc), else the reason."""
    import hashlib

    import x509

    from firmware.security import certs

    last = _chain(cp, pem)
    if type(last) is str:
        return last
    for root in certs.roots(cp):
        if hashlib.sha256(root["der"]).digest() == last["sha"] or x509.verify_signed_by(
                last, root):
            return None
    return "does not chain to an installed CentralSystemRootCertificate"


def _chain(cp, pem):
    """The reason the chain itself is refused, or x509.signed_part() of its last
    certificate. A function of its own: once it returns, nothing on the stack still points
    at the chain's DER (an RSA-4096 intermediate is 3-4 KB), so each root is read into the
    room it leaves."""
    import csr
    import x509

    from firmware import clock

    if len(pem) > cp.config.get("CertificateSignedMaxChainSize"):
        return "chain too long"
    try:
        chain = x509.parse_pem(pem)
    except ValueError as e:
        return "unparsable: %s" % e
    if not 0 < len(chain) <= _MAX_CHAIN:
        return "no certificate"
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


def install(cp, pem):
    """"Accepted" or "Rejected" (CertificateSigned.conf); a rejection raises the security
    event InvalidChargePointCertificate."""
    from firmware.ocpp import router

    why = router.roomy(check_chain, cp, pem)  # reads only: may run twice
    if why is None:
        d = _dir(cp)
        try:
            with open(d + "/csr.key") as f:
                key = f.read()
            import der

            def write(f):
                for c in der.pem_decode(pem):
                    der.pem_write(f, c)
                f.write(key)

            fs.write_atomic(d + "/cp.pem", write)
        except OSError as e:
            why = "write failed: %r" % (e,)
        else:
            import os

            try:
                os.remove(d + "/csr.key")  # one certificate per request
            except OSError:
                pass
    if why is not None:
        log.error("security", "CertificateSigned rejected:", why)
        if cp.security is not None:
            cp.security.event("InvalidChargePointCertificate", why)
        return "Rejected"
    log.info("security", "charge point certificate installed")
    return "Accepted"
