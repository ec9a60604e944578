"""Short private names (tools/build.py short_names(), rename()): the .mpy build renames the
firmware's private names (_name) to _a, _b, … so that its .mpy files and the names loading
them interns are shorter and fewer. The renaming must change nothing but those names: one
short name for the whole build for a name several modules or any attribute use, the same
few short names again in each module for a module's own names; and keep every name
something outside the renamed sources uses."""

import ast
import os
import sys
import tarfile
import tokenize

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))

import build  # noqa: E402

ROOT = build.ROOT


def _build_sources():
    sources = {}
    table = build.TextTable()
    for src, dst in build.board_files():
        if dst.endswith(".mpy"):
            with open(os.path.join(ROOT, src), encoding="utf-8") as f:
                sources[src] = build.flash_texts(f.read(), table, src)
    others = {}
    for src in ["boot.py", "main.py"] + [s for s, _ in build.host_files()]:
        with open(os.path.join(ROOT, src), encoding="utf-8") as f:
            others[src] = f.read()
    return sources, others


def test_renaming_back_gives_every_module_unchanged():
    # Only names change, line for line, and each module's table is one-to-one with no short
    # name the module has already: renaming back is exact.
    sources, others = _build_sources()
    names = build.short_names(sources, others, build.resident_modules().values())
    assert set(names) == set(sources)
    olds, shorts = set(), set()
    for src, text in sources.items():
        table = names[src]
        back = {new: old for old, new in table.items()}
        assert len(back) == len(table), src
        olds |= set(table)
        shorts |= set(table.values())
        short = build.rename(text, table, src)
        assert short.count("\n") == text.count("\n"), src
        assert build.rename(short, back, src) == text, src
    # A name several modules share, or an attribute, is renamed alike everywhere and no
    # other name anywhere takes its short name: an object's attributes never meet.
    attrs = {n.attr for text in sources.values() for n in ast.walk(ast.parse(text))
             if isinstance(n, ast.Attribute)}
    every = {}
    for table in names.values():
        for old, new in table.items():
            every.setdefault(new, set()).add(old)
    for new, given in every.items():  # given again: to modules' own names only, but one
        common = [o for o in given if o in attrs or sum(o in t for t in names.values()) > 1]
        assert len(common) <= 1, (new, given)
    assert len(olds) > 500 and len(shorts) < 0.6 * len(olds)
    # the shortest (two characters) of the whole build's go to names of the resident
    # modules, loaded at every boot: each is one qstr interned for good
    resident = set()
    for src in build.resident_modules().values():
        if src in sources:
            resident |= {t.string for t in build._tokens(sources[src])
                         if t.type == tokenize.NAME}
    two = {o for new, given in every.items() if len(new) == 2 for o in given
           if o in attrs or sum(o in t for t in names.values()) > 1}
    assert len(two) > 40 and two <= resident


SAMPLE = {
    "a.py": """import _thread

import core
from b import _shared, _sim_only, _sub
from compat import forget as _forget


class _Box:
    def __init__(self, v):
        self._value = v

    def _get(self, _default=None):
        return self._value if self._value is not None else _default


def _look(o):
    return getattr(o, "_dynamic", None), getattr(o, "_pre" + "fix")


def f(o):
    o._dynamic = 1
    o._prefixed = 2
    o._serve = _Box(None)._get(_default=4)
    return (_forget(), _thread.get_ident() > 0, _shared(), _sub.X, core._io_queue, _look(o),
            _sim_only)
""",
    "b.py": """import sys

from . import _sub


def _shared():
    return sys._getframe is not None


_sim_only = 1
""",
    "_sub.py": "X = 3\n",
    "c.py": "def _helper(_x):\n    return _x + 1\n\n\ndef g():\n    return _helper(1)\n",
}
OTHERS = {"hal/sim.py": "x._sim_only = 2\n"}


def test_what_is_renamed_and_what_is_kept(tmp_path, monkeypatch):
    names = build.short_names(SAMPLE, OTHERS, ["a.py"])
    # Kept: what a text names (getattr) or starts; a module's name (import _thread, from .
    # import _sub: the module _sub.py); what a file compiled as it is uses (_sim_only);
    # never bound here (MicroPython's own: core._io_queue; sys._getframe); asyncio's (_serve).
    assert set(names["a.py"]) == {"_Box", "_value", "_get", "_default", "_look", "_shared",
                                  "_forget"}, names
    assert set(names["a.py"].values()) == {"_" + c for c in "abcdefg"}
    a = build.rename(SAMPLE["a.py"], names["a.py"])
    b = build.rename(SAMPLE["b.py"], names["b.py"])
    # a name two modules use is the same in both: b's _shared is the name a imports
    assert names["b.py"] == {"_shared": names["a.py"]["_shared"]}
    assert "from b import %s, _sim_only, _sub" % names["a.py"]["_shared"] in a
    assert "def %s():" % names["a.py"]["_shared"] in b
    # c's own names (a function, an argument: never an attribute) take short names a has
    # already, so loading c interns none (a variable and an attribute never meet)
    assert set(names["c.py"]) == {"_helper", "_x"}
    assert set(names["c.py"].values()) < set(names["a.py"].values())
    c = build.rename(SAMPLE["c.py"], names["c.py"])
    assert [x for x in (SAMPLE["c.py"], c) if exec(x, ns := {}) or ns["g"]() == 2] == \
        [SAMPLE["c.py"], c]
    # the renamed modules run as the source does (CPython)
    results = []
    for i, (ta, tb) in enumerate(((SAMPLE["a.py"], SAMPLE["b.py"]), (a, b))):
        pkg = tmp_path / ("p%d" % i)
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "a.py").write_text(ta.replace("from b ", "from .b ")
                                  .replace("import core", "from . import core")
                                  .replace("from compat ", "from .compat "))
        (pkg / "b.py").write_text(tb)
        (pkg / "_sub.py").write_text(SAMPLE["_sub.py"])
        (pkg / "core.py").write_text("_io_queue = 9\n")
        (pkg / "compat.py").write_text("def forget():\n    return 'forgotten'\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        mod = __import__("p%d.a" % i, None, None, ("f",))

        class Obj:
            _prefix = 5

        o = Obj()
        results.append((mod.f(o), o._serve))
    assert results[0] == results[1] == (("forgotten", True, True, 3, 9, (1, 5), 1), 4)


def test_a_short_name_never_takes_a_name_the_sources_have():
    sources = {"lib/a.py": "_a = 1\n_b = 2\n\n\ndef _long_name():\n    return _a + _b\n"}
    names = build.short_names(sources, {})["lib/a.py"]
    assert names["_long_name"] not in ("_a", "_b")
    assert build.rename(build.rename(sources["lib/a.py"], names),
                        {v: k for k, v in names.items()}) == sources["lib/a.py"]


def test_an_fstring_with_a_private_name_is_refused():
    src = {"lib/a.py": "def _x():\n    return 1\n\n\ny = f'{_x()}'\n"}
    names = build.short_names(src, {})["lib/a.py"]
    with pytest.raises(ValueError, match="f-string"):
        build.rename(src["lib/a.py"], names, "lib/a.py")


def test_the_build_renames_and_maps_the_names_back(tmp_path, monkeypatch):
    build.compile_all(str(tmp_path), "x64")
    with open(tmp_path / build.NAMES_MAP, encoding="utf-8") as f:
        rows = [line.split() for line in f]  # module, short name, name
    assert all(len(r) == 3 for r in rows) and len(rows) > 500
    assert len({(m, new) for m, new, _ in rows}) == len(rows)  # one name each in a module
    short = [new for m, new, old in rows if old == "_keep_accepting"]
    assert [m for m, new, old in rows if old == "_keep_accepting"] == ["httpd"]
    with open(tmp_path / "lib" / "httpd.mpy", "rb") as f:
        mpy = f.read()
    assert b"_keep_accepting" not in mpy and short[0].encode() + b"\x00" in mpy
    assert b"_serve" in mpy  # asyncio's name, kept
    assert build.NAMES_MAP not in build.deploy_files()  # beside the build, not on a board
    # MPY_OPT=0, for debugging, keeps the names (and the lines)
    monkeypatch.setattr(build, "OPT", 0)
    build.compile_all(str(tmp_path / "o0"), "x64")
    with open(tmp_path / "o0" / "lib" / "httpd.mpy", "rb") as f:
        assert b"_keep_accepting" in f.read()
    assert (tmp_path / "o0" / build.NAMES_MAP).read_text() == ""


def test_micropython_private_names_are_asyncios():
    # MICROPYTHON_PRIVATE: every private name of MicroPython's own asyncio (the source the
    # 32-bit build tool ships in ../shared), so that patching it never meets a renamed name.
    tgz = os.path.join(ROOT, "..", "shared", "tools", "micropython32",
                       "micropython-1.28.0-src.tgz")
    if not os.path.exists(tgz):
        pytest.skip("no ../shared/tools/micropython32 here")
    found = set()
    with tarfile.open(tgz) as t:
        for m in t.getmembers():
            if "/extmod/asyncio/" in m.name and m.name.endswith(".py"):
                text = t.extractfile(m).read().decode()
                for tok in build._tokens(text):
                    if tok.type == tokenize.NAME and build._private(tok.string):
                        found.add(tok.string)
    assert found == set(build.MICROPYTHON_PRIVATE)
