"""NIST P-256 (secp256r1) and ECDSA over a SHA-256 digest, in plain Python big ints.

Keys: a private key is an int d in [1, n-1], a public key a tuple (x, y) of ints.
Signing uses the deterministic nonce of RFC 6979 §3.2 (HMAC-SHA256): a signature never depends
on the quality of the random generator, and the RFC's test vectors check the code. Key
generation takes os.urandom. Not constant-time (big-int arithmetic is not): the charger signs
only its CSRs with it, never on a request an attacker can time at will.
"""

import hashlib
import os

from compat import busy

# SEC 2 v2 §2.4.2: y^2 = x^3 - 3x + B over GF(P), base point G of prime order N.
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)


# Points in Jacobian coordinates (X, Y, Z) stand for (X/Z^2, Y/Z^3); None is infinity.
def _dbl(pt):
    # "dbl-2001-b" (Bernstein-Lange EFD), for a = -3.
    x, y, z = pt
    if not y:
        return None
    d = z * z % P
    g = y * y % P
    b = x * g % P
    a = 3 * (x - d) * (x + d) % P
    x3 = (a * a - 8 * b) % P
    return x3, (a * (4 * b - x3) - 8 * g * g) % P, 2 * y * z % P


def _add(pt, x2, y2):
    # Jacobian + affine (x2, y2): "add-1998-cmo-2" with Z2 = 1.
    if pt is None:
        return x2, y2, 1
    x1, y1, z1 = pt
    zz = z1 * z1 % P
    h = (x2 * zz - x1) % P
    r = (y2 * z1 * zz - y1) % P
    if not h:
        return None if r else _dbl(pt)
    hh = h * h % P
    hhh = h * hh % P
    v = x1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    return x3, (r * (v - x3) - y1 * hhh) % P, z1 * h % P


def _affine(pt):
    if pt is None:
        return None
    zi = pow(pt[2], P - 2, P)  # Fermat inverse
    zi2 = zi * zi % P
    return pt[0] * zi2 % P, pt[1] * zi2 * zi % P


def _lincomb(u1, u2, q):
    """u1*G + u2*q as affine (x, y), None at infinity (Shamir's trick: one doubling a bit)."""
    gq = _affine(_add((q[0], q[1], 1), G[0], G[1])) if q else None
    tab = (None, G, q, gq)
    a = u1.to_bytes(32, "big")
    b = u2.to_bytes(32, "big")
    r = None
    for i in range(32):
        ai = a[i]
        bi = b[i]
        m = 128
        while m:
            busy()  # the charger's safety tick, when due: the check holds the loop
            if r is not None:
                r = _dbl(r)
            t = tab[(1 if ai & m else 0) | (2 if bi & m else 0)]
            if t is not None:
                r = _add(r, t[0], t[1])
            m >>= 1
    return _affine(r)


def public_key(d):
    """The public point (x, y) of private key d."""
    return _lincomb(d, 0, None)


def keygen():
    """A new key pair (d, (x, y)); d drawn from os.urandom, rejection-sampled into [1, n-1]."""
    while True:
        d = int.from_bytes(os.urandom(32), "big")
        if 0 < d < N:
            return d, public_key(d)


def encode_point(q):
    """SEC 1 §2.3.3 uncompressed encoding: 04 || X || Y (65 bytes)."""
    return b"\x04" + q[0].to_bytes(32, "big") + q[1].to_bytes(32, "big")


def on_curve(q):
    """Whether (x, y) lies on the curve (a key as x509.point() reads it)."""
    x, y = q
    return 0 <= x < P and 0 <= y < P and not (y * y - x * x * x + 3 * x - B) % P


def _digest(digest):
    if len(digest) != 32:
        raise ValueError("need a SHA-256 digest")
    return int.from_bytes(digest, "big")  # SEC 1 §4.1.3 step 5: 256 bits, no truncation


def _hmac(key, *parts):
    # RFC 2104 with a 32-byte key (zero-padded to the 64-byte block).
    h = hashlib.sha256(bytes(c ^ 0x36 for c in key) + b"\x36" * 32)
    for p in parts:
        h.update(p)
    return hashlib.sha256(bytes(c ^ 0x5C for c in key) + b"\x5c" * 32 + h.digest()).digest()


def _nonces(d, e):
    # RFC 6979 §3.2 steps b-h, qlen = hlen = 256 so bits2int is a plain conversion.
    x = d.to_bytes(32, "big") + (e % N).to_bytes(32, "big")
    v = b"\x01" * 32
    k = _hmac(bytes(32), v, b"\x00", x)
    v = _hmac(k, v)
    k = _hmac(k, v, b"\x01", x)
    v = _hmac(k, v)
    while True:
        v = _hmac(k, v)
        c = int.from_bytes(v, "big")
        if 0 < c < N:
            yield c
        k = _hmac(k, v, b"\x00")
        v = _hmac(k, v)


def sign(d, digest):
    """ECDSA signature (r, s) of a 32-byte digest with private key d (SEC 1 §4.1.3)."""
    e = _digest(digest)
    for k in _nonces(d, e):
        r = _lincomb(k, 0, None)[0] % N
        if r:
            s = pow(k, N - 2, N) * (e + r * d) % N
            if s:
                return r, s


def verify(q, digest, r, s):
    """True if (r, s) signs the 32-byte digest for public key q (SEC 1 §4.1.4).

    False for a q off the curve (x509 reads a certificate's key without checking it: the EC
    code is loaded only to check a signature)."""
    if not (0 < r < N and 0 < s < N) or not on_curve(q):
        return False
    w = pow(s, N - 2, N)
    pt = _lincomb(_digest(digest) * w % N, r * w % N, q)
    return pt is not None and pt[0] % N == r
