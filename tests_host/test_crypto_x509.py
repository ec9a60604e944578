"""lib/x509.py and lib/rsa_verify.py: certificate fields, signature checks and the OCPP
CertificateHashData, each compared with what `cryptography` makes of the same certificate."""

import datetime
import hashlib

import der
import pytest
import rsa_verify
import x509
from conftest import check_ocpp, mp_run
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptokit import ec_key, make_cert, rsa_key
from hypothesis import given, settings
from hypothesis import strategies as st

UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def pki():
    """An EC P-256 root and an RSA 2048 root, each with an intermediate-free leaf of the
    other key type, and an RSA leaf under the RSA root."""
    ec_root = make_cert("EC Root", ec_key(), o="Test CA EC", ca=True)
    rsa_root = make_cert("RSA Root", rsa_key(), o="Test CA RSA", ca=True)
    return {
        "ec_root": ec_root,
        "rsa_root": rsa_root,
        "ec_leaf": make_cert("CP0001", ec_key(), issuer=rsa_root, o="ACME"),
        "rsa_leaf": make_cert("fw-signer", rsa_key(slot=1), issuer=ec_root, o="Vendor"),
        "rsa_rsa": make_cert("CP0002", rsa_key(slot=1), issuer=rsa_root, o="ACME"),
    }


def _pub_bits(key):
    pub = key.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return pub.public_bytes(serialization.Encoding.X962,
                                serialization.PublicFormat.UncompressedPoint)
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


@pytest.mark.parametrize("which", ["ec_root", "rsa_root", "ec_leaf", "rsa_leaf", "rsa_rsa"])
def test_fields_match_cryptography(pki, which):
    c = pki[which]
    ref = c.cert
    got = x509.parse(c.der)
    assert bytes(got["tbs"]) == ref.tbs_certificate_bytes
    sig = ref.signature  # an RSA one as der.number() reads it, its length kept
    rsa = got["sig_alg"] == "1.2.840.113549.1.1.11"
    assert got["sig"] == (der.number(sig, 0, len(sig), False) if rsa else sig)
    assert got["sig_alg"] == ref.signature_algorithm_oid.dotted_string
    assert got["serial"] == ref.serial_number
    assert got["issuer"] == ref.issuer.public_bytes()
    assert got["subject"] == ref.subject.public_bytes()
    assert got["cn"] == ref.subject.get_attributes_for_oid(x509_oid("CN"))[0].value
    assert got["o"] == ref.subject.get_attributes_for_oid(x509_oid("O"))[0].value
    assert got["not_before"] == int(ref.not_valid_before_utc.timestamp())
    assert got["not_after"] == int(ref.not_valid_after_utc.timestamp())
    assert got["ca"] is which.endswith("root")
    assert got["spk"] == _pub_bits(c.key)
    nums = c.key.public_key().public_numbers()
    if isinstance(c.key, ec.EllipticCurvePrivateKey):
        assert (got["key_type"], got["key"]) == ("ec", (nums.x, nums.y))
    else:
        assert (got["key_type"], got["key"]) == ("rsa", (_nb(nums.n), nums.e))


def x509_oid(short):
    from cryptography.x509.oid import NameOID

    return {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME}[short]


@pytest.mark.parametrize(
    "when",
    [datetime.datetime(1950, 1, 1, tzinfo=UTC), datetime.datetime(1969, 12, 31, 23, 59, 59,
                                                                  tzinfo=UTC),
     datetime.datetime(2000, 2, 29, 1, 2, 3, tzinfo=UTC),
     datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC),
     datetime.datetime(2050, 1, 1, tzinfo=UTC),  # GeneralizedTime from here on
     datetime.datetime(2106, 2, 7, 6, 28, 16, tzinfo=UTC)],
)
def test_validity_in_unix_seconds_for_utctime_and_generalizedtime(when):
    c = make_cert("t", ec_key(), not_before=when, not_after=when + datetime.timedelta(days=1))
    got = x509.parse(c.der)
    assert got["not_before"] == int(when.timestamp())
    assert got["not_after"] == int(when.timestamp()) + 86400


def test_name_without_o_and_with_unicode(pki):
    c = make_cert("Ladesäule 1", ec_key())
    got = x509.parse(c.der)
    assert (got["cn"], got["o"]) == ("Ladesäule 1", None)


@pytest.mark.parametrize(
    "leaf, issuer",
    [("ec_leaf", "rsa_root"), ("rsa_leaf", "ec_root"), ("rsa_rsa", "rsa_root"),
     ("ec_root", "ec_root"), ("rsa_root", "rsa_root")],
)
def test_signature_by_the_issuer_verifies_and_a_flipped_byte_does_not(pki, leaf, issuer):
    c = x509.parse(pki[leaf].der)
    i = x509.parse(pki[issuer].der)
    assert x509.verify_signed_by(c, i)
    sig = bytearray(pki[leaf].der)
    sig[-5] ^= 0x01  # inside the signature value
    assert not x509.verify_signed_by(x509.parse(bytes(sig)), i)
    tbs = bytearray(pki[leaf].der)
    at = tbs.find(b"260601123045Z")  # notAfter: still parses, no longer what was signed
    tbs[at + 1] = ord("7")
    assert not x509.verify_signed_by(x509.parse(bytes(tbs)), i)


def test_wrong_issuer_is_refused(pki):
    leaf = x509.parse(pki["ec_leaf"].der)
    assert not x509.verify_signed_by(leaf, x509.parse(pki["ec_root"].der))
    # Same name, other key: the name matches, the signature does not.
    impostor = make_cert("RSA Root", rsa_key(slot=2), o="Test CA RSA", ca=True)
    assert not x509.verify_signed_by(leaf, x509.parse(impostor.der))


def test_unsupported_issuer_key_is_refused_not_crashed(pki):
    p384 = make_cert("P384", ec.generate_private_key(ec.SECP384R1()))
    got = x509.parse(p384.der)
    assert (got["key_type"], got["key"]) == (None, None)
    assert not x509.verify_signed_by(got, got)


@pytest.mark.parametrize("leaf, issuer", [("ec_leaf", "rsa_root"), ("rsa_leaf", "ec_root"),
                                          ("ec_root", "ec_root")])
def test_cert_hash_data_matches_an_ocsp_certid_from_cryptography(pki, leaf, issuer):
    got = x509.cert_hash_data(x509.parse(pki[leaf].der), x509.parse(pki[issuer].der))
    req = ocsp.OCSPRequestBuilder().add_certificate(
        pki[leaf].cert, pki[issuer].cert, hashes.SHA256()).build()
    assert got == {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": req.issuer_name_hash.hex(),
        "issuerKeyHash": req.issuer_key_hash.hex(),
        "serialNumber": format(req.serial_number, "x"),
    }
    assert got["issuerNameHash"] == hashlib.sha256(
        pki[leaf].cert.issuer.public_bytes()).hexdigest()
    assert got["issuerKeyHash"] == hashlib.sha256(_pub_bits(pki[issuer].key)).hexdigest()
    check_ocpp("GetInstalledCertificateIds",
               {"status": "Accepted", "certificateHashData": [got]}, response=True)


BIG_SERIAL = 0x7F00000000000000000000000000000000000001  # 159 bits, RFC 5280's 20 octets


@pytest.mark.parametrize("serial, text", [(1, "1"), (0x0100, "100"), (0x80, "80"), (0xFF, "ff"),
                                          (BIG_SERIAL, "7f" + "0" * 37 + "1")])
def test_serial_number_is_lowercase_hex_without_leading_zeros(serial, text):
    c = make_cert("s", ec_key(), serial=serial)
    p = x509.parse(c.der)
    assert x509.cert_hash_data(p, p)["serialNumber"] == text


def test_hash_data_refuses_an_issuer_that_is_not_the_one_named(pki):
    with pytest.raises(ValueError):
        x509.cert_hash_data(x509.parse(pki["ec_leaf"].der), x509.parse(pki["ec_root"].der))


def test_pem_chain_parses_in_order(pki):
    chain = pki["ec_leaf"].pem + pki["rsa_root"].pem
    got = x509.parse_pem(chain)
    assert [c["cn"] for c in got] == ["CP0001", "RSA Root"]
    assert x509.verify_signed_by(got[0], got[1])


def _stream_digest(data, chunk=100):
    h = hashlib.sha256()
    for i in range(0, len(data), chunk):
        h.update(data[i : i + chunk])
    return h.digest()


@pytest.mark.parametrize("signer", ["rsa_leaf", "ec_leaf"])
def test_file_signature_by_the_certificate_key(pki, signer):
    import base64

    fw = bytes(range(256)) * 40
    key = pki[signer].key
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(fw, padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = key.sign(fw, ec.ECDSA(hashes.SHA256()))
    b64 = base64.encodebytes(sig).decode()  # with line breaks, as some systems send it
    cert = x509.parse(pki[signer].der)
    assert x509.verify_file_signature(_stream_digest(fw), b64, cert)
    assert not x509.verify_file_signature(_stream_digest(fw + b"\x00"), b64, cert)
    flipped = bytearray(sig)
    flipped[len(sig) // 2] ^= 0x40
    b64f = base64.b64encode(bytes(flipped)).decode()
    assert not x509.verify_file_signature(_stream_digest(fw), b64f, cert)
    other = x509.parse(pki["rsa_rsa" if signer == "ec_leaf" else "ec_root"].der)
    assert not x509.verify_file_signature(_stream_digest(fw), b64, other)
    assert not x509.verify_file_signature(_stream_digest(fw), "not base64!", cert)
    assert not x509.verify_file_signature(_stream_digest(fw), "", cert)


def _nb(n):
    """The modulus as x509 keeps it: der.number() of its big-endian bytes."""
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return der.number(b, 0, len(b))


def _rsa_sign_raw(key, em):
    """A 'signature' of any encoded block em, for the strictness checks."""
    n = key.private_numbers()
    return pow(int.from_bytes(em, "big"), n.d, n.public_numbers.n).to_bytes(256, "big")


def test_rsa_accepts_only_the_exact_pkcs1_encoding():
    key = rsa_key()
    pub = key.public_key().public_numbers()
    h = hashlib.sha256(b"firmware").digest()
    info = bytes.fromhex("3031300d060960864801650304020105000420")
    good = b"\x00\x01" + b"\xff" * (256 - 54) + b"\x00" + info + h
    assert rsa_verify.verify(_nb(pub.n), pub.e, h, _rsa_sign_raw(key, good))
    assert rsa_verify.verify(_nb(pub.n), pub.e, h, key.sign(b"firmware", padding.PKCS1v15(),
                                                         hashes.SHA256()))
    no_null = bytes.fromhex("302f300b0609608648016503040201" "0420")  # params left out
    forged = [
        b"\x00\x01" + b"\xff" * (256 - 52) + b"\x00" + no_null + h,
        b"\x00\x02" + b"\xff" * (256 - 54) + b"\x00" + info + h,
        b"\x00\x01" + b"\xff" * (256 - 64) + b"\x00" + info + h + b"\x00" * 10,  # garbage tail
        b"\x00\x01" + b"\xff" * 8 + b"\x00" + info + h + b"\x00" * (256 - 62),
    ]
    for em in forged:
        assert len(em) == 256
        assert not rsa_verify.verify(_nb(pub.n), pub.e, h, _rsa_sign_raw(key, em))
    sig = _rsa_sign_raw(key, good)
    assert not rsa_verify.verify(_nb(pub.n), pub.e, h, sig[1:])  # wrong length
    # The same integer one byte longer: the length is the modulus's, not the value's.
    assert not rsa_verify.verify(_nb(pub.n), pub.e, h, b"\x00" + sig)
    assert not rsa_verify.verify(_nb(pub.n), pub.e, h, b"\x00" * 255)
    assert not rsa_verify.verify(_nb(pub.n), pub.e, h, pub.n.to_bytes(256, "big"))  # s >= n


def test_rsa_keys_under_2048_bits_are_refused():
    key = rsa_key(1024)
    pub = key.public_key().public_numbers()
    sig = key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    assert not rsa_verify.verify(_nb(pub.n), pub.e, hashlib.sha256(b"x").digest(), sig)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_rsa_power_is_pow_for_every_modulus_length_and_exponent(data):
    """rsa_verify._pow (Montgomery on words of _W bytes) is pow() for odd moduli of any byte
    length (not only multiples of the word) and any top byte (1 to 0xff: the doublings that
    make R * R mod n), any base below the modulus (0, 1 and n - 1 too), any odd exponent."""
    k = data.draw(st.integers(256, 513))
    top = data.draw(st.integers(1, 255))
    n = (top << (8 * k - 8)) | data.draw(st.integers(0, (1 << (8 * k - 8)) - 1)) | 1
    s = data.draw(st.sampled_from([0, 1, n - 1]) | st.integers(0, n - 1))
    e = data.draw(st.sampled_from([3, 65537]) | st.integers(3, 1 << 70).map(lambda x: x | 1))
    w = rsa_verify._pow(der.number(s.to_bytes(k, "big"), 0, k, False)[1], e,
                        der.number(n.to_bytes(k, "big"), 0, k)[1])
    bits = 8 * rsa_verify._W
    assert len(w) == -(-k // rsa_verify._W) and all(0 <= x < 1 << bits for x in w)
    assert sum(x << (bits * i) for i, x in enumerate(w)) == pow(s, e, n)


def test_rsa_even_modulus_is_refused():
    key = rsa_key()
    pub = key.public_key().public_numbers()
    h = hashlib.sha256(b"x").digest()
    sig = key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    assert rsa_verify.verify(_nb(pub.n), pub.e, h, sig)
    assert not rsa_verify.verify(_nb(pub.n ^ 1), pub.e, h, sig)


_FRAGMENT = """
blocks = [None] * 600
small = [None] * 3000
i = j = 0  # every global named before the heap is filled: a new one grows their table
gc.collect()
try:  # the heap filled with 300-byte blocks (on the 64-bit VM), then its last gaps with tiny
    while i < 600:  # ones: tuples, each one allocation (a bytearray is two, and the head of
        blocks[i] = (None,) * 36  # one that failed was garbage beside the free runs, and
        i += 1  # what a collection then freed differed from run to run)
except MemoryError:
    pass
try:
    while j < 3000:
        small[j] = (j,)
        j += 1
except MemoryError:
    pass
j = 1
while j < i:  # every other block freed: free runs of 300 bytes, each between two held ones
    blocks[j] = None
    j += 2
gc.collect()
"""


def test_rsa_4096_check_needs_no_free_run_of_512_bytes_on_micropython():
    """On the MicroPython VM, with the heap cut into free runs of about 300 bytes (none of
    512, as a board's heap is after hours of small allocations), pow() of an RSA-4096
    signature has no room (its numbers take 512-byte blocks and more) while
    rsa_verify.verify still checks it: a genuine signature passes, a damaged one fails."""
    key = rsa_key(4096)
    pub = key.public_key().public_numbers()
    h = hashlib.sha256(b"root").digest()
    sig = key.sign(b"root", padding.PKCS1v15(), hashes.SHA256())
    code = """
import gc, der, rsa_verify
n = %r
nn = %d
e = %d
h = %r
sig = %r
bad = bytearray(sig)
bad[-1] ^= 1
ni = int.from_bytes(sig, "big")
sig = der.number(sig, 0, len(sig), False)  # as x509 reads a signature
bad = der.number(bad, 0, len(bad), False)
""" % (_nb(pub.n), pub.n, pub.e, h, sig) + _FRAGMENT + """
try:
    pow(ni, e, nn)
    print("room for pow", i)
except MemoryError:
    print("no room for pow", i)
gc.collect()
print(rsa_verify.verify(n, e, h, sig), rsa_verify.verify(n, e, h, bad))
"""
    r = mp_run(code, heap="96k")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].startswith("no room for pow"), r.stdout  # the heap is as meant
    assert int(lines[0].split()[-1]) < 600  # filled to the end: no big run left over
    assert lines[1] == "True False", r.stdout


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_damaged_certificates_raise_value_error_only(pki, data):
    der = pki[data.draw(st.sampled_from(sorted(pki)))].der
    cut = data.draw(st.integers(0, len(der)))
    pos = data.draw(st.integers(0, len(der) - 1))
    bad = bytearray(der)
    bad[pos] ^= data.draw(st.integers(1, 255))
    for blob in (der[:cut], bytes(bad)):
        try:
            x509.parse(blob)
        except ValueError:
            pass


def test_damaged_certificates_raise_value_error_only_on_micropython(pki):
    code = """
import random, x509
random.seed(7)
n = 0
for der in (%r, %r):
    for i in range(300):
        b = bytearray(der)
        p = random.getrandbits(16) %% len(b)
        b[p] ^= random.getrandbits(8) | 1
        for blob in (bytes(b), der[:p]):
            try:
                c = x509.parse(blob)
                x509.verify_signed_by(c, c)
            except ValueError:
                n += 1
print("done", n)
""" % (pki["ec_leaf"].der, pki["rsa_root"].der)
    r = mp_run(code, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("done"), r.stdout + r.stderr
    assert int(r.stdout.split()[1]) > 300  # most damage is noticed


def _light_of_file(tmp_path, data):
    p = tmp_path / "c.der"
    p.write_bytes(data)
    return x509.light_file(str(p))


@pytest.mark.parametrize("which", ["ec_root", "rsa_root", "ec_leaf", "rsa_leaf", "rsa_rsa"])
def test_light_file_reads_from_flash_what_light_reads_from_ram(pki, which, tmp_path):
    """x509.light_file walks the DER through der.Flash (a window of 128 bytes): the same
    fields, digests and signature checks as light() of the bytes."""
    c = pki[which]
    got = _light_of_file(tmp_path, c.der)
    assert got == x509.light(c.der)
    issuer = {"ec_root": "ec_root", "rsa_root": "rsa_root", "ec_leaf": "rsa_root",
              "rsa_leaf": "ec_root", "rsa_rsa": "rsa_root"}[which]
    up = _light_of_file(tmp_path, pki[issuer].der)
    assert x509.verify_signed_by(got, up)
    # No key bits kept (526 bytes for RSA-4096), only their hash: the same CertificateHashData.
    assert "spk" not in got and "der" not in got and "tbs" not in got
    assert x509.cert_hash_data(got, up) == x509.cert_hash_data(
        x509.parse(c.der), x509.parse(pki[issuer].der))
    # without its signature (a root that only signs, a link checked at the next one): the
    # same but "sig", and no check can pass with it
    p = tmp_path / "bare.der"
    p.write_bytes(c.der)
    bare = x509.light_file(str(p), want_sig=False)
    assert bare["sig"] is None and dict(bare, sig=got["sig"]) == got


def test_a_4096_bit_root_read_from_flash_on_micropython(tmp_path):
    """An RSA-4096 root (~1.4 KB of DER here; 4 KB with a long name and extensions) parsed
    from flash on the VM and its self-signature verified in a heap cut into free runs of
    300 bytes (its modulus and signature are 512 bytes each): what CPython's light()
    finds."""
    root = make_cert("Big Root", rsa_key(4096), o="Test CA 4096", ca=True)
    path = tmp_path / "root.der"
    path.write_bytes(root.der)
    code = """
import gc, binascii, hashlib, der, rsa_verify, x509, certsig
p = %r
c = None
""" % str(path) + _FRAGMENT + """
try:
    bytearray(512)
    print("room")
except MemoryError:
    print("no-room")
c = x509.light_file(p)
print(x509.verify_signed_by(c, c), c["cn"], c["o"], c["ca"], c["serial"], c["sha"].hex(),
      c["digest"].hex(), c["key"][0][0], sum(c["key"][0][1]) % 1000003)
"""
    r = mp_run(code, timeout=120, heap="160k")
    want = x509.light(root.der)
    assert r.stdout.split() == [
        "no-room", "True", "Big", "Root", "Test", "CA", "4096", "True", str(want["serial"]),
        want["sha"].hex(), want["digest"].hex(), str(want["key"][0][0]),
        str(sum(want["key"][0][1]) % 1000003)
    ], r.stdout + r.stderr


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_damaged_certificates_on_flash_raise_value_error_only(pki, tmp_path_factory, data):
    der = pki[data.draw(st.sampled_from(sorted(pki)))].der
    cut = data.draw(st.integers(0, len(der)))
    pos = data.draw(st.integers(0, len(der) - 1))
    bad = bytearray(der)
    bad[pos] ^= data.draw(st.integers(1, 255))
    d = tmp_path_factory.mktemp("dmg")
    for blob in (der[:cut], bytes(bad)):
        try:
            _light_of_file(d, blob)
        except ValueError:
            pass


def test_long_checks_let_the_safety_tick_in_between_their_steps(pki, monkeypatch):
    """ECDSA and RSA checks hold the loop (no await in them): they call compat.busy() at
    every step (a bit of the ECDSA scalars, a word of a Montgomery product), where the
    charger runs its safety tick when one is due (tests_host/test_charger_review.py)."""
    import compat

    calls = [0]

    def busy():
        calls[0] += 1

    monkeypatch.setattr(compat, "BUSY", [busy])
    leaf = x509.parse(pki["ec_leaf"].der)
    assert x509.verify_signed_by(leaf, x509.parse(pki["rsa_root"].der))
    rsa = calls[0]
    assert rsa >= 17 * 8  # e = 65537: 17 products of 8 words at least (RSA-2048)
    assert x509.verify_signed_by(x509.parse(pki["rsa_leaf"].der), x509.parse(pki["ec_root"].der))
    assert calls[0] - rsa >= 256  # a bit of the scalars at a time


def test_rsa_public_exponents_over_32_bits_are_refused():
    """A product per bit of e: a 4096-bit exponent would hold the loop for a minute on an
    ESP32. Real keys use 65537 (or 3); up to 32 bits is taken, more is refused (signatures
    made by hand: primes p, q of two test keys, d for each e)."""
    h = hashlib.sha256(b"x").digest()
    p, q = rsa_key().private_numbers().p, rsa_key(slot=1).private_numbers().q
    n = p * q
    info = bytes.fromhex("3031300d060960864801650304020105000420")
    em = int.from_bytes(b"\x00\x01" + b"\xff" * (256 - 54) + b"\x00" + info + h, "big")
    for e, ok in ((65537, True), ((1 << 32) - 5, True), ((1 << 32) + 15, False),
                  ((1 << 61) - 1, False)):  # primes: each has an inverse mod (p-1)(q-1)
        sig = pow(em, pow(e, -1, (p - 1) * (q - 1)), n).to_bytes(256, "big")
        assert pow(int.from_bytes(sig, "big"), e, n) == em  # a genuine signature
        assert rsa_verify.verify(_nb(n), e, h, sig) is ok, e
