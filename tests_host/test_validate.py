"""Device-side payload validation (firmware/ocpp/validate.py): the rules one by one, the error
code and the field path each refusal names, and the same cases on the MicroPython VM."""

import json

import pytest

from firmware.ocpp import router, validate
from firmware.ocpp.router import OCPPError

PROFILE = {
    "connectorId": 1,
    "csChargingProfiles": {
        "chargingProfileId": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 16.0},
                {"startPeriod": 900, "limit": 6.3, "numberPhases": 1},
            ],
        },
    },
}


def refused(action, payload):
    with pytest.raises(OCPPError) as e:
        validate.request(action, payload)
    return e.value.code, e.value.description


@pytest.fixture
def clean_router():
    saved = dict(router.HANDLERS), dict(router.AFTER), dict(router.SCHEMAS)
    yield
    for d, s in zip((router.HANDLERS, router.AFTER, router.SCHEMAS), saved, strict=True):
        d.clear()
        d.update(s)


def test_valid_nested_payload_passes():
    validate.request("SetChargingProfile", PROFILE)
    validate.request("GetConfiguration", {})
    validate.request("GetConfiguration", {"key": ["HeartbeatInterval", "x" * 50]})


def test_integer_field_refuses_float_bool_and_string():
    for bad in (1.0, 1.5, True, "1", None):
        code, desc = refused("UnlockConnector", {"connectorId": bad})
        assert code == router.TYPE_CONSTRAINT_VIOLATION
        assert desc == "connectorId: expected integer"


def test_number_field_takes_int_and_float_but_not_bool():
    p = json.loads(json.dumps(PROFILE))
    sched = p["csChargingProfiles"]["chargingSchedule"]
    sched["minChargingRate"] = 6  # int is a JSON number
    validate.request("SetChargingProfile", p)
    sched["minChargingRate"] = False
    code, desc = refused("SetChargingProfile", p)
    assert code == router.TYPE_CONSTRAINT_VIOLATION
    assert desc == "csChargingProfiles/chargingSchedule/minChargingRate: expected number"


def test_limit_must_be_a_multiple_of_a_tenth():
    p = json.loads(json.dumps(PROFILE))
    periods = p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"]
    for ok in (0.3, 32.1, 1e6 + 0.1, 0):
        periods[1]["limit"] = ok
        validate.request("SetChargingProfile", p)
    periods[1]["limit"] = 6.25
    code, desc = refused("SetChargingProfile", p)
    assert code == router.PROPERTY_CONSTRAINT_VIOLATION
    assert desc == (
        "csChargingProfiles/chargingSchedule/chargingSchedulePeriod/1/limit: "
        "not a multiple of 0.1"
    )


def test_array_items_are_checked_with_their_index():
    code, desc = refused("GetConfiguration", {"key": ["ok", 5]})
    assert (code, desc) == (router.TYPE_CONSTRAINT_VIOLATION, "key/1: expected string")
    code, desc = refused("GetConfiguration", {"key": "HeartbeatInterval"})
    assert (code, desc) == (router.TYPE_CONSTRAINT_VIOLATION, "key: expected array")


def test_boolean_is_not_an_integer():
    validate.response("DataTransfer", {"status": "Accepted"})
    code, _ = refused("ChangeAvailability", {"connectorId": False, "type": "Operative"})
    assert code == router.TYPE_CONSTRAINT_VIOLATION


def test_missing_required_is_occurence_constraint_violation_with_1_6_spelling():
    code, desc = refused("ReserveNow", {"connectorId": 1, "idTag": "A", "reservationId": 1})
    assert code == "OccurenceConstraintViolation"
    assert desc == "missing expiryDate"
    p = json.loads(json.dumps(PROFILE))
    del p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
    code, desc = refused("SetChargingProfile", p)
    assert code == "OccurenceConstraintViolation"
    assert desc == "csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0: missing limit"


def test_enum_and_max_length_are_property_constraint_violations():
    assert refused("Reset", {"type": "hard"}) == (
        router.PROPERTY_CONSTRAINT_VIOLATION,
        "type: not an allowed value",
    )
    validate.request("RemoteStartTransaction", {"idTag": "x" * 20})
    assert refused("RemoteStartTransaction", {"idTag": "x" * 21}) == (
        router.PROPERTY_CONSTRAINT_VIOLATION,
        "idTag: longer than 20",
    )
    # maxLength counts characters, not UTF-8 bytes.
    validate.request("RemoteStartTransaction", {"idTag": "é" * 20})


def test_unknown_property_is_formation_violation_in_requests_only():
    code, desc = refused("Reset", {"type": "Soft", "delay": 5})
    assert (code, desc) == (router.FORMATION_VIOLATION, "unknown property delay")
    code, desc = refused("SendLocalList", {
        "listVersion": 1,
        "updateType": "Full",
        "localAuthorizationList": [{"idTag": "A", "idTagInfo": {"status": "Accepted", "x": 1}}],
    })
    assert code == router.FORMATION_VIOLATION
    assert desc == "localAuthorizationList/0/idTagInfo: unknown property x"
    # Responses we receive: lenient on extras, strict on everything else.
    validate.response("Heartbeat", {"currentTime": "2026-11-24T10:00:00Z", "vendorX": 1})
    with pytest.raises(OCPPError) as e:
        validate.response("StartTransaction", {"idTagInfo": {"status": "Accepted"}})
    assert e.value.code == router.OCCURENCE_CONSTRAINT_VIOLATION


def test_payload_must_be_an_object():
    for bad in (None, [], "{}", 3):
        assert refused("ClearCache", bad)[0] == router.FORMATION_VIOLATION


def test_schema_override_and_vendor_actions(clean_router):
    # router.on(action, schema=...) replaces the built-in spec.
    router.on("DataTransfer", schema="vendorId!:s255,messageId:s50,data:s8")(lambda cp, p: {})
    assert refused("DataTransfer", {"vendorId": "v", "data": "123456789"})[0] == (
        router.PROPERTY_CONSTRAINT_VIOLATION
    )
    # A vendor action without any spec: only the object check.
    validate.request("VendorThing", {"anything": [1, 2]})
    assert refused("VendorThing", [1])[0] == router.FORMATION_VIOLATION


def test_unspecified_response_action_accepts_any_object():
    validate.response("SomethingElse", {"x": 1})
    with pytest.raises(OCPPError):
        validate.response("SomethingElse", "x")


MP_CODE = r"""
import json
from firmware.ocpp import validate, router
from firmware.ocpp.router import OCPPError
cases = [
    ("UnlockConnector", {"connectorId": 1}),
    ("UnlockConnector", {"connectorId": 1.0}),
    ("UnlockConnector", {"connectorId": True}),
    ("UnlockConnector", {}),
    ("Reset", {"type": "Medium"}),
    ("Reset", {"type": "Soft", "x": 1}),
    ("RemoteStartTransaction", {"idTag": "\u00e9" * 20}),
    ("RemoteStartTransaction", {"idTag": "x" * 21}),
    ("SetChargingProfile", PROFILE),
    ("ClearCache", []),
]
out = []
for action, payload in cases:
    try:
        validate.request(action, payload)
        out.append("ok")
    except OCPPError as e:
        out.append(e.code + " " + e.description)
print(json.dumps(out))
"""


def test_same_verdicts_on_micropython(micropython):
    code = "PROFILE = %s\n%s" % (json.dumps(PROFILE), MP_CODE)
    r = micropython(code, heap="256k")
    assert r.returncode == 0, r.stderr + r.stdout
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == [
        "ok",
        "TypeConstraintViolation connectorId: expected integer",
        "TypeConstraintViolation connectorId: expected integer",
        "OccurenceConstraintViolation missing connectorId",
        "PropertyConstraintViolation type: not an allowed value",
        "FormationViolation unknown property x",
        "ok",
        "PropertyConstraintViolation idTag: longer than 20",
        "ok",
        "FormationViolation payload must be a JSON object",
    ]
