"""Authorization cache and local authorization list (firmware/authorization/cache.py,
firmware/authorization/local_list.py): persistence, expiry, bounded size, ClearCache scope,
SendLocalList."""

import json

from conftest import check_ocpp, mp_run

from firmware.authorization.cache import AuthCache
from firmware.authorization.local_list import LocalList
from firmware.transactions.journal import Journal

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
LATER = "2023-11-15T00:00:00Z"


def test_cache_persists_and_honours_expiry(tmp_path):
    c = AuthCache(str(tmp_path))
    c.put("A", {"status": "Accepted", "expiryDate": LATER, "parentIdTag": "P"})
    c.put("B", {"status": "Blocked"})
    c = AuthCache(str(tmp_path))
    info = c.get("A", T0)
    assert info == {"status": "Accepted", "expiryDate": LATER, "parentIdTag": "P"}
    check_ocpp("Authorize", {"idTagInfo": info}, response=True)
    assert c.get("A", T0 + 2 * 3600)["status"] == "Expired"
    assert c.get("B", T0) == {"status": "Blocked"}
    assert c.get("C", T0) is None


def test_cache_is_bounded_and_evicts_invalid_then_least_recently_used(tmp_path):
    c = AuthCache(str(tmp_path), max_entries=3)
    c.put("old", {"status": "Accepted"}, T0)
    c.put("blocked", {"status": "Blocked"}, T0)
    c.put("used", {"status": "Accepted"}, T0)
    c.get("old", T0)  # now "used" is the least recently used valid one
    c.put("new1", {"status": "Accepted"}, T0)
    assert c.get("blocked", T0) is None and len(c) == 3
    c.put("new2", {"status": "Accepted"}, T0)
    assert c.get("used", T0) is None
    assert {t for t in ("old", "new1", "new2") if c.get(t, T0)} == {"old", "new1", "new2"}
    c.put("exp", {"status": "Accepted", "expiryDate": "2023-11-14T00:00:00Z"}, T0)
    c.put("new3", {"status": "Accepted"}, T0)
    assert c.get("exp", T0) is None  # expired entries go before valid ones


def test_lookups_do_not_write_flash(tmp_path):
    c = AuthCache(str(tmp_path))
    c.put("A", {"status": "Accepted"})
    w = c.writes
    for _ in range(10):
        c.get("A", T0)
        c.put("A", {"status": "Accepted"})
    assert c.writes == w


def test_clear_cache_clears_the_cache_and_nothing_else(tmp_path):
    d = str(tmp_path)
    c = AuthCache(d)
    c.put("A", {"status": "Accepted"})
    ll = LocalList(d)
    assert ll.update(1, "Full", [{"idTag": "L", "idTagInfo": {"status": "Accepted"}}]) == (
        "Accepted")
    j = Journal(d)
    j.start(1, "A", 0, T0)
    c.clear()
    assert AuthCache(d).get("A", T0) is None and len(AuthCache(d)) == 0
    assert LocalList(d).get("L", T0) == {"status": "Accepted"} and LocalList(d).version() == 1
    assert len(Journal(d)) == 1 and Journal(d).open_transaction(1) is not None


def test_corrupt_cache_file_means_an_empty_cache(tmp_path):
    (tmp_path / "authcache.json").write_text('{"v": 1, "e": {"A": [')
    c = AuthCache(str(tmp_path))
    assert len(c) == 0
    c.put("A", {"status": "Accepted"})
    assert AuthCache(str(tmp_path)).get("A", T0) == {"status": "Accepted"}
    (tmp_path / "authcache.json").write_text('{"v": 1, "e": {"A": 5}}')
    assert len(AuthCache(str(tmp_path))) == 0


def test_disabled_cache_neither_answers_nor_learns(tmp_path):
    c = AuthCache(str(tmp_path))
    c.put("A", {"status": "Accepted"})
    c.enabled = False
    c.put("B", {"status": "Accepted"})
    assert c.get("A", T0) is None
    c.enabled = True
    assert c.get("A", T0) and c.get("B", T0) is None


def test_send_local_list_full_and_differential(tmp_path):
    d = str(tmp_path)
    ll = LocalList(d)
    assert ll.version() == 0
    full = [{"idTag": "A", "idTagInfo": {"status": "Accepted", "expiryDate": LATER}},
            {"idTag": "B", "idTagInfo": {"status": "Blocked"}}]
    check_ocpp("SendLocalList", {"listVersion": 3, "updateType": "Full",
                                 "localAuthorizationList": full})
    assert ll.update(3, "Full", full) == "Accepted"
    assert ll.update(3, "Differential", []) == "VersionMismatch"
    assert ll.update(2, "Differential", []) == "VersionMismatch"
    diff = [{"idTag": "B"}, {"idTag": "C", "idTagInfo": {"status": "Accepted"}}]
    assert ll.update(4, "Differential", diff) == "Accepted"
    ll = LocalList(d)
    assert ll.version() == 4
    assert ll.get("A", T0)["status"] == "Accepted"
    assert ll.get("A", T0 + 86400)["status"] == "Expired"
    assert ll.get("B", T0) is None and ll.get("C", T0) == {"status": "Accepted"}
    assert ll.update(5, "Full", []) == "Accepted"
    assert len(LocalList(d)) == 0 and LocalList(d).version() == 5


def test_send_local_list_beyond_max_length_fails_and_changes_nothing(tmp_path):
    ll = LocalList(str(tmp_path), max_length=2)
    assert ll.update(1, "Full", [{"idTag": "A", "idTagInfo": {"status": "Accepted"}}]) == (
        "Accepted")
    many = [{"idTag": "X%d" % i, "idTagInfo": {"status": "Accepted"}} for i in range(3)]
    assert ll.update(2, "Differential", many) == "Failed"
    assert ll.update(2, "Full", [{"idTag": 5}]) == "Failed"
    assert LocalList(str(tmp_path)).version() == 1 and ll.get("A", T0)
    ll.enabled = False
    assert ll.update(9, "Full", []) == "NotSupported"


def test_cache_and_list_on_micropython(tmp_path):
    code = """
import json
from firmware.authorization.cache import AuthCache
from firmware.authorization.local_list import LocalList
d = %r
c = AuthCache(d, max_entries=2)
for t in ("A", "B", "C"):
    c.put(t, {"status": "Accepted", "expiryDate": "2023-11-15T00:00:00Z"})
ll = LocalList(d)
r = ll.update(7, "Full", [{"idTag": "L", "idTagInfo": {"status": "Accepted"}}])
c2 = AuthCache(d)
print(json.dumps([len(c2), c2.get("C", 1700000000), c2.get("C", 1800000000)["status"], r,
                  LocalList(d).version()]))
""" % str(tmp_path)
    r = mp_run(code)
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == [2, {"status": "Accepted", "expiryDate": "2023-11-15T00:00:00Z"}, "Expired",
                   "Accepted", 7]
