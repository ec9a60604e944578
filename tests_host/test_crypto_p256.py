"""lib/p256.py: P-256 keys and ECDSA-SHA256, checked against RFC 6979 and `cryptography`."""

import hashlib

import p256
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# RFC 6979 §A.2.5, P-256 with SHA-256.
RFC_D = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
RFC_Q = (
    0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6,
    0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299,
)
RFC_SIGS = {
    b"sample": (
        0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716,
        0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8,
    ),
    b"test": (
        0xF1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367,
        0x019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083,
    ),
}


def _sha(m):
    return hashlib.sha256(m).digest()


def _their_pub(q):
    return ec.EllipticCurvePublicNumbers(q[0], q[1], ec.SECP256R1()).public_key()


def test_rfc6979_vectors_give_the_same_key_and_signatures():
    assert p256.public_key(RFC_D) == RFC_Q
    for msg, rs in RFC_SIGS.items():
        assert p256.sign(RFC_D, _sha(msg)) == rs
        assert p256.verify(RFC_Q, _sha(msg), *rs)


@settings(max_examples=15, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_device_signature_verifies_with_cryptography(msg):
    d, q = p256.keygen()
    r, s = p256.sign(d, _sha(msg))
    _their_pub(q).verify(encode_dss_signature(r, s), msg, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        _their_pub(q).verify(encode_dss_signature(r, s), msg + b"x", ec.ECDSA(hashes.SHA256()))


@settings(max_examples=15, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_cryptography_signature_verifies_on_the_device(msg):
    key = ec.generate_private_key(ec.SECP256R1())
    n = key.public_key().public_numbers()
    r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    assert p256.verify((n.x, n.y), _sha(msg), r, s)
    assert not p256.verify((n.x, n.y), _sha(msg + b"x"), r, s)
    assert not p256.verify((n.x, n.y), _sha(msg), r ^ 1, s)
    assert not p256.verify((n.x, n.y), _sha(msg), r, s ^ 1)


def test_keygen_matches_cryptography_public_key():
    d, q = p256.keygen()
    assert 0 < d < p256.N
    n = ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers()
    assert q == (n.x, n.y)


def test_keygen_rejects_out_of_range_random_values(monkeypatch):
    draws = [b"\xff" * 32, bytes(32), (5).to_bytes(32, "big")]  # >= n, 0, then 5
    monkeypatch.setattr(p256.os, "urandom", lambda n: draws.pop(0))
    d, q = p256.keygen()
    assert d == 5 and draws == []
    assert q == p256.public_key(5)


@pytest.mark.parametrize("d", [1, 2, p256.N - 1])
def test_keys_whose_point_meets_g_in_the_ladder_still_work(d):
    # d = 1: Q = G (u1*G + u2*Q doubles in the addition); d = n-1: Q = -G (G + Q = infinity).
    q = p256.public_key(d)
    n = ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers()
    assert q == (n.x, n.y)
    r, s = p256.sign(d, _sha(b"edge"))
    assert p256.verify(q, _sha(b"edge"), r, s)
    _their_pub(q).verify(encode_dss_signature(r, s), b"edge", ec.ECDSA(hashes.SHA256()))


def test_out_of_range_signature_values_are_refused():
    r, s = RFC_SIGS[b"sample"]
    for bad in ((0, s), (r, 0), (p256.N, s), (r, p256.N), (r + p256.N, s)):
        assert not p256.verify(RFC_Q, _sha(b"sample"), *bad)


def test_point_encoding_round_trip_and_on_curve_check():
    import x509

    enc = p256.encode_point(RFC_Q)
    pub = _their_pub(RFC_Q)
    assert enc == pub.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert x509.point(enc) == RFC_Q and p256.on_curve(RFC_Q)
    assert x509.point(memoryview(enc)) == RFC_Q
    off = bytearray(enc)
    off[64] ^= 1  # y changed: not on the curve
    bad_x = b"\x04" + p256.P.to_bytes(32, "big") + enc[33:]
    for bad in (bytes(off), bad_x):
        assert not p256.on_curve(x509.point(bad))
    for bad in (enc[:64], b"\x02" + enc[1:33], b"\x03" + enc[1:]):
        with pytest.raises(ValueError):
            x509.point(bad)


def test_a_key_off_the_curve_verifies_nothing():
    """x509 reads a certificate's EC key without checking it (x509.point: no EC code for a
    certificate only read); p256.verify checks it, so a key off the curve (an invalid-curve
    attack) verifies no signature, not even one its x and a y on the curve would."""
    import x509

    enc = p256.encode_point(RFC_Q)
    assert x509.point(enc) == RFC_Q
    off = bytearray(enc)
    off[64] ^= 1
    q = x509.point(bytes(off))
    assert not p256.on_curve(q) and p256.on_curve(RFC_Q)
    rs = RFC_SIGS[b"sample"]
    assert p256.verify(RFC_Q, _sha(b"sample"), *rs)
    assert not p256.verify(q, _sha(b"sample"), *rs)
    assert not p256.verify((RFC_Q[0] + p256.P, RFC_Q[1]), _sha(b"sample"), *rs)
    for bad in (enc[:64], b"\x02" + enc[1:33], b"\x03" + enc[1:]):
        with pytest.raises(ValueError):
            x509.point(bad)


def test_digest_must_be_sha256_sized():
    with pytest.raises(ValueError):
        p256.sign(RFC_D, b"short")
    with pytest.raises(ValueError):
        p256.verify(RFC_Q, b"x" * 33, *RFC_SIGS[b"sample"])
