"""The compact specs of firmware/ocpp/specs.py and request_specs.py against the official
OCPP 1.6 JSON schemas.

A typo in a spec string (a field name, a required mark, a type, an enum value, a maxLength)
makes the cross-check fail; the property tests show that the device validator accepts what
the official schema accepts and refuses a payload broken in one place with the right code.
"""

import decimal
import json
import os

import jsonschema
import ocpp.v16
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.ocpp import request_specs, router, specs, validate
from firmware.ocpp.router import OCPPError

SCHEMA_DIR = os.path.join(os.path.dirname(ocpp.v16.__file__), "schemas")

# Responses to the charge point's own requests (OCPP 1.6 + Security Whitepaper).
CP_REQUESTS = {
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
    "SecurityEventNotification",
    "SignCertificate",
    "LogStatusNotification",
    "SignedFirmwareStatusNotification",
}

# Schema keywords the compact format represents, or that carry no constraint.
UNDERSTOOD = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "maxLength",
    "format",
    "items",
    "multipleOf",
    "$ref",
    "definitions",
    "$schema",
    "$id",
    "id",
    "title",
    "description",
    "javaType",
}

CASES = ([(a, False) for a in sorted(dict(request_specs.REQUEST))]
         + [(a, True) for a in sorted(dict(specs.RESPONSE))])
CASE_IDS = [a + (".conf" if r else ".req") for a, r in CASES]


def load(action, response):
    name = action + ("Response" if response else "") + ".json"
    with open(os.path.join(SCHEMA_DIR, name)) as f:
        return json.load(f)


def resolve(node, root):
    while "$ref" in node:
        node = root["definitions"][node["$ref"].split("/")[-1]]
    return node


def official_tree(node, root):
    """The schema as a comparable tree, built independently of the device parser."""
    node = resolve(node, root)
    unknown = set(node) - UNDERSTOOD
    assert not unknown, "schema keyword the compact spec cannot express: %s" % unknown
    if node.get("type") == "object":
        assert node.get("additionalProperties") is False
        req = set(node.get("required", ()))
        props = node.get("properties", {})
        assert req <= set(props)
        return ("object", {n: (n in req, official_tree(v, root)) for n, v in props.items()})
    if node.get("type") == "array":
        return ("array", official_tree(node["items"], root))
    if "enum" in node:
        assert node["type"] == "string"
        return ("enum", tuple(sorted(node["enum"])))
    if node["type"] == "string":
        if node.get("format") == "date-time":
            return ("date-time",)
        assert node.get("format") in (None, "uri")  # a uri is not checked on the device
        return ("string", node.get("maxLength"))
    if node["type"] == "number":
        return ("number", node.get("multipleOf"))
    assert "multipleOf" not in node
    return (node["type"],)


def device_tree(node):
    """The device's parsed tree in the same shape as official_tree()."""
    k, arg = node
    if k == "{":
        return ("object", {n: (req, device_tree(sub)) for n, req, sub in arg})
    if k == "[":
        return ("array", device_tree(arg))
    if k == "<":
        return ("enum", tuple(sorted(arg)))
    if k == "s":
        return ("string", arg or None)
    return {
        "t": ("date-time",),
        "i": ("integer",),
        "n": ("number", None),
        "d": ("number", 0.1),
        "b": ("boolean",),
    }[k]


def test_requests_cover_exactly_the_known_actions():
    assert set(dict(request_specs.REQUEST)) == set(router.KNOWN)
    assert len(router.KNOWN) == 26  # 19 of OCPP 1.6 + 7 of the Security Whitepaper


def test_responses_cover_every_request_of_the_charge_point():
    assert set(dict(specs.RESPONSE)) == CP_REQUESTS


@pytest.mark.parametrize("action,response", CASES, ids=CASE_IDS)
def test_spec_matches_official_schema(action, response):
    root = load(action, response)
    spec = dict(specs.RESPONSE if response else request_specs.REQUEST)[action]
    spec = spec.replace("@P", request_specs.P)  # as validate.request() puts it in
    assert device_tree(validate.tree(spec)) == official_tree(root, root)


def test_cross_check_sees_a_typo():
    # The comparison above is only worth something if a one-character slip changes the tree.
    root = load("Reset", False)
    for typo in ("type:<Hard|Soft>", "type!:<Hard|Sotf>", "typ!:<Hard|Soft>", "type!:s"):
        assert device_tree(validate.tree(typo)) != official_tree(root, root)


def test_validation_keeps_no_parsed_trees():
    # Only the spec strings stay in memory; a tree lives while one payload is checked.
    def containers():
        return {k for k, v in vars(validate).items()
                if not k.startswith("__") and isinstance(v, (dict, list, tuple))}

    before = containers()
    validate.request("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": {
            "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1}]}}})
    assert before == containers() == set()


# --- property tests -------------------------------------------------------------------

DATE_TIMES = st.sampled_from(
    ["2026-11-24T10:00:00Z", "2026-01-01T00:00:00.123Z", "2030-06-30T23:59:59+02:00"]
)


def gen(node, root):
    """A hypothesis strategy of instances valid for the official schema node."""
    node = resolve(node, root)
    t = node.get("type")
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if t == "string":
        if node.get("format") == "date-time":
            return DATE_TIMES
        return st.text(max_size=min(node.get("maxLength", 40), 40))
    if t == "integer":
        return st.integers(-(2**31), 2**31 - 1)
    if t == "number":
        if node.get("multipleOf") == 0.1:
            return st.integers(-100000, 100000).map(lambda n: n / 10)
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000)
    if t == "boolean":
        return st.booleans()
    if t == "array":
        return st.lists(gen(node["items"], root), max_size=3)
    props = node.get("properties", {})
    req = set(node.get("required", ()))
    return st.fixed_dictionaries(
        {n: gen(v, root) for n, v in props.items() if n in req},
        optional={n: gen(v, root) for n, v in props.items() if n not in req},
    )


def official_ok(root, payload):
    # Decimal like the ocpp package, so that 0.3 passes multipleOf 0.1.
    schema = json.loads(json.dumps(root), parse_float=decimal.Decimal)
    inst = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
    return jsonschema.Draft4Validator(schema).is_valid(inst)


WRONG_TYPE = {
    "string": 12345,
    "integer": 1.5,
    "number": "1",
    "boolean": 1,
    "object": "x",
    "array": {"a": 1},
}


def mutations(node, root, value, strict, path=()):
    """(path, how, expected code) for every single-rule break of `value`."""
    node = resolve(node, root)
    t = node.get("type")
    if path:
        yield path, ("set", WRONG_TYPE[t]), router.TYPE_CONSTRAINT_VIOLATION
    if "enum" in node:
        yield path, ("set", "NoSuchValue"), router.PROPERTY_CONSTRAINT_VIOLATION
    elif t == "string" and "maxLength" in node:
        yield path, ("set", "x" * (node["maxLength"] + 1)), router.PROPERTY_CONSTRAINT_VIOLATION
    elif t == "number" and node.get("multipleOf") == 0.1:
        yield path, ("set", value + 0.05), router.PROPERTY_CONSTRAINT_VIOLATION
    elif t == "array":
        for i, item in enumerate(value):
            yield from mutations(node["items"], root, item, strict, path + (i,))
    elif t == "object":
        for name in node.get("required", ()):
            yield path, ("drop", name), router.OCCURENCE_CONSTRAINT_VIOLATION
        if strict:
            yield path, ("add", "zzUnknown"), router.FORMATION_VIOLATION
        for name, sub in node.get("properties", {}).items():
            if name in value:
                yield from mutations(sub, root, value[name], strict, path + (name,))


def apply(payload, path, how):
    payload = json.loads(json.dumps(payload))  # deep copy
    kind, arg = how
    if kind == "set":
        parent = payload
        for p in path[:-1]:
            parent = parent[p]
        parent[path[-1]] = arg
        return payload
    target = payload
    for p in path:
        target = target[p]
    if kind == "drop":
        del target[arg]
    else:
        target[arg] = 1
    return payload


def device_check(action, response, payload):
    if response:
        validate.response(action, payload)
    else:
        validate.request(action, payload)


@pytest.mark.parametrize("action,response", CASES, ids=CASE_IDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_valid_payloads_pass_and_one_broken_rule_gives_its_code(action, response, data):
    root = load(action, response)
    payload = data.draw(gen(root, root), label="payload")
    assert official_ok(root, payload)
    device_check(action, response, payload)  # raises on a false refusal

    muts = list(mutations(root, root, payload, strict=not response))
    if not muts:
        return  # an empty payload spec with nothing to break
    path, how, code = data.draw(st.sampled_from(muts), label="mutation")
    broken = apply(payload, path, how)
    assert not official_ok(root, broken), "the mutation must break the official schema"
    with pytest.raises(OCPPError) as e:
        device_check(action, response, broken)
    assert e.value.code == code, (path, how, e.value.description)


@pytest.mark.parametrize("action,response", CASES, ids=CASE_IDS)
def test_non_object_payload_is_a_formation_violation(action, response):
    for bad in ([], "x", 1, None):
        with pytest.raises(OCPPError) as e:
            device_check(action, response, bad)
        assert e.value.code == router.FORMATION_VIOLATION
