"""Minimal DER (X.690) reader and writer, PEM armour (RFC 7468), and the OIDs X.509 needs.

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


def pem_decode(text, label="CERTIFICATE"):
    """The DER of every `label` block in a PEM text (a chain gives several), in order."""
    if not isinstance(text, str):
        text = bytes(text).decode()
    return pem_lines(lambda: text_lines(text), label)


def _decode(lines, label, out):
    """Walk the PEM text that lines() yields a line at a time (a long line may come in
    several pieces; the BEGIN and END lines whole): out(block, data) with b"" where block
    number `block` begins, then with each piece of its DER as it is decoded. Returns the
    number of blocks. ValueError when the text is not PEM: a block without its END line, or
    base64 that is not exactly what its characters say (padding inside a block, characters
    outside the alphabet, which a lenient decoder would skip)."""
    begin = "-----BEGIN %s-----" % label
    end = "-----END %s-----" % label
    blocks = 0
    inside = False
    for line in lines():
        s = line.strip()
        if not inside:
            if s == begin:
                inside = True
                carry = ""
                chars = got = 0  # base64 characters seen, bytes they decoded to
                tail = ""
                out(blocks, b"")
            continue
        last = s == end
        if not last:
            s = "".join(s.split())
            chars += len(s)
            tail = (tail + s)[-2:]
            s = carry + s
        else:
            s = carry
        k = len(s) if last else len(s) // 4 * 4  # runs of 4 characters; the last: any length
        if k:
            if k & 3:
                raise ValueError("PEM: bad base64")
            d = binascii.a2b_base64(s[:k])  # ValueError when it is not base64
            got += len(d)
            out(blocks, d)
        carry = s[k:]
        if last:
            if got != chars * 3 // 4 - tail.count("="):
                raise ValueError("PEM: bad base64")
            inside = False
            blocks += 1
    if inside:
        raise ValueError("PEM: no END line")
    return blocks


def pem_lines(lines, label="CERTIFICATE"):
    """pem_decode of the PEM text that lines() yields a line at a time (as _decode). lines()
    is called twice: the sizes first, so that each DER is decoded into one bytearray of its
    exact size, with no copy of the text and no pieces to join (the only large block is the
    DER itself)."""
    sizes = []

    def size(b, d):
        if b == len(sizes):
            sizes.append(0)
        sizes[b] += len(d)

    _decode(lines, label, size)
    out = [bytearray(n) for n in sizes]
    pos = [0] * len(sizes)

    def fill(b, d):
        out[b][pos[b] : pos[b] + len(d)] = d
        pos[b] += len(d)

    _decode(lines, label, fill)
    return out


def pem_file(lines, dst, label="CERTIFICATE", only=0):
    """The DER of block `only` of the PEM text that lines() yields (as _decode) written to
    the file `dst` as it is decoded, a line at a time: no block of the certificate's size is
    ever held (4 KB for an RSA-4096 one). Returns (blocks in the text, bytes written), the
    bytes None (and nothing written) when there is no block `only`. ValueError when the text
    is not PEM: every block is checked, whichever one is written."""
    f = []
    n = [None]

    def write(b, d):
        if b == only:
            if not f:
                f.append(open(dst, "wb"))
                n[0] = 0
            f[0].write(d)
            n[0] += len(d)

    try:
        blocks = _decode(lines, label, write)
    finally:
        if f:
            f[0].close()
    return blocks, n[0]


def pem_copy(f, src, label="CERTIFICATE"):
    """pem_write of the DER in the file `src`, read 48 bytes at a time."""
    f.write("-----BEGIN %s-----\n" % label)
    with open(src, "rb") as g:
        while True:
            d = g.read(48)
            if not d:
                break
            f.write(binascii.b2a_base64(d).decode())
    f.write("-----END %s-----\n" % label)


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


def text_lines(text):
    i = 0
    while i < len(text):
        k = text.find("\n", i)
        k = len(text) if k < 0 else k
        yield text[i:k]
        i = k + 1


def file_lines(path):
    with open(path) as f:
        for line in f:
            yield line


def pem_write(f, data, label="CERTIFICATE"):
    """Write the PEM of DER bytes into the text file f, a base64 line of 64 characters at a
    time (RFC 7468 §2): no copy of the whole text (7.3 KB for a 5.5 KB certificate)."""
    f.write("-----BEGIN %s-----\n" % label)
    m = memoryview(data)
    for i in range(0, len(m), 48):
        f.write(binascii.b2a_base64(m[i : i + 48]).decode())  # ends with "\n"
    f.write("-----END %s-----\n" % label)


def pem_encode(data, label="CERTIFICATE"):
    """PEM text of DER bytes (pem_write into a string)."""
    import io

    f = io.StringIO()
    pem_write(f, data, label)
    return f.getvalue()
