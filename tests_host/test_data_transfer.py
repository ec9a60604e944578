"""DataTransfer (vendor "OpenWallbox") through the real RPC path: GetStatus returns the live
charger keys, SetCurrent sets `amp` as the local API would (persisted, range-checked);
UnknownVendorId / UnknownMessageId otherwise."""

import json

import pytest
from test_status_notification import CP, rpc_call, run


def dt(cp, **payload):
    return run(rpc_call(cp, "DataTransfer", payload))


def test_get_status_returns_the_live_charger_keys(tmp_path):
    cp = CP(tmp_path)
    cp.sim(cp="C")
    cp.txn.start()
    cp.advance(3000)
    r = dt(cp, vendorId="OpenWallbox", messageId="GetStatus")
    assert r["status"] == "Accepted"
    s = json.loads(r["data"])
    assert s["car"] == 2 and s["alw"] is True and s["amp"] == 16 and s["err"] == 0
    assert s["ocs"] == ["Available", "Charging"]
    assert len(s["nrg"]) == 16 and s["fwv"] == "0.1.0"


def test_get_status_with_a_filter(tmp_path):
    cp = CP(tmp_path)
    r = dt(cp, vendorId="OpenWallbox", messageId="GetStatus", data="car,amp,nope")
    assert json.loads(r["data"]) == {"car": 1, "amp": 16}


def test_set_current_sets_amp_persisted(tmp_path):
    cp = CP(tmp_path)
    assert dt(cp, vendorId="OpenWallbox", messageId="SetCurrent", data="10") == {
        "status": "Accepted"}
    assert cp.config.get("amp") == 10
    cp.config.flush(force=True)  # on flash at a proper shutdown or 5 minutes later
    assert CP(tmp_path).config.get("amp") == 10
    cp.sim(cp="C")
    cp.txn.start()
    cp.advance(3000)
    assert cp.charger.acu == 10


@pytest.mark.parametrize("data", ["3", "99", "\"ten\"", "10.5", "", "{"])
def test_set_current_rejects_bad_values_and_changes_nothing(tmp_path, data):
    cp = CP(tmp_path)
    r = dt(cp, vendorId="OpenWallbox", messageId="SetCurrent", data=data)
    assert r["status"] == "Rejected" and "amp" in json.loads(r["data"])
    assert cp.config.get("amp") == 16


def test_unknown_vendor_and_message(tmp_path):
    cp = CP(tmp_path)
    assert dt(cp, vendorId="Acme", messageId="GetStatus") == {"status": "UnknownVendorId"}
    assert dt(cp, vendorId="OpenWallbox", messageId="Nope") == {"status": "UnknownMessageId"}
    assert dt(cp, vendorId="OpenWallbox") == {"status": "UnknownMessageId"}


# ---- issue 14 item 4: any malformed, huge or overflowing number is Rejected, never a crash

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_NUMBERISH = st.one_of(
    st.text(alphabet="0123456789eE+-.[]{}\" infNaIty_", max_size=40),
    st.floats().map(repr),
    st.integers().map(str),
    st.integers(-10**400, 10**400).map(lambda n: "%de%d" % (n % 100, n % 1000)),
    st.text(max_size=30),
    st.builds(lambda n, c: c * n, st.integers(1, 6000), st.sampled_from("[{\"-0 ")),
)


@settings(max_examples=300, deadline=None)
@given(_NUMBERISH)
@example("1e400")
@example("-1e400")
@example("[" * 5000)
@example("[" * 5000 + "]" * 5000)
@example("NaN")
@example("Infinity")
@example("1e308")
@example("16.000000000000001")
@example("10" * 2000)
@example("1_0")
@example("0x10")
@example("\u0661\u0660")
def test_set_current_answers_every_data_without_an_error(tmp_path_factory, data):
    cp = CP(tmp_path_factory.mktemp("dt"))
    r = dt(cp, vendorId="OpenWallbox", messageId="SetCurrent", data=data)
    try:
        v = json.loads(data)
    except (ValueError, RecursionError):
        v = None
    ok = (type(v) in (int, float) and v == v and abs(v) != float("inf") and v == int(v)
          and 6 <= v <= 32 and len(data) <= 32)  # amp: 6..32 (go-e), the offer stays <= ama
    assert r["status"] == ("Accepted" if ok else "Rejected"), data
    if ok:
        assert cp.config.get("amp") == int(v)
    else:
        assert "amp" in json.loads(r["data"]) and cp.config.get("amp") == 16


def test_set_current_huge_inputs_are_rejected_on_micropython(micropython):
    code = (
        "from firmware.ops import data_transfer as d\n"
        "class C:\n"
        "    def update(self, ch, o):\n"
        "        return {}\n"
        "class CP:\n"
        "    config = C()\n"
        "for s in ('1e400', '[' * 5000, '-1e400', 'nan', '1' * 400, '10', '1e1'):\n"
        "    print(d.set_current(CP(), s)[0])\n"
    )
    r = micropython(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Rejected"] * 5 + ["Accepted"] * 2


def test_only_a_string_the_websocket_cut_is_too_long_never_one_the_peer_sent(tmp_path):
    """lib/ws.py replaces a string over 6 KiB by ws.CUT and tells the RPC how many it cut;
    the same characters sent by the peer in a frame kept whole are plain data."""
    import ws
    from firmware.ocpp.rpc import RPC

    async def call(cut):
        out = []

        async def send(text):
            out.append(text)

        payload = {"vendorId": "OpenWallbox", "messageId": "SetCurrent", "data": ws.CUT}
        await RPC(send, CP(tmp_path)).on_frame(
            json.dumps([2, "m1", "DataTransfer", payload]), cut=cut)
        return json.loads(out[-1])[2]

    assert run(call(1)) == {"status": "Rejected", "data": json.dumps({"data": "too long"})}
    sent = run(call(0))
    assert sent["status"] == "Rejected" and "amp" in json.loads(sent["data"])
