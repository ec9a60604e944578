"""Authorize (firmware/ops/authorize.py): the message, schema-checked both ways."""

import pytest
from conftest import check_ocpp
from txnkit import make, run

from firmware.ocpp.session import NotAccepted
from firmware.ops import authorize


def test_payload_is_schema_valid_and_capped():
    check_ocpp("Authorize", authorize.payload("A" * 25))
    assert authorize.payload("ABC") == {"idTag": "ABC"}


def test_send_returns_id_tag_info(tmp_path):
    cp, _ = make(tmp_path)
    cp.session.cards = {"ABC": {"status": "Expired", "expiryDate": "2020-01-01T00:00:00Z"}}
    assert run(authorize.send(cp, "ABC"))["status"] == "Expired"


def test_send_before_accepted_raises(tmp_path):
    cp, _ = make(tmp_path, online=False)
    with pytest.raises(NotAccepted):
        run(authorize.send(cp, "ABC"))
