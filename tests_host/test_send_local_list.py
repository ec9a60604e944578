"""SendLocalList through the real RPC path (request and answer schema-checked): Full and
Differential updates, VersionMismatch, NotSupported while disabled, the per-request and total
limits, unique idTags, persistence on flash, and the one list shared with the authorization.
"""

from test_status_notification import CP, rpc_call, run

from firmware.authorization import service as authz
from firmware.authorization.local_list import LocalList

OK = {"status": "Accepted"}


def make(tmp_path, **config):
    return CP(tmp_path, **config)  # with the authorization feature attached


def local(cp):
    """The local list (loaded if it was not, as the messages' handlers do)."""
    return authz.auth(cp).local


def entries(*tags, info=OK):
    return [{"idTag": t, "idTagInfo": info} if info else {"idTag": t} for t in tags]


def send(cp, version, kind, items=None):
    p = {"listVersion": version, "updateType": kind}
    if items is not None:
        p["localAuthorizationList"] = items
    return run(rpc_call(cp, "SendLocalList", p))["status"]


def version(cp):
    return run(rpc_call(cp, "GetLocalListVersion", {}))["listVersion"]


def test_full_then_differential_persisted(tmp_path):
    cp = make(tmp_path)
    assert send(cp, 1, "Full", entries("A", "B")) == "Accepted"
    blocked = {"status": "Blocked", "parentIdTag": "P"}
    changes = entries("C") + entries("B", info=blocked) + entries("A", info=None)
    assert send(cp, 2, "Differential", changes) == "Accepted"
    again = LocalList(cp.data_dir)  # what a reboot finds on flash
    assert again.version() == 2 and len(again) == 2
    assert again.get("A", 0) is None
    assert again.get("B", 0)["status"] == "Blocked" and again.get("C", 0) == OK
    assert send(cp, 5, "Full", entries("D")) == "Accepted"  # replaces everything
    assert len(local(cp)) == 1 and version(cp) == 5


def test_differential_needs_a_higher_version(tmp_path):
    cp = make(tmp_path)
    assert send(cp, 3, "Full", entries("A")) == "Accepted"
    assert send(cp, 3, "Differential", entries("B")) == "VersionMismatch"
    assert send(cp, 2, "Differential", entries("B")) == "VersionMismatch"
    assert local(cp).get("B", 0) is None and version(cp) == 3
    assert send(cp, 4, "Differential") == "Accepted"  # no entries: only the version moves
    assert version(cp) == 4 and len(local(cp)) == 1


def test_not_supported_while_disabled(tmp_path):
    cp = make(tmp_path, LocalAuthListEnabled="false")
    assert send(cp, 1, "Full", entries("A")) == "NotSupported"
    assert len(local(cp)) == 0


def test_request_limit(tmp_path):
    cp = make(tmp_path)
    n = cp.config.get("SendLocalListMaxLength")
    tags = ["T%d" % i for i in range(n + 1)]
    assert send(cp, 1, "Full", entries(*tags)) == "Failed"
    assert len(local(cp)) == 0 and version(cp) == 0
    assert send(cp, 1, "Full", entries(*tags[:n])) == "Accepted"
    assert len(local(cp)) == n


def test_total_limit_over_several_requests(tmp_path):
    cp = make(tmp_path)
    per = cp.config.get("SendLocalListMaxLength")
    total = cp.config.get("LocalAuthListMaxLength")
    v, k = 0, 0
    while k + per <= total:
        v += 1
        tags = ["T%d" % i for i in range(k, k + per)]
        assert send(cp, v, "Differential", entries(*tags)) == "Accepted"
        k += per
    more = ["T%d" % i for i in range(k, total + 1)]  # one idTag too many in the end
    assert send(cp, v + 1, "Differential", entries(*more)) == "Failed"
    assert len(local(cp)) == k and version(cp) == v
    assert len(LocalList(cp.data_dir)) == k


def test_duplicate_idtags_and_negative_version_fail(tmp_path):
    cp = make(tmp_path)
    assert send(cp, 1, "Full", entries("A", "A")) == "Failed"
    assert send(cp, -1, "Full", entries("A")) == "Failed"
    assert len(local(cp)) == 0


def test_emptied_list_reports_version_0(tmp_path):
    cp = make(tmp_path)
    assert send(cp, 7, "Full", entries("A")) == "Accepted"
    assert send(cp, 8, "Differential", entries("A", info=None)) == "Accepted"
    assert version(cp) == 0 and LocalList(cp.data_dir).version() == 0
    assert send(cp, 1, "Differential", entries("B")) == "Accepted"  # against the 0 we said
    assert send(cp, 9, "Full", []) == "Accepted" and version(cp) == 0


def test_one_list_shared_with_the_authorization(tmp_path):
    cp = make(tmp_path)
    assert authz.attach(cp) == []  # attached again (a second boot of the feature)
    assert send(cp, 1, "Full", entries("CARD9")) == "Accepted"
    assert authz.auth(cp).known("CARD9") == OK


# ---- issue 14 item 5: version 0 means "no list"; a list with entries never reports it

def test_full_list_with_version_0_and_entries_fails(tmp_path):
    cp = make(tmp_path)
    assert send(cp, 3, "Full", entries("A")) == "Accepted"
    assert send(cp, 0, "Full", entries("B")) == "Failed"
    assert version(cp) == 3 and local(cp).get("B", 0) is None
    assert send(cp, 0, "Full", []) == "Accepted"  # version 0 for an empty list is right
    assert version(cp) == 0 and len(local(cp)) == 0


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ENTRY = st.tuples(st.sampled_from("ABC"), st.booleans())
_REQ = st.tuples(st.sampled_from(("Full", "Differential")), st.integers(-1, 4),
                 st.one_of(st.none(), st.lists(_ENTRY, max_size=3, unique_by=lambda e: e[0])))


@settings(max_examples=60, deadline=None)
@given(st.lists(_REQ, max_size=6))
def test_version_is_0_exactly_when_the_list_is_empty(tmp_path_factory, reqs):
    cp = make(tmp_path_factory.mktemp("ll"))
    for kind, ver, items in reqs:
        before = (version(cp), len(local(cp)))
        body = None if items is None else [
            {"idTag": t, "idTagInfo": OK} if keep else {"idTag": t} for t, keep in items]
        status = send(cp, ver, kind, body)
        n = len(local(cp))
        assert (version(cp) == 0) == (n == 0), (kind, ver, items, status)
        if status == "Accepted" and n:
            assert version(cp) == ver
        if status != "Accepted":
            assert (version(cp), len(local(cp))) == before
        assert LocalList(cp.data_dir).version() == version(cp)  # what a reboot finds


def test_the_list_holds_at_most_local_auth_list_max_length(tmp_path):
    """LocalAuthListMaxLength (64, read-only) is what the list holds: built up in requests of
    SendLocalListMaxLength (32), one more idTag fails and changes nothing."""
    cp = make(tmp_path)
    assert cp.config.get("LocalAuthListMaxLength") == 64
    assert send(cp, 1, "Full", entries(*["A%d" % i for i in range(32)])) == "Accepted"
    assert send(cp, 2, "Differential", entries(*["B%d" % i for i in range(32)])) == "Accepted"
    assert send(cp, 3, "Differential", entries("C")) == "Failed"
    assert send(cp, 3, "Differential", entries("C") + entries("A0", info=None)) == "Accepted"
    assert len(LocalList(cp.data_dir)) == 64 and version(cp) == 3
