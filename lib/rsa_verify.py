"""RSA signature check: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.2).

The decoded block is compared whole with the one expected (EMSA-PKCS1-v1_5, RFC 8017 §9.2),
never parsed, so no lax padding or DigestInfo reading can be forged (Bleichenbacher 2006).
Moduli under 2048 bits are refused, as the OCPP security whitepaper requires.
"""

import gc

from compat import const

_MIN_BYTES = const(256)
_LIMB = const(64)  # bytes of the multiplier taken at a time by _mulmod
# DER of DigestInfo{sha256, NULL} before the 32-byte hash, RFC 8017 §9.2 note 1.
_SHA256_INFO = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


def verify(n, e, digest, sig):
    """True if sig (bytes) is a valid PKCS#1 v1.5 signature of the SHA-256 digest by (n, e)."""
    k = len(sig)  # must be the modulus length in bytes: found by shifts, never by a 1 KB text
    if k < _MIN_BYTES or not n >> (8 * k - 8) or n >> (8 * k) or len(digest) != 32:
        return False
    if e < 3 or not e & 1:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    gc.collect()  # joins what garbage there is into free runs, on a busy heap too
    em = _pow(s, e, n, k).to_bytes(k, "big")
    # 00 01, k - 54 bytes ff, 00, DigestInfo, digest: compared in place, not built whole.
    return (em[:2] == b"\x00\x01" and em.count(b"\xff", 2, k - 52) == k - 54
            and em[k - 52 :] == b"\x00" + _SHA256_INFO + digest)


def _pow(s, e, n, k):
    """pow(s, e, n) for a k-byte n with no big integer over k + _LIMB + 2 bytes (578 for
    RSA-4096). pow() multiplies whole numbers: blocks of 2k bytes (1 KiB), which the
    fragmented heap of a small board has no run for while it has many of 600 bytes. The
    same multiplications in smaller pieces: 5.0 ms against pow()'s 4.1 ms for RSA-4096 on
    the 32-bit unix port (tools/crypto_bench.py's figures scale to a board likewise)."""
    r = s
    for bit in bin(e)[3:]:  # left to right, after the leading 1
        r = _mulmod(r, r, n, k)
        if bit == "1":
            r = _mulmod(r, s, n, k)
    return r


def _mulmod(a, b, n, k):
    """a * b % n (a, b < n), b taken _LIMB bytes at a time from the top (Horner): each step
    (r << 8 * _LIMB) + a * limb stays below n << 8 * _LIMB + 1."""
    m = -(-k // _LIMB) * _LIMB
    bs = b.to_bytes(m, "big")
    limbs = [int.from_bytes(bs[j : j + _LIMB], "big") for j in range(0, m, _LIMB)]
    bs = None
    r = 0
    for c in limbs:
        r <<= 8 * _LIMB
        r += a * c
        r %= n
    return r
