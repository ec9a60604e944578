"""Minimal DER (X.690) reader and writer, and the OIDs X.509 needs (PEM armour: lib/pem.py).

The reader works on offsets into one buffer (bytes or memoryview), so walking a certificate
copies nothing: read() gives (tag, value start, value end). Only what X.509 and PKCS#10 use:
one-byte tags and definite lengths of at most 4 bytes.
"""

import binascii

# Object identifiers, content octets (X.690 §8.19).
OID_EC_KEY = b"\x2a\x86\x48\xce\x3d\x02\x01"  # 1.2.840.10045.2.1 id-ecPublicKey
OID_P256 = b"\x2a\x86\x48\xce\x3d\x03\x01\x07"  # 1.2.840.10045.3.1.7 prime256v1
OID_ECDSA_SHA256 = b"\x2a\x86\x48\xce\x3d\x04\x03\x02"  # 1.2.840.10045.4.3.2
OID_RSA_KEY = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"  # 1.2.840.113549.1.1.1
OID_RSA_SHA256 = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b"  # 1.2.840.113549.1.1.11
OID_CN = b"\x55\x04\x03"  # 2.5.4.3 commonName
OID_O = b"\x55\x04\x0a"  # 2.5.4.10 organizationName
OID_BASIC = b"\x55\x1d\x13"  # 2.5.29.19 basicConstraints


def read(buf, pos, end):
    """The element at buf[pos:end] as (tag, value start, value end); ValueError if bad."""
    if pos + 2 > end:
        raise ValueError("DER: truncated")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("DER: multi-byte tag")  # X.690 §8.1.2.4: never used here
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:  # long form, X.690 §8.1.3.5; 0x80 (indefinite) is not DER
        k = n & 0x7F
        if not 0 < k <= 4 or pos + k > end:
            raise ValueError("DER: bad length")
        n = 0
        for i in range(pos, pos + k):
            n = n << 8 | buf[i]
        pos += k
    if pos + n > end:
        raise ValueError("DER: truncated")
    return tag, pos, pos + n


def items(buf, start, end):
    """The elements inside a constructed value, as a list of (tag, pos, value start, end)."""
    out = []
    while start < end:
        t, s, e = read(buf, start, end)
        out.append((t, start, s, e))
        start = e
    return out


def uint(buf, start, end):
    """The INTEGER content buf[start:end] as an unsigned int (X.690 §8.3)."""
    if start >= end:
        raise ValueError("DER: empty integer")
    # A view, not a slice, of what is in RAM: no copy beside the integer (514 bytes each
    # for an RSA-4096 modulus); a der.Flash slice is read from its file.
    v = memoryview(buf)[start:end] if isinstance(buf, (bytes, bytearray)) else buf[start:end]
    return int.from_bytes(v, "big")


def number(buf, i, j, strip=True):
    """The unsigned big-endian integer buf[i:j] (bytes, memoryview, or a Flash) as (its
    length in bytes, its little-endian 32-byte words), the form lib/rsa_verify.py computes
    with (its _W), read a word at a time: no block of its size (512 bytes for RSA-4096) is
    ever needed. strip: without leading zero bytes (a modulus); a signature keeps its
    length, which must be the modulus's."""
    while strip and i < j - 1 and not buf[i]:
        i += 1
    return j - i, [int.from_bytes(buf[max(j - (w + 1) * 32, i) : j - w * 32], "big")
                   for w in range(-(-(j - i) // 32))]


def oid(buf, start, end):
    """The OBJECT IDENTIFIER content as a dotted string (X.690 §8.19)."""
    out = []
    v = 0
    for i in range(start, end):
        c = buf[i]
        v = v << 7 | (c & 0x7F)
        if not c & 0x80:
            out.append(v)
            v = 0
    if not out or v:
        raise ValueError("DER: bad OID")
    a = min(out[0] // 40, 2)
    return ".".join([str(a), str(out[0] - 40 * a)] + [str(x) for x in out[1:]])


def enc(tag, *parts):
    """The DER element tag with the parts (bytes) joined as its value."""
    body = b"".join(parts)
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    if n < 0x100:
        return bytes((tag, 0x81, n)) + body
    if n < 0x10000:
        return bytes((tag, 0x82, n >> 8, n & 0xFF)) + body
    raise ValueError("DER: too long")


def enc_uint(n):
    """An INTEGER element for n >= 0 (minimal two's complement, X.690 §8.3.2)."""
    h = "%x" % n
    b = binascii.unhexlify("0" * (len(h) & 1) + h)
    return enc(0x02, b"\x00" + b if b[0] & 0x80 else b)


_WIN = 128


class Flash:
    """A DER on flash read like bytes, so that read()/items()/uint()/oid() and x509 walk a
    certificate without holding it: buf[i] (an int), buf[i:j] (bytes), len(buf), through a
    window of _WIN bytes; sha(i, j), the SHA-256 of a range, streamed. close() when done."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.n = self.f.seek(0, 2)
        self.at = 0
        self.win = b""

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            s, e = i.start or 0, self.n if i.stop is None else min(i.stop, self.n)
            if self.at <= s and e <= self.at + len(self.win):
                return self.win[s - self.at : e - self.at]
            self.f.seek(s)
            return self.f.read(max(0, e - s))
        k = i - self.at
        if not 0 <= k < len(self.win):
            if not 0 <= i < self.n:
                raise IndexError("DER: past the end")
            self.f.seek(i)
            self.win = self.f.read(_WIN)
            self.at = i
            k = 0
        return self.win[k]

    def sha(self, s, e):
        import hashlib

        h = hashlib.sha256()
        self.f.seek(s)
        while s < e:
            d = self.f.read(min(_WIN, e - s))
            if not d:
                raise ValueError("DER: truncated")
            h.update(d)
            s += len(d)
        return h.digest()

    def close(self):
        self.f.close()
