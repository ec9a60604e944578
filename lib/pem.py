"""PEM armour (RFC 7468): the DER blocks of a PEM text decoded a line at a time (into exact
bytearrays, or straight into a file), and DER written as PEM. Apart from lib/der.py so that
a certificate's parse (lib/x509.py, which reads DER only) does not hold it: a charger reads
the PEM into a DER file first, then parses the file.
"""

import binascii


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
