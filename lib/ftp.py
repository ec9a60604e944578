"""FTP client for xfer.py (RFC 959): RETR and STOR, passive, binary. Imported on first use.

ftp://user:password@host:port/path: user and password percent-decoded (anonymous without
them), path relative to the login directory (ftp://h//abs/file for an absolute one). The
data connection is passive, EPSV (RFC 2428) first, PASV when the server does not know EPSV,
and always goes to the control connection's host: the address inside a PASV reply is
ignored, which keeps NAT'ed servers working and the client out of FTP bounce attacks.
TYPE I (binary). SIZE, when the server answers it, is checked before the download starts.
"""

from compat import const
from xfer import TransferError, connect, copy, open_sink, send, split_url, unquote

_MAX_LINES = const(100)
_BUF = const(512)  # transfer buffer: a small block, found on a fragmented heap too


class _Ctl:
    """The control connection: one command, one (possibly multi-line) reply."""

    def __init__(self, conn, host):
        self.c = conn
        self.host = host

    async def reply(self):
        """-> (code, last line) of the next reply."""
        first = None
        for _ in range(_MAX_LINES):
            line = await self.c.line()
            if not line:
                raise TransferError("FTP server closed the connection")
            if first is None:
                first = line[:3]
                try:
                    code = int(first)
                except ValueError:
                    raise TransferError("not an FTP reply: %r" % line[:40])
            if line[:3] == first and line[3:4] != b"-":
                return code, line.strip().decode()
        raise TransferError("FTP reply too long")

    async def cmd(self, line, ok, what=None):
        """Send `line` (None: only read the next reply); the reply's first digit must be in
        `ok` -> (code, text)."""
        if line is not None:
            await self.c.write(line.encode() + b"\r\n")
        code, text = await self.reply()
        if code // 100 not in ok:
            raise TransferError("FTP %s: %s" % (what or line, text))
        return code, text

    async def data(self):
        """Open the passive data connection -> Conn."""
        await self.c.write(b"EPSV\r\n")
        code, text = await self.reply()
        if code == 229:  # "229 Entering Extended Passive Mode (|||6446|)"
            port = text[text.find("(") + 1 : text.rfind(")")].strip("|")
        else:
            _, text = await self.cmd("PASV", (2,))  # "227 ... (h1,h2,h3,h4,p1,p2)"
            i = text.find("(")
            nums = text[i + 1 : text.find(")", i)].split(",") if i >= 0 else ()
            if len(nums) != 6:
                raise TransferError("FTP PASV: " + text)
            port = int(nums[4]) * 256 + int(nums[5])
        try:
            port = int(port)
        except ValueError:
            raise TransferError("FTP EPSV: " + text)
        return await connect(self.host, port, None, self.c.t)

    async def close(self):
        try:
            await self.c.write(b"QUIT\r\n")
        except Exception:  # already gone: nothing to say goodbye to
            pass
        await self.c.close()


async def _login(url, timeout_ms):
    scheme, user, password, host, port, path = split_url(url)
    if scheme != "ftp":
        raise TransferError("not an FTP URL")
    name = unquote(path[1:])
    if not name:
        raise TransferError("no file name in the FTP URL")
    ctl = _Ctl(await connect(host, port, None, timeout_ms), host)
    try:
        code, text = await ctl.reply()
        if code == 120:  # "service ready in n minutes"
            code, text = await ctl.reply()
        if code != 220:
            raise TransferError("FTP greeting: " + text)
        if user is None:
            user, password = "anonymous", "anonymous@"
        code, _ = await ctl.cmd("USER " + user, (2, 3), "login")
        if code == 331:
            await ctl.cmd("PASS " + password, (2,), "login")
        await ctl.cmd("TYPE I", (2,))
    except BaseException:
        await ctl.close()
        raise
    return ctl, name


async def retr(url, path, max_bytes, progress, timeout_ms):
    """Download ftp:// `url` into `path` -> (size, sha256 hex)."""
    ctl, name = await _login(url, timeout_ms)
    try:
        size = None
        await ctl.c.write(("SIZE " + name + "\r\n").encode())
        code, text = await ctl.reply()
        if code == 213:
            try:
                size = int(text[4:])
            except ValueError:
                pass
        sink = open_sink(path, size, max_bytes, progress)
        try:
            d = await ctl.data()
            try:
                await ctl.cmd("RETR " + name, (1,))
                await copy(d, sink, bytearray(_BUF))
            finally:
                await d.close()
            await ctl.cmd(None, (2,), "RETR " + name)
            if size is not None and sink.n != size:
                raise TransferError("FTP RETR: %d of %d bytes" % (sink.n, size))
            return sink.done()
        except BaseException:
            sink.fail()
            raise
    finally:
        await ctl.close()


async def stor(url, source, timeout_ms):
    """Upload a file path or an iterable of bytes to ftp:// `url` -> (size, sha256 hex)."""
    ctl, name = await _login(url, timeout_ms)
    try:
        d = await ctl.data()
        try:
            await ctl.cmd("STOR " + name, (1,))
            sent = await send(d, source, bytearray(_BUF))
        finally:
            await d.close()  # end of file for the server
        await ctl.cmd(None, (2,), "STOR " + name)
        return sent
    finally:
        await ctl.close()
