"""tools/peaks.py (the peaks of the bench's reference scenario): its requests are as large as
it says and still within what the OCPP schemas and the firmware's limits allow."""

import os
import sys

from conftest import ROOT, check_ocpp

sys.path.insert(0, os.path.join(ROOT, "tools"))

import peaks  # noqa: E402


def test_data_transfer_frame_is_just_under_the_websocket_cap():
    from ocpp.messages import Call

    p = peaks.data_transfer("peak-data")
    payload = {"vendorId": p.vendor_id, "messageId": p.message_id, "data": p.data}
    check_ocpp("DataTransfer", payload)
    frame = Call("peak-data", "DataTransfer", payload).to_json()  # as the package sends it
    assert len(frame.encode()) == peaks.FRAME_BYTES
    assert 16384 - 64 < peaks.FRAME_BYTES < 16384


def test_root_and_chain_fit_the_schemas_and_verify():
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pki = peaks.pki_material()
    root_pem = pki["root_pem"]
    assert peaks.ROOT_CHARS - 16 <= len(root_pem) <= peaks.ROOT_CHARS <= 5500
    check_ocpp("InstallCertificate", {"certificateType": "CentralSystemRootCertificate",
                                      "certificate": root_pem})
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (cx.CertificateSigningRequestBuilder()
           .subject_name(cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, "SIM-0001")]))
           .sign(key, hashes.SHA256()))
    chain = peaks.sign_chain(csr.public_bytes(serialization.Encoding.PEM).decode())
    assert peaks.CHAIN_CHARS - 64 <= len(chain) <= 5600  # CertificateSignedMaxChainSize
    check_ocpp("CertificateSigned", {"certificateChain": chain})
    leaf, inter = cx.load_pem_x509_certificates(chain.encode())
    root = cx.load_pem_x509_certificate(root_pem.encode())
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert root.extensions.get_extension_for_class(cx.BasicConstraints).value.ca


def test_the_peaks_are_the_firmware_limits():
    """SendLocalList fills SendLocalListMaxLength, the profile ChargingScheduleMaxPeriods, the
    chain aims at CertificateSignedMaxChainSize (defaults of the firmware's KEYS rows)."""
    from firmware.authorization import service as auth
    from firmware.security import service as security
    from firmware.smart_charging import service as smart

    defaults = {r[0]: r[3] for m in (auth, security, smart) for r in m.KEYS}
    assert defaults["SendLocalListMaxLength"] == peaks.CARDS
    assert defaults["ChargingScheduleMaxPeriods"] == peaks.PERIODS
    assert defaults["CertificateSignedMaxChainSize"] - 16 <= peaks.CHAIN_CHARS
    assert peaks.CHAIN_CHARS < defaults["CertificateSignedMaxChainSize"]
