"""RSA signature check: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.2).

The decoded block is compared with the one expected (EMSA-PKCS1-v1_5, RFC 8017 §9.2), never
parsed, so no lax padding or DigestInfo reading can be forged (Bleichenbacher 2006). Moduli
under 2048 bits are refused, as the OCPP security whitepaper requires, and public exponents
over 32 bits (see _E_BITS).

The arithmetic is Montgomery's (HAC 14.36, operand scanning) on lists of _W-byte words: no
number on the heap is over 2 * _W + 2 bytes, where whole-number pow() needs blocks of 1 KiB
for RSA-4096 and the fragmented heap of a small board has no run for them.
"""

from compat import busy, const

_MIN_BYTES = const(256)
# Public exponents of up to 32 bits (every real key has 65537 or 3): a product per bit, and
# a 4096-bit one would hold the loop for a minute on an ESP32.
_E_BITS = const(32)
_W = const(32)  # bytes per word: der.number() reads numbers into such words
_BITS = const(256)  # 8 * _W
# DER of DigestInfo{sha256, NULL} before the 32-byte hash, RFC 8017 §9.2 note 1.
_SHA256_INFO = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


def verify(n, e, digest, sig):
    """True if sig is a valid PKCS#1 v1.5 signature of the SHA-256 digest by the key (n, e):
    n and sig as der.number() gives them (sig may also be bytes), e an int."""
    k, nw = n
    if not isinstance(sig, tuple):
        from der import number

        sig = number(sig, 0, len(sig), False)
    if sig[0] != k or k < _MIN_BYTES or not nw[-1] >> 8 * (k - 1 - (len(nw) - 1) * _W):
        return False  # the signature is as long as the modulus, which has no zero top byte
    if not nw[0] & 1 or len(digest) != 32 or e < 3 or e >> _E_BITS or not e & 1:
        return False  # an even modulus is no RSA key (and has no Montgomery form)
    if not _less(sig[1], nw):
        return False  # s < n
    x = _pow(sig[1], e, nw)
    # 00 01, k - 54 bytes ff, 00, DigestInfo, digest: compared a word at a time.
    tail = b"\x00" + _SHA256_INFO + digest
    t = k - 52
    for i in range(len(x)):
        hi = k - i * _W
        lo = max(hi - _W, 0)
        b = x[i].to_bytes(hi - lo, "big")
        if lo < 2 and b[: 2 - lo] != b"\x00\x01"[lo:]:
            return False
        a, z = max(lo, 2), min(hi, t)
        if a < z and b.count(b"\xff", a - lo, z - lo) != z - a:
            return False
        a = max(lo, t)
        if a < hi and b[a - lo :] != tail[a - t : hi - t]:
            return False
    return True


def _pow(sw, e, nw):
    """The words of s ** e mod n: s and n (odd) as words, s < n."""
    s = len(nw)
    m = (1 << _BITS) - 1
    n0 = nw[0]
    inv = n0  # n * inv = 1 mod 8 for odd n; each Newton step doubles the bits right
    for _ in range(8):  # 3 * 2 ** 8 > _BITS
        inv = inv * (2 - n0 * inv) & m
    inv = -inv & m  # -1 / n mod 2 ** _BITS
    # R = 2 ** (_BITS * s). R * R mod n, the Montgomery form of R, from x * 2 ** d with x
    # the top bit of n: doubled (mod n) to 2 ** (odd part of _BITS * s) * R, then squared.
    e2, q = _BITS * s, 0
    while not e2 & 1:
        e2 >>= 1
        q += 1
    bl, top = (s - 1) * _BITS, nw[-1]  # bl: the bits of n (no bin(): a string of them)
    while top:
        top >>= 1
        bl += 1
    x = [0] * s
    x[(bl - 1) // _BITS] = 1 << (bl - 1) % _BITS
    for _ in range(e2 + _BITS * s - bl + 1):
        c = 0
        for j in range(s):
            v = x[j] << 1 | c
            x[j] = v & m
            c = v >> _BITS
        if c or not _less(x, nw):
            _sub(x, nw)
    # Two lists of words, each product written into the one its factors are not in: no
    # list per product (a stale pointer on the C stack would keep one of 0.8 KiB alive).
    y = [0] * s
    for _ in range(q):
        x, y = _mm(x, x, nw, inv, m, y), x
    x, y = _mm(sw, x, nw, inv, m, y), x  # s * R mod n, the Montgomery form of s
    bits = bin(e)[3:]  # left to right, after the leading 1; the last is 1 (e is odd)
    a = list(x) if "1" in bits[:-1] else None  # not needed for 3, 17, 65537: 2 ** k + 1
    for bit in bits[:-1]:
        x, y = _mm(x, x, nw, inv, m, y), x
        if bit == "1":
            x, y = _mm(x, a, nw, inv, m, y), x
    x, y = _mm(x, x, nw, inv, m, y), x
    a = None
    return _mm(sw, x, nw, inv, m, y)  # s ** e * R / R: out of the Montgomery form


def _mm(a, b, n, inv, m, t):
    """a * b / R mod n (a, b < n, words) into t (another list, returned). Each step adds
    ai * b + u * n to t, which makes it 0 mod 2 ** _BITS, and shifts t down a word as it
    goes: t keeps whole words (a carry piled up in each would double their size)."""
    s = len(n)
    for j in range(s):
        t[j] = 0
    h = 0  # the bit above t's top word
    for ai in a:
        busy()  # the charger's safety tick, when due: the check holds the loop
        v = t[0] + ai * b[0]
        u = (v & m) * inv & m
        c = (v + u * n[0]) >> _BITS
        for j in range(1, s):
            v = t[j] + ai * b[j] + u * n[j] + c
            t[j - 1] = v & m | 0  # "| 0": digits for the word, not for v (mpz's "&" keeps them)
            c = v >> _BITS
        v = h + c
        t[s - 1] = v & m
        h = v >> _BITS
    if h or not _less(t, n):  # below 2n: one subtraction at most
        _sub(t, n)
    return t


def _less(a, b):
    for j in range(len(a) - 1, -1, -1):
        if a[j] != b[j]:
            return a[j] < b[j]
    return False


def _sub(a, b):
    """a -= b in place, modulo R (the word above the top's borrow dropped)."""
    c = 0
    for j in range(len(a)):
        v = a[j] - b[j] - c
        c = 1 if v < 0 else 0
        a[j] = v + (c << _BITS)
