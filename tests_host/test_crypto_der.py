"""lib/der.py (DER elements) and lib/pem.py (PEM text), checked against `cryptography`'s
encodings."""

import der
import pem
import pytest
from conftest import mp_run
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptokit import ec_key, make_cert
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize("n, head", [(0, 2), (0x7F, 2), (0x80, 3), (0xFF, 3), (0x100, 4),
                                     (0xFFFF, 4)])
def test_length_forms_round_trip(n, head):
    # X.690 §8.1.3: short form below 128, then 0x81 nn, then 0x82 nn nn.
    e = der.enc(0x04, b"\x5a" * n)
    assert len(e) == head + n
    assert der.read(e, 0, len(e)) == (0x04, head, len(e))


def test_writer_refuses_64_kib_values():
    with pytest.raises(ValueError):
        der.enc(0x04, bytes(0x10000))


def test_reader_refuses_truncated_and_indefinite_lengths():
    bad_ones = (b"", b"\x30", b"\x30\x05\x00", b"\x30\x80\x00\x00", b"\x30\x82\x01",
                b"\x30\x85\x01\x00\x00\x00\x00\x00", b"\x1f\x01\x00")
    for bad in bad_ones:
        with pytest.raises(ValueError):
            der.read(bad, 0, len(bad))


def test_reader_stays_inside_the_given_end():
    e = der.enc(0x30, der.enc(0x02, b"\x01"), der.enc(0x02, b"\x02"))
    with pytest.raises(ValueError):
        der.read(e, 0, len(e) - 1)
    assert [x[0] for x in der.items(e, 2, len(e))] == [0x02, 0x02]


@given(st.integers(min_value=1, max_value=2**521), st.integers(min_value=1, max_value=2**521))
def test_integers_encode_as_cryptography_does(r, s):
    # An ECDSA-Sig-Value is exactly SEQUENCE {INTEGER r, INTEGER s}.
    assert der.enc(0x30, der.enc_uint(r), der.enc_uint(s)) == encode_dss_signature(r, s)
    e = der.enc_uint(r)
    t, vs, ve = der.read(e, 0, len(e))
    assert t == 0x02 and der.uint(e, vs, ve) == r


def test_zero_and_sign_bit_integers():
    assert der.enc_uint(0) == b"\x02\x01\x00"
    assert der.enc_uint(0x80) == b"\x02\x02\x00\x80"
    assert der.enc_uint(0x7F) == b"\x02\x01\x7f"


@pytest.mark.parametrize(
    "raw, dotted",
    [(der.OID_EC_KEY, "1.2.840.10045.2.1"), (der.OID_RSA_SHA256, "1.2.840.113549.1.1.11"),
     (der.OID_CN, "2.5.4.3"), (b"\x88\x37\x01", "2.999.1"), (b"\x00", "0.0")],
)
def test_oid_to_dotted(raw, dotted):
    assert der.oid(raw, 0, len(raw)) == dotted


def test_bad_oid_refused():
    for bad in (b"", b"\x2a\x86"):
        with pytest.raises(ValueError):
            der.oid(bad, 0, len(bad))


def test_pem_chain_decodes_every_block_in_order_and_round_trips():
    certs = [make_cert("c%d" % i, ec_key()) for i in range(3)]
    text = "junk before\n" + "\n".join(c.pem for c in certs) + "trailing"
    assert pem.pem_decode(text) == [c.der for c in certs]
    assert pem.pem_decode(text.encode()) == [c.der for c in certs]
    again = pem.pem_encode(certs[0].der)
    loaded = x509.load_pem_x509_certificate(again.encode())
    assert loaded.public_bytes(serialization.Encoding.DER) == certs[0].der
    assert max(len(line) for line in again.splitlines()) == 64
    assert pem.pem_decode("no pem here") == []


@pytest.mark.parametrize("width", [1, 3, 5, 61, 64, 76, 10000])
@pytest.mark.parametrize("sep", ["\n", "\r\n", " \n\t", "\n\n"])
def test_pem_wrapped_at_any_width_with_any_whitespace_decodes_the_same(width, sep):
    import base64

    cert = make_cert("wrap", ec_key())
    b = base64.b64encode(cert.der).decode()
    body = sep.join(b[i : i + width] for i in range(0, len(b), width))
    text = "-----BEGIN CERTIFICATE-----" + sep + body + sep + "-----END CERTIFICATE-----\n"
    assert pem.pem_decode(text) == [cert.der]


def test_pem_without_end_line_or_with_bad_base64_is_refused():
    with pytest.raises(ValueError):
        pem.pem_decode("-----BEGIN CERTIFICATE-----\nAAAA\n")
    with pytest.raises(ValueError):  # binascii.Error is one
        pem.pem_decode("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize("size", [1, 47, 48, 49, 4000])
def test_pem_write_then_pem_read_round_trips_a_chain_on_both_runtimes(tmp_path, size):
    """What pem_write puts on flash (lines of 64, the last shorter) pem_lines of the file
    (read a line at a time) and pem_file give back, on
    CPython and on the MicroPython VM, with cryptography agreeing on the text."""
    import base64

    ders = [bytes(range(256)) * (size // 256) + bytes(size % 256), b"\x30\x03\x02\x01\x07"]
    path = str(tmp_path / "c.pem")
    with open(path, "w") as f:
        for d in ders:
            pem.pem_write(f, d)
    text = open(path).read()
    assert pem.pem_decode(text) == ders
    assert pem.pem_lines(lambda: pem.file_lines(path)) == ders
    for i, d in enumerate(ders):
        assert pem.pem_file(lambda: pem.file_lines(path), path + ".der", only=i) == (2, len(d))
        assert open(path + ".der", "rb").read() == d
    first = text.split("-----END CERTIFICATE-----")[0].split("-----\n", 1)[1]
    assert base64.b64decode(first) == ders[0]
    assert all(len(line) <= 64 for line in text.splitlines())
    code = ("import pem\nds = %r\nprint(pem.pem_lines(lambda: pem.file_lines(%r)) == ds)\n"
            "with open(%r, 'w') as f:\n for d in ds:\n  pem.pem_write(f, d)\n"
            % (ders, path, path + ".mp"))
    r = mp_run(code)
    assert r.stdout.split() == ["True"], r.stdout + r.stderr
    assert open(path + ".mp").read() == text


def test_pem_of_a_file_refuses_a_block_without_end_and_bad_base64(tmp_path):
    p = tmp_path / "bad.pem"

    def read():
        return pem.pem_lines(lambda: pem.file_lines(str(p)))

    p.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n")
    with pytest.raises(ValueError):
        read()
    p.write_text("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError):
        read()
    p.write_text("no pem here\n")
    assert read() == []


def _pem_file(text, tmp_path, only=0):
    dst = str(tmp_path / "out.der")
    got = pem.pem_file(lambda: pem.text_lines(text), dst, only=only)
    data = open(dst, "rb").read() if got[1] is not None else None
    return got, data


def test_pem_file_writes_one_block_as_it_decodes(tmp_path):
    certs = [make_cert("c%d" % i, ec_key()) for i in range(3)]
    text = "junk before\n" + "\n".join(c.pem for c in certs) + "trailing"
    for i, c in enumerate(certs):
        assert _pem_file(text, tmp_path, i) == ((3, len(c.der)), c.der)
    assert _pem_file(text, tmp_path, 3)[0] == (3, None)
    assert _pem_file("no pem here", tmp_path)[0] == (0, None)
    for bad in ("-----BEGIN CERTIFICATE-----\nAAAA\n",
                "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n",
                "-----BEGIN CERTIFICATE-----\nAA!A\n-----END CERTIFICATE-----\n",
                # padding inside, characters outside the alphabet: a lenient decoder would
                # give other bytes than the text says
                "-----BEGIN CERTIFICATE-----\nAA==AAAA\n-----END CERTIFICATE-----\n",
                "-----BEGIN CERTIFICATE-----\nAAA=\nAAAA\n-----END CERTIFICATE-----\n",
                "-----BEGIN CERTIFICATE-----\nAAAA####AAAA\n-----END CERTIFICATE-----\n",
                # a later block is checked too, whichever one is written
                certs[0].pem + "-----BEGIN CERTIFICATE-----\nAAAA\n"):
        with pytest.raises(ValueError):
            pem.pem_file(lambda b=bad: pem.text_lines(b), str(tmp_path / "x.der"))


@pytest.mark.parametrize("width", [1, 3, 5, 61, 64, 76, 10000])
@pytest.mark.parametrize("sep", ["\n", "\r\n", " \n\t"])
def test_pem_file_at_any_width_with_any_whitespace_decodes_the_same(width, sep, tmp_path):
    import base64

    cert = make_cert("wrap", ec_key())
    b = base64.b64encode(cert.der).decode()
    body = sep.join(b[i : i + width] for i in range(0, len(b), width))
    text = "-----BEGIN CERTIFICATE-----" + sep + body + sep + "-----END CERTIFICATE-----\n"
    assert _pem_file(text, tmp_path)[1] == cert.der
    out = tmp_path / "again.pem"
    with open(out, "w") as f:
        pem.pem_copy(f, str(tmp_path / "out.der"))
    assert out.read_text() == pem.pem_encode(cert.der)


def test_flash_reads_like_the_bytes_on_both_runtimes(tmp_path):
    """der.Flash: every index and slice of a file as the bytes give it, across its window;
    past the end an IndexError (which x509 turns into ValueError)."""
    import hashlib

    data = bytes((i * 7 + 3) & 0xFF for i in range(1000))
    path = tmp_path / "d.bin"
    path.write_bytes(data)
    f = der.Flash(str(path))
    try:
        assert len(f) == 1000
        assert [f[i] for i in (0, 127, 128, 999, 5, 500, 499)] == [
            data[i] for i in (0, 127, 128, 999, 5, 500, 499)]
        for s, e in ((0, 10), (120, 140), (990, 1000), (0, 1000), (995, 2000), (7, 7)):
            assert f[s:e] == data[s:e]
        assert f.sha(10, 900) == hashlib.sha256(data[10:900]).digest()
        with pytest.raises(IndexError):
            f[1000]
    finally:
        f.close()
    code = """
import der, hashlib
d = open(%r, "rb").read()
f = der.Flash(%r)
ok = all(f[i] == d[i] for i in range(0, 1000, 3)) and f[120:140] == d[120:140]
ok = ok and f[990:1000] == d[990:1000] and f.sha(0, 1000) == hashlib.sha256(d).digest()
try:
    f[1000]
except IndexError:
    print(ok)
""" % (str(path), str(path))
    r = mp_run(code)
    assert r.stdout.split() == ["True"], r.stdout + r.stderr
