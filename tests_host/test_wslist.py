"""A long array of a spooled frame read one element at a time (lib/wslist.py): SendLocalList's
32 cards never whole on the heap (issue 9: 6.4 KiB parsed at once, the peak that bound the
32-bit frozen heap once the certificates' names stopped growing it).

What the reader makes of a frame is exactly what json.loads makes of it (the array's elements
in order, the rest of the frame as it was), for frames of every shape; a frame json.loads
refuses is refused (ValueError: FormationViolation at the RPC), never taken. Then SendLocalList
end to end through the websocket reader, the RPC, the validation and the list on flash."""

import asyncio
import json
import os

from conftest import MICROPYPATH, check_ocpp, mp_run
from hypothesis import given, settings
from hypothesis import strategies as st
from test_status_notification import CP
from test_ws_compacted import Pieces

import ws
import wslist
from firmware.authorization import service as authz
from firmware.ocpp.rpc import RPC

KEY = "localAuthorizationList"

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | _text,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_text, kids, max_size=3),
    max_leaves=8,
)


def parse(path, size):
    """The frame in `path` as rpc reads a spooled one: the array at KEY left on flash."""
    span = wslist.find(path, size, KEY.encode())
    if span is None:
        with open(path, "rb") as f:
            return json.loads(f.read()), None
    s = wslist.Skip(path, size, span)
    msg = json.load(s)
    s.close()
    assert msg[3][KEY] == []
    far = wslist.Far(path, span)
    return msg, far


def frame_file(tmp_path, data):
    p = tmp_path / "frame.tmp"
    p.write_bytes(data)
    return str(p), len(data)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(_json, max_size=6), before=st.dictionaries(_text, _json, max_size=2),
       after=st.dictionaries(_text, _json, max_size=2), indent=st.sampled_from([None, 0, 2]),
       ascii_=st.booleans())
def test_the_array_read_from_flash_is_what_json_makes_of_the_frame(
        tmp_path_factory, items, before, after, indent, ascii_):
    payload = dict(before)
    payload.pop(KEY, None)
    payload[KEY] = items
    for k, v in after.items():
        if k != KEY:
            payload[k] = v
    data = json.dumps([2, "m-1", "SendLocalList", payload], indent=indent,
                      ensure_ascii=ascii_).encode()
    path, size = frame_file(tmp_path_factory.mktemp("f"), data)
    msg, far = parse(path, size)
    assert far is not None and len(far) == len(items)
    assert list(far) == items and list(far) == items  # read again: the same
    msg[3][KEY] = items
    assert msg == json.loads(data)


def test_an_array_elsewhere_or_twice_is_left_to_json(tmp_path):
    # nested deeper, a value (not a key) with that text, a key written twice (json takes
    # the last one): no span, the frame is parsed whole
    for payload in ({"x": {KEY: [1]}}, {"x": KEY, "y": [1]}):
        data = json.dumps([2, "m", "SendLocalList", payload]).encode()
        assert wslist.find(*frame_file(tmp_path, data), KEY.encode()) is None
    twice = b'[2,"m","SendLocalList",{"%s":[1],"%s":[2]}]' % (KEY.encode(), KEY.encode())
    assert wslist.find(*frame_file(tmp_path, twice), KEY.encode()) is None
    escaped = b'[2,"m","SendLocalList",{"localAuthorization\\u004cist":[1]}]'
    assert wslist.find(*frame_file(tmp_path, escaped), KEY.encode()) is None


_BAD = ["[1,]", "[,1]", "[1,,2]", "[1 2]", "[{]}", "[1}", "[[1]", '["a]', "[{\"a\" 1}]",
        "[tru]", "[01]", '["\\q"]', '["\x01"]', "[1", "[", "[-]", "[1.]", "[{,}]"]


def test_every_malformed_array_is_refused_as_json_would(tmp_path):
    for bad in _BAD:
        data = ('[2,"m","SendLocalList",{"listVersion":1,"%s":%s,"updateType":"Full"}]'
                % (KEY, bad)).encode()
        try:
            json.loads(data)
        except ValueError:
            pass
        else:
            raise AssertionError("json takes " + bad)
        path, size = frame_file(tmp_path, data)
        try:
            parse(path, size)
        except ValueError:
            continue
        raise AssertionError("taken: " + bad)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(_json, min_size=1, max_size=4), at=st.integers(0, 10**6),
       byte=st.sampled_from(b',[]{}:" \\1a'), how=st.sampled_from(["insert", "delete",
                                                                   "replace"]))
def test_a_frame_damaged_anywhere_is_refused_exactly_when_json_refuses_it(
        tmp_path_factory, items, at, byte, how):
    data = bytearray(json.dumps([2, "m", "SendLocalList", {KEY: items, "v": 1}]).encode())
    i = at % len(data)
    if how == "insert":
        data[i:i] = bytes([byte])
    elif how == "delete":
        del data[i]
    else:
        data[i] = byte
    data = bytes(data)
    try:
        want = json.loads(data)
    except ValueError:
        want = ValueError
    path, size = frame_file(tmp_path_factory.mktemp("d"), data)
    try:
        msg, far = parse(path, size)
    except ValueError:
        got = ValueError
    else:
        if far is not None:
            msg[3][KEY] = list(far)
        got = msg
    assert got == want


# ---- SendLocalList end to end: websocket reader (spooled), RPC, validation, the list


def _cards(n, long_tag=None, dup=False, bad=None):
    out = []
    for i in range(n):
        tag = "CARD%016d" % i
        out.append({"idTag": tag, "idTagInfo": {"status": "Accepted", "parentIdTag": "P1",
                                                "expiryDate": "2027-01-01T00:00:00Z"}})
    if long_tag is not None:
        out[long_tag]["idTag"] = "X" * 21
    if dup:
        out[-1]["idTag"] = out[0]["idTag"]
    return out


def _send_spooled(cp, tmp_path, payload, raw=None):
    """SendLocalList as a long frame arrives: read in pieces, kept in the spool file."""
    if raw is None:
        check_ocpp("SendLocalList", payload)
        raw = json.dumps([2, "sl-1", "SendLocalList", payload]).encode()
    sock = ws.WebSocket(Pieces(raw, [256]), None, 1 << 20)
    sock.spool = str(tmp_path / "frame.tmp")  # where the session puts it: the data dir
    msg = asyncio.run(sock._compacted(len(raw), 6144))
    sent = []

    async def send(text):
        sent.append(json.loads(text))

    asyncio.run(RPC(send, cp).on_frame([msg], sock.cut))
    assert not os.path.exists(sock.spool)  # removed once answered
    return sent


def test_32_cards_are_read_from_flash_one_at_a_time_and_installed(tmp_path, monkeypatch):
    from firmware.ops import send_local_list as op

    cp = CP(tmp_path)
    seen = []
    real = op.update

    def spy(cp_, payload):
        seen.append(type(payload[KEY]).__name__)
        return real(cp_, payload)

    monkeypatch.setattr(op, "update", spy)
    cards = _cards(32)
    sent = _send_spooled(cp, tmp_path, {"listVersion": 7, "updateType": "Full",
                                        KEY: cards})
    assert sent == [[3, "sl-1", {"status": "Accepted"}]]
    assert seen == ["Far"]  # the handler never had the list as a list
    ll = authz.auth(cp).local
    assert ll.version() == 7 and len(ll) == 32
    got = ll.get(cards[31]["idTag"], 0)
    assert got["status"] == "Accepted" and got["parentIdTag"] == "P1"


def test_a_spooled_list_is_checked_card_by_card(tmp_path):
    cp = CP(tmp_path)
    base = {"listVersion": 2, "updateType": "Full"}
    # a field beyond its maxLength: the schema's error, with the card's index
    raw = json.dumps([2, "sl-1", "SendLocalList", dict(base, **{KEY: _cards(32, long_tag=5)})])
    sent = _send_spooled(cp, tmp_path, None, raw=raw.encode())
    assert sent[0][:3] == [4, "sl-1", "PropertyConstraintViolation"]
    assert sent[0][3] == KEY + "/5/idTag: longer than 20"
    # the same idTag twice (§5.15: unique): Failed, nothing installed
    sent = _send_spooled(cp, tmp_path, dict(base, **{KEY: _cards(32, dup=True)}))
    assert sent == [[3, "sl-1", {"status": "Failed"}]]
    assert len(authz.auth(cp).local) == 0
    # one card that is not JSON: the frame is not valid JSON
    raw = json.dumps([2, "sl-1", "SendLocalList", dict(base, **{KEY: _cards(32)})]).encode()
    raw = raw.replace(b'"CARD0000000000000009", "idTagInfo"', b'"CARD0000000000000009" "i"', 1)
    assert b'9" "i"' in raw
    sent = _send_spooled(cp, tmp_path, None, raw=raw)
    assert sent[0][0] == 4 and sent[0][2] == "FormationViolation", sent
    assert len(authz.auth(cp).local) == 0


def test_the_array_is_read_from_flash_on_micropython(tmp_path):
    """The same reader on the VM (its bytes, json and file calls as MicroPython has them)."""
    cards = _cards(32)
    payload = {"listVersion": 7, KEY: cards, "updateType": "Full"}
    data = json.dumps([2, "sl-1", "SendLocalList", payload], ensure_ascii=False)
    path = str(tmp_path / "frame.tmp")
    with open(path, "w") as f:
        f.write(data)
    code = """
import json, wslist
path = %r
size = %d
span = wslist.find(path, size, b"localAuthorizationList")
s = wslist.Skip(path, size, span)
msg = json.load(s)
s.close()
far = wslist.Far(path, span)
print(len(far), msg[3], list(far) == json.loads(open(path).read())[3]["localAuthorizationList"])
""" % (path, len(data.encode()))
    r = mp_run(code, env={"MICROPYPATH": ".frozen" + os.pathsep + MICROPYPATH})
    got = r.stdout.strip().split(" ", 1)
    assert got[0] == "32", r.stdout + r.stderr
    assert got[1].endswith(" True") and "'listVersion': 7" in got[1], r.stdout
