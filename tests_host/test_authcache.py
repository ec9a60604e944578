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


def test_flush_keeps_the_eviction_order_for_the_next_cache(tmp_path):
    """The uses since the last write live in RAM; flush() (the cache is let go: the
    authorization is loaded only while used) writes them, so the cache read again evicts
    as the one let go would have."""
    c = AuthCache(str(tmp_path), max_entries=3)
    c.put("old", {"status": "Accepted"}, T0)
    c.put("mid", {"status": "Accepted"}, T0)
    c.put("new", {"status": "Accepted"}, T0)
    w = c.writes
    c.get("old", T0)  # now "mid" is the least recently used
    c.flush()
    assert c.writes == w + 1 and len(c) == 3
    c.flush()  # nothing new: no write
    assert c.writes == w + 1
    c = AuthCache(str(tmp_path), max_entries=3)
    c.put("more", {"status": "Accepted"}, T0)
    assert c.get("mid", T0) is None and c.get("old", T0) and c.get("new", T0)


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


BAD_TABLES = (
    '{"v": 2}\n["A", "Accepted", null, null',  # torn line
    '{"v": 2',  # torn header
    '[1]\n',  # header not an object
    '{"v": 2}\n["A", "Accepted", null, null, 1]\n5\n',  # a line not an entry
    '{"v": 2}\n["A", "Accepted", null, null]\n',  # a field short
    '{"v": 2}\n[5, "Accepted", null, null, 1]\n',  # idTag not a string
    '{"v": 2}\n["A", 7, null, null, 1]\n',  # status not a string
    '{"v": 2}\n["A", "Accepted", null, null, "x"]\n',  # use not a number
)


def test_corrupt_cache_file_means_an_empty_cache(tmp_path, capsys):
    for bad in BAD_TABLES:
        (tmp_path / "authcache.jsonl").write_text(bad)
        c = AuthCache(str(tmp_path))
        assert len(c) == 0 and c.get("A", T0) is None, bad
        assert "unreadable" in capsys.readouterr().out
        c.put("B", {"status": "Accepted"})  # starts again: nothing of the bad file kept
        again = AuthCache(str(tmp_path))
        assert len(again) == 1 and again.get("B", T0) == {"status": "Accepted"}, bad


def test_cache_file_gone_bad_since_boot_starts_again_with_the_new_entry(tmp_path):
    c = AuthCache(str(tmp_path))
    c.put("A", {"status": "Accepted"})
    (tmp_path / "authcache.jsonl").write_text('{"v": 2}\n["A", "Acc')
    c.put("B", {"status": "Accepted"})
    again = AuthCache(str(tmp_path))
    assert len(again) == 1 and again.get("B", T0) and again.get("A", T0) is None


def test_corrupt_local_list_means_no_list(tmp_path, capsys):
    for bad in [b.replace(", 1]", "]") for b in BAD_TABLES] + ['{"v": 2, "ver": "x"}\n']:
        (tmp_path / "locallist.jsonl").write_text(bad)
        ll = LocalList(str(tmp_path))
        assert (ll.version(), len(ll), ll.get("A", T0)) == (0, 0, None), bad
        assert "unreadable" in capsys.readouterr().out
        # A Differential update does not build on it; a Full one replaces it.
        assert ll.update(1, "Full", [{"idTag": "C", "idTagInfo": {"status": "Accepted"}}]) == (
            "Accepted")
        assert LocalList(str(tmp_path)).get("C", T0) == {"status": "Accepted"}


def test_tables_of_format_1_are_rewritten_as_lines_once(tmp_path, capsys):
    old_cache = {"v": 1, "e": {"A": ["Accepted", LATER, "P", 3], "B": ["Blocked", None, None, 1]}}
    old_list = {"v": 1, "ver": 4, "e": {"L": ["Accepted", None, "P"], "M": ["Invalid", None,
                                                                          None]}}
    (tmp_path / "authcache.json").write_text(json.dumps(old_cache))
    (tmp_path / "locallist.json").write_text(json.dumps(old_list))
    c, ll = AuthCache(str(tmp_path)), LocalList(str(tmp_path))
    assert not (tmp_path / "authcache.json").exists()
    assert not (tmp_path / "locallist.json").exists()
    assert len(c) == 2 and c.get("A", T0) == {"status": "Accepted", "expiryDate": LATER,
                                              "parentIdTag": "P"}
    assert c.get("B", T0) == {"status": "Blocked"}
    assert (ll.version(), len(ll)) == (4, 2)
    assert ll.get("L", T0) == {"status": "Accepted", "parentIdTag": "P"}
    assert ll.get("M", T0) == {"status": "Invalid"}
    # The uses came along: "B" (use 1) is the least recently used one.
    c = AuthCache(str(tmp_path), max_entries=2)
    c.put("C", {"status": "Accepted"}, T0)
    assert c.get("B", T0) is None and c.get("A", T0) and c.get("C", T0)
    # One that cannot be read is dropped (logged); beside a table of lines it only goes.
    (tmp_path / "locallist.json").write_text('{"v": 1, "ver": 4, "e": {"L": 5}}')
    (tmp_path / "authcache.json").write_text(json.dumps(old_cache))
    assert LocalList(str(tmp_path)).version() == 4 and len(AuthCache(str(tmp_path))) == 2
    assert not (tmp_path / "authcache.json").exists()
    assert not (tmp_path / "locallist.json").exists()
    (tmp_path / "locallist.jsonl").unlink()
    (tmp_path / "locallist.json").write_text('{"v": 1, "ver": 4, "e": {"L": 5}}')
    assert LocalList(str(tmp_path)).version() == 0
    assert "unreadable" in capsys.readouterr().out


def test_a_full_flash_keeps_the_old_list_served_and_unchanged(tmp_path, monkeypatch):
    """An old list that cannot be rewritten as lines (a full flash) is served from RAM as
    before, and no update is accepted on top of it until it could be rewritten: else the
    next boot would drop the old file under a list the central system believes extended."""
    import fs

    old_list = {"v": 1, "ver": 4, "e": {"L": ["Accepted", None, None]}}
    (tmp_path / "locallist.json").write_text(json.dumps(old_list))
    real = fs.write_atomic

    def full(path, data):
        raise OSError(28, "ENOSPC")

    monkeypatch.setattr(fs, "write_atomic", full)
    ll = LocalList(str(tmp_path))
    assert (ll.version(), len(ll), ll.get("L", T0)) == (4, 1, {"status": "Accepted"})
    assert (tmp_path / "locallist.json").exists()
    add = [{"idTag": "N", "idTagInfo": {"status": "Accepted"}}]
    assert ll.update(5, "Differential", add) == "Failed"
    assert ll.version() == 4 and ll.get("N", T0) is None
    monkeypatch.setattr(fs, "write_atomic", real)  # room again, in the same boot
    assert ll.update(5, "Differential", add) == "Accepted"
    again = LocalList(str(tmp_path))
    assert (again.version(), len(again)) == (5, 2)
    assert again.get("L", T0) and again.get("N", T0)
    assert not (tmp_path / "locallist.json").exists()
    monkeypatch.setattr(fs, "write_atomic", full)
    assert ll.update(6, "Differential", add) == "Failed"
    assert LocalList(str(tmp_path)).version() == 5


def test_a_replace_cut_short_on_fat_is_recovered(tmp_path):
    """fs.commit on FAT removes the old table before the rename: a power cut in between
    leaves only the complete `.tmp`, which takes its place at the next boot (it was lost for
    good before: the next write overwrote it)."""
    ll = LocalList(str(tmp_path))
    assert ll.update(3, "Full", [{"idTag": "A", "idTagInfo": {"status": "Accepted"}}]) == (
        "Accepted")
    c = AuthCache(str(tmp_path))
    c.put("C", {"status": "Accepted"})
    for name in ("locallist.jsonl", "authcache.jsonl"):
        (tmp_path / name).rename(tmp_path / (name + ".tmp"))
    ll, c = LocalList(str(tmp_path)), AuthCache(str(tmp_path))
    assert (ll.version(), ll.get("A", T0), c.get("C", T0)) == (
        3, {"status": "Accepted"}, {"status": "Accepted"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["authcache.jsonl", "locallist.jsonl"]


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


def test_entries_take_no_heap_on_micropython(tmp_path):
    """A list of 100 cards and a full cache of 64 on the VM: the heap they hold is that of
    one card (it was ~15 KiB for the list alone when its entries lived in a dict)."""
    code = """
import gc, json
from firmware.authorization.cache import AuthCache
from firmware.authorization.local_list import LocalList
d = %r
def held(n):
    ll = LocalList(d)
    r = ll.update(n, "Full", [{"idTag": "CARD%%04d" %% i, "idTagInfo": {
        "status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z", "parentIdTag": "FLEET"}}
        for i in range(n)])
    c = AuthCache(d)
    for i in range(n if n < 64 else 64):
        c.put("TAG%%04d" %% i, {"status": "Accepted", "parentIdTag": "FLEET"})
    c.get("TAG0000", 1700000000)
    gc.collect()
    a = gc.mem_alloc()
    ll = c = None
    gc.collect()
    return r, a - gc.mem_alloc()
one = held(1)
big = held(100)
ll, c = LocalList(d), AuthCache(d)
print(json.dumps([one, big, len(ll), len(c), ll.get("CARD0099", 1700000000),
                  c.get("TAG0063", 1700000000)]))
""" % str(tmp_path)
    r = mp_run(code)
    assert r.returncode == 0, r.stdout + r.stderr
    one, big, n_list, n_cache, card, tag = json.loads(r.stdout.strip().splitlines()[-1])
    assert one[0] == big[0] == "Accepted" and (n_list, n_cache) == (100, 64)
    assert card == {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z",
                    "parentIdTag": "FLEET"}
    assert tag == {"status": "Accepted", "parentIdTag": "FLEET"}
    assert big[1] - one[1] < 256, (one, big)


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
