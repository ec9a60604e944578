"""A long string of a spooled websocket frame, kept on flash (lib/wsbig.py resolve() makes
it): Far. A module of its own, small, because the handler that reads the string (a 5.6 KB
certificate chain) holds it after the RPC has let go of the long-frame reader, which holds
it only while the frame is parsed: a Far keeps its class's module alive, this one, and not
the reader (6 KB, 64-bit, while a CertificateSigned or an InstallCertificate is handled).
"""

_ESC = b'"\\/bfnrt'
_UNESC = b'"\\/\x08\x0c\n\r\t'

class Far:
    """A long string of a spooled frame, kept in <spool>.str (wsbig.resolve): len() is its length
    in characters, pieces() its text. Made only when the whole string is valid (escapes,
    UTF-8, no raw control characters), else ValueError, as json.load would refuse it."""

    far = True  # what lets firmware/ocpp/validate.py take it for a string

    def __init__(self, path, at, n):
        self.path = path
        self.at = at
        self.n = n
        size = 0
        for p in self.pieces():
            size += len(p)
        self.size = size

    def __len__(self):
        return self.size

    def text(self):
        """The whole string (as json.load would have made it)."""
        return "".join(self.pieces())

    def pieces(self):
        """The text unescaped, in str pieces of at most about 256 bytes: a line (with its
        "\\n") or, of a longer one, a part ending at a character boundary."""
        pend = b""
        carry = b""  # the start of an escape cut by a read
        with open(self.path, "rb") as f:
            f.seek(self.at)
            left = self.n
            while left > 0:
                raw = f.read(left if left < 128 else 128)
                if not raw:
                    raise ValueError("string cut short")
                left -= len(raw)
                for b in raw:
                    if b < 0x20:
                        raise ValueError("control character in a string")
                out, carry = _unescape(carry + raw, bytearray(pend))
                while True:
                    k = out.find(b"\n")
                    if 0 <= k < 256:
                        k += 1
                    elif len(out) > 256:
                        k = 256
                        while out[k] & 0xC0 == 0x80:  # not inside a character
                            k -= 1
                            if k < 252:
                                raise ValueError("bad UTF-8")
                    else:
                        break
                    yield str(out[:k], "utf-8")
                    out = out[k:]
                pend = bytes(out)
        if carry:
            raise ValueError("bad escape")
        if pend:
            yield str(pend, "utf-8")


def _unescape(s, out):
    """(out + s unescaped up to an escape cut at its end, the cut escape's bytes)."""
    i = 0
    while True:
        j = s.find(b"\\", i)
        if j < 0:
            out += s[i:]
            return out, b""
        out += s[i:j]
        c = s[j + 1 : j + 2]
        if c == b"u":
            cp = _hex4(s, j + 2)
            if cp < 0:
                return out, s[j:]  # cut by the read: the rest comes with the next one
            i = j + 6
            if 0xD800 <= cp < 0xDC00:  # the first half of a UTF-16 surrogate pair
                if len(s) < i + 6:
                    if s[i : i + 2] != b"\\u"[: len(s) - i]:
                        raise ValueError("lone surrogate")
                    return out, s[j:]
                lo = _hex4(s, i + 2) if s[i : i + 2] == b"\\u" else -1
                if not 0xDC00 <= lo < 0xE000:
                    raise ValueError("lone surrogate")
                cp = 0x10000 + ((cp - 0xD800) << 10) + lo - 0xDC00
                i += 6
            elif 0xDC00 <= cp < 0xE000:
                raise ValueError("lone surrogate")
            out += chr(cp).encode()
        elif not c:
            return out, s[j:]
        else:
            m = _ESC.find(c)
            if m < 0:
                raise ValueError("bad escape")
            out.append(_UNESC[m])
            i = j + 2


def _hex4(s, i):
    """The 4 hex digits at s[i:]: their value, or -1 when the read cut them."""
    h = s[i : i + 4]
    if len(h) < 4:
        return -1
    for x in h:
        if x not in b"0123456789abcdefABCDEF":
            raise ValueError("bad escape")
    return int(h, 16)
