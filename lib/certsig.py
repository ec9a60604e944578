"""A certificate's signature checked with its issuer's key (ECDSA P-256 or RSA PKCS#1 v1.5,
both SHA-256), apart from the parser (lib/x509.py, whose verify_signed_by and
verify_file_signature call verify() here). A light certificate (x509.light, light_file:
it carries the SHA-256 of what was signed) with an RSA signature is checked with neither
x509 nor lib/der.py loaded: the charger's security code lets them go first
(firmware/security: cert_admin, identity), so their heap is free for the RSA check, the
certificates' peak (8 KB, 64-bit). An ECDSA signature is DER inside: x509 reads it.
"""

ECDSA_SHA256 = "1.2.840.10045.4.3.2"
RSA_SHA256 = "1.2.840.113549.1.1.11"


def signed_by(cert, issuer):
    """True if issuer names cert's issuer and its key made cert's signature. cert: a light
    certificate (its "digest"). Times, CA flag and path length are the caller's to check."""
    return cert["issuer"] == issuer["subject"] and verify(
        issuer, cert["sig_alg"], cert["digest"], cert["sig"]
    )


def verify(key_cert, alg, digest, sig):
    """True if sig (algorithm alg, an OID) signs the SHA-256 digest with key_cert's key."""
    kt = key_cert["key_type"]
    if alg == ECDSA_SHA256 and kt == "ec":
        import p256
        import x509

        rs = x509.ecdsa_sig(sig)
        return rs is not None and p256.verify(key_cert["key"], digest, rs[0], rs[1])
    if alg == RSA_SHA256 and kt == "rsa":
        import rsa_verify

        n, e = key_cert["key"]
        return rsa_verify.verify(n, e, digest, sig)
    return False
