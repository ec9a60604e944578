"""Light payload validation on the device, driven by the compact specs of specs.py.

Checks required keys, JSON types (integer vs number, bool apart from int), enums, maxLength,
multipleOf 0.1, nested objects and arrays, and unknown properties. Not checked: date-time
format (strings only; handlers parse their timestamps anyway).

Error codes (OCPP-J 1.6 §4.2.3, Table 7):
- payload not a JSON object: FormationViolation ("not conform the PDU structure"; the
  Type/Property/Occurence codes describe fields of a well-formed payload);
- unknown property (additionalProperties: false): FormationViolation. The `ocpp` package
  raises FormatViolation here, the OCPP 2.0 name of the same code; OCPP-J 1.6 errata §5.2
  keeps the 1.6 spelling FormationViolation on the wire;
- required field missing: OccurenceConstraintViolation;
- wrong JSON type (null included): TypeConstraintViolation;
- enum, maxLength or multipleOf violated: PropertyConstraintViolation.
"""

from compat import lend
from firmware.ocpp import router, specs
from firmware.ocpp.router import (
    FORMATION_VIOLATION,
    OCCURENCE_CONSTRAINT_VIOLATION,
    PROPERTY_CONSTRAINT_VIOLATION,
    TYPE_CONSTRAINT_VIOLATION,
    OCPPError,
)

# Parsed tree nodes are tuples (kind, arg):
#   ("{", ((name, required, node), ...))  object    ("[", node)  array
#   ("<", (value, ...)) enum    ("s", maxlen or 0) string    ("t"|"i"|"n"|"d"|"b", 0)


def _parse(s, i):
    """Parse one type at s[i]; returns (node, next index)."""
    c = s[i]
    if c == "{":
        fields, i = _fields(s, i + 1)
        return ("{", fields), i + 1  # skip "}"
    if c == "[":
        item, i = _parse(s, i + 1)
        return ("[", item), i + 1  # skip "]"
    if c == "<":
        j = s.index(">", i)
        return ("<", tuple(s[i + 1 : j].split("|"))), j + 1
    if c == "@":
        return _parse(specs.get(specs.DEFS, s[i + 1]), 0)[0], i + 2
    i += 1
    if c == "s":
        j = i
        while j < len(s) and "0" <= s[j] <= "9":
            j += 1
        return ("s", int(s[i:j]) if j > i else 0), j
    return (c, 0), i


def _fields(s, i):
    """Parse `name[!]:type,...` up to "}" or the end; returns (fields tuple, index)."""
    out = []
    n = len(s)
    while i < n and s[i] != "}":
        j = s.index(":", i)
        req = s[j - 1] == "!"
        name = s[i : j - 1] if req else s[i:j]
        node, i = _parse(s, j + 1)
        out.append((name, req, node))
        if i < n and s[i] == ",":
            i += 1
    return tuple(out), i


def tree(spec, top=True):
    """The parsed tree of a spec string. top: the string is a bare field list.

    Not cached: a parse costs well under a millisecond of CPU, a cached charging-profile tree
    about 2 KB of heap for good, and CALLs from the central system are rare."""
    return ("{", _fields(spec, 0)[0]) if top else _parse(spec, 0)[0]


def _fail(code, text):
    # Parents prepend "/name" or "/index" while the error travels up (see check()), so the
    # hot path builds no path strings.
    raise OCPPError(code, ": " + text)


def _check(node, v, strict):
    k = node[0]
    tv = type(v)
    if k == "{":
        if tv is not dict:
            _fail(TYPE_CONSTRAINT_VIOLATION, "expected object")
        fields = node[1]
        for name, req, sub in fields:
            if name in v:
                try:
                    _check(sub, v[name], strict)
                except OCPPError as e:
                    e.description = "/" + name + e.description
                    raise
            elif req:
                _fail(OCCURENCE_CONSTRAINT_VIOLATION, "missing " + name)
        if strict and len(v) > 0:
            for key in v:
                for f in fields:
                    if f[0] == key:
                        break
                else:
                    _fail(FORMATION_VIOLATION, "unknown property " + str(key))
    elif k == "[":
        # A wslist.Far is a long array kept on flash (its elements parsed one at a time).
        if tv is not list and getattr(v, "far", None) != "list":
            _fail(TYPE_CONSTRAINT_VIOLATION, "expected array")
        sub = node[1]
        n = 0
        try:
            for item in v:
                _check(sub, item, strict)
                n += 1
        except OCPPError as e:
            e.description = "/" + str(n) + e.description
            raise
    elif k == "s" or k == "t" or k == "<":
        # A wsfar.Far is a long free-text string kept on flash (len() in characters).
        if tv is not str and not (k == "s" and getattr(v, "far", None) is True):
            _fail(TYPE_CONSTRAINT_VIOLATION, "expected string")
        if k == "s":
            if node[1] and len(v) > node[1]:
                _fail(PROPERTY_CONSTRAINT_VIOLATION, "longer than %d" % node[1])
        elif k == "<" and v not in node[1]:
            _fail(PROPERTY_CONSTRAINT_VIOLATION, "not an allowed value")
    elif k == "i":
        if tv is not int:
            _fail(TYPE_CONSTRAINT_VIOLATION, "expected integer")
    elif k == "b":
        if tv is not bool:
            _fail(TYPE_CONSTRAINT_VIOLATION, "expected boolean")
    else:  # "n", "d"
        if tv is not int and tv is not float:
            _fail(TYPE_CONSTRAINT_VIOLATION, "expected number")
        if k == "d" and tv is float:
            r = v * 10
            # NaN and huge values skip the check (round() would raise on them).
            if -1e15 < r < 1e15 and abs(r - round(r)) > 1e-6 * (abs(r) + 1):
                _fail(PROPERTY_CONSTRAINT_VIOLATION, "not a multiple of 0.1")


def check(spec, payload, strict=True):
    """Raise OCPPError unless payload (a decoded JSON value) matches spec.

    The error description names the field as a path: "csChargingProfiles/chargingSchedule/
    chargingSchedulePeriod/3/limit: not a multiple of 0.1". strict=False ignores unknown
    properties (used for responses we receive)."""
    if type(payload) is not dict:
        raise OCPPError(FORMATION_VIOLATION, "payload must be a JSON object")
    try:
        _check(tree(spec), payload, strict)
    except OCPPError as e:
        d = e.description
        e.description = d[1:] if d[0] == "/" else d[2:]
        raise


def request(action, payload):
    """Validate an incoming CALL payload (router.SCHEMAS overrides request_specs.REQUEST,
    lent for the look-up (compat.lend): the CALL's handler, a certificate's check
    perhaps, has the room). An action with no spec at all (a vendor extension) gets the
    JSON-object check only."""
    spec = router.SCHEMAS.get(action)
    if spec is None:
        # short of memory, tried again once router.shed() made room (as the handler's import)
        rs = router.roomy(lend, "firmware.ocpp.request_specs")
        spec = specs.get(rs.REQUEST, action)
        if spec is not None and "@P" in spec:  # a charging profile
            spec = spec.replace("@P", rs.P)
        rs = None
    if spec is None:
        check("", payload, False)
    else:
        check(spec, payload)


def response(action, payload):
    """Validate a CALLRESULT payload for our request `action` (lenient on extra keys)."""
    check(specs.get(specs.RESPONSE, action, ""), payload, False)
