"""Texts on flash (tools/build.py flash_texts(), lib/compat.py flash_text()): a build from
.mpy files reads the texts a charger only says (log lines, exception messages, error
answers) from lib/texts.bin instead of holding them on the heap. The transformation must
change nothing else, the reader must never fail its caller, and a charger from such a build
must say exactly what the source says."""

import ast
import importlib.util
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))

from conftest import micropython_binary  # noqa: E402

import build  # noqa: E402

ROOT = build.ROOT
IMPORT = "from compat import flash_text as _t;"


def _put_back(said, table):
    """The syntax tree of a flash_texts() output with its texts put back and its import
    taken out: the tree of the source it came from, if nothing else changed."""
    assert said.startswith(IMPORT)
    tree = ast.parse(said[len(IMPORT):])

    class Back(ast.NodeTransformer):
        def visit_Call(self, node):
            self.generic_visit(node)
            if isinstance(node.func, ast.Name) and node.func.id == "_t":
                text = ast.Constant(table.texts[node.args[0].value])
                if len(node.args) == 2:  # _t(k, x): "text" % x
                    return ast.BinOp(text, ast.Mod(), node.args[1])
                assert len(node.args) == 1
                return text
            return node

    return ast.dump(Back().visit(tree))


def test_putting_the_texts_back_gives_every_module_unchanged():
    table = build.TextTable()
    changed = 0
    for src, dst in build.board_files():
        if not dst.endswith(".mpy"):
            continue
        with open(os.path.join(ROOT, src), encoding="utf-8") as f:
            source = f.read()
        said = build.flash_texts(source, table, src)
        if said is source:
            continue
        changed += 1
        assert not src.startswith(build.HEAP_TEXTS), src
        assert said.count("\n") == source.count("\n"), src  # tracebacks keep their lines
        assert _put_back(said, table) == ast.dump(ast.parse(source)), src
    # The modules with the most to say are among them, and each text is in the file once.
    assert changed > 40 and len(table.texts) > 200
    assert len(set(table.texts)) == len(table.texts)
    for src in ("firmware/ocpp/rpc.py", "lib/ws.py", "firmware/transactions/journal.py"):
        with open(os.path.join(ROOT, src), encoding="utf-8") as f:
            assert "_t(" in build.flash_texts(f.read(), build.TextTable(), src), src


def test_the_safety_loop_keeps_its_texts():
    for src, _ in build.board_files():
        if src.startswith(("firmware/evse/", "hal/")) and src.endswith(".py"):
            with open(os.path.join(ROOT, src), encoding="utf-8") as f:
                source = f.read()
            assert build.flash_texts(source, build.TextTable(), src) is source, src


SAMPLE = '''\
import log


def f(n, e, t):
    log.error("tag", "température: %d over the limit" % t)  # a comment
    log.info("tag", "short", "a text said once " + str(n), n)
    x = "a long text kept as it is"
    g("a long text kept as it is, too")
    log.warning("tag", ("one text over "
                        "two lines"), n)
    if n:
        raise ValueError("bad value: %r" % (n,)) from e
    try:
        n()
    except MemoryError:
        log.error("tag", "no heap for that at all")
        raise
    except (OSError, MemoryError):
        log.error("tag", "flash or heap: both stay")
    except OSError:
        raise OSError("é é é é é é é é é é", "and the second argument")
    raise MemoryError("out of memory here")
    log.memory("tag", "memory lines stay on the heap")
    self._fail(1002, reason="a keyword argument's text")
    log.error("tag", "two values: %d and %d" % (
        n, t))
    self.event("StartupOfTheDevice", "firmware.ops.reset")  # values, not texts
    return x
'''

EXPECTED = '''\
from compat import flash_text as _t;import log


def f(n, e, t):
    log.error("tag", _t(0, t))  # a comment
    log.info("tag", "short", _t(1) + str(n), n)
    x = "a long text kept as it is"
    g("a long text kept as it is, too")
    log.warning("tag", (_t(2)
), n)
    if n:
        raise ValueError(_t(3, (n,))) from e
    try:
        n()
    except MemoryError:
        log.error("tag", "no heap for that at all")
        raise
    except (OSError, MemoryError):
        log.error("tag", "flash or heap: both stay")
    except OSError:
        raise OSError(_t(4), _t(5))
    raise MemoryError("out of memory here")
    log.memory("tag", "memory lines stay on the heap")
    self._fail(1002, reason=_t(6))
    log.error("tag", _t(7, (
        n, t)))
    self.event("StartupOfTheDevice", "firmware.ops.reset")  # values, not texts
    return x
'''


def test_which_texts_go_to_flash_and_how():
    table = build.TextTable()
    assert build.flash_texts(SAMPLE, table, "firmware/x.py") == EXPECTED
    assert table.texts == [
        "température: %d over the limit", "a text said once ", "one text over two lines",
        "bad value: %r", "é é é é é é é é é é", "and the second argument",
        "a keyword argument's text", "two values: %d and %d",
    ]
    # A text already in the table keeps its number; other modules share it.
    assert build.flash_texts('log.info("t", "bad value: %r" % 1)\n', table, "lib/y.py") == \
        IMPORT + 'log.info("t", _t(3, 1))\n'
    assert build.flash_texts(SAMPLE, build.TextTable(), "firmware/evse/x.py") is SAMPLE
    nothing = 'log.info("t", "short")\n'
    assert build.flash_texts(nothing, table, "lib/z.py") is nothing


def test_a_text_inside_another_texts_formatting_is_refused():
    with pytest.raises(ValueError, match="inside another"):
        build.flash_texts('log.error("t", "a format %s" % self._fail("a text in it"))\n',
                          build.TextTable(), "lib/q.py")


def test_lines_are_counted_as_the_parser_counts_them():
    # A form feed ends a line for str.splitlines, not for the parser.
    source = 'x = "a\x0cb"\nlog.info("t", "a long text here")\n'
    assert build.flash_texts(source, build.TextTable(), "lib/q.py") == \
        IMPORT + 'x = "a\x0cb"\nlog.info("t", _t(0))\n'


@pytest.mark.parametrize("source", [
    "_t = 1\n", "def f(_t): pass\n", "import x as _t\n", "from x import _t\n",
])
def test_a_module_of_its_own_name_t_is_refused(source):
    with pytest.raises(ValueError, match="_t"):
        build.flash_texts(source + 'log.info("t", "long enough text")\n', build.TextTable(),
                          "lib/q.py")


TEXTS = ["first text here", "", "température %d °C", "x" * 300, "last %r"]


def _lib(tmp_path, stamp=None):
    """tmp_path/lib with texts.bin of TEXTS and compat.py stamped for it (or `stamp`)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    table = build.TextTable()
    for t in TEXTS:
        table.number(t)
    (lib / "texts.bin").write_bytes(table.data())
    with open(os.path.join(ROOT, "lib", "compat.py"), encoding="utf-8") as f:
        source = build.stamp_texts_id(f.read(), stamp or table)
    (lib / "compat.py").write_text(source, encoding="utf-8")
    return lib


def _compat(lib):
    spec = importlib.util.spec_from_file_location("compat_copy", lib / "compat.py")
    compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compat)
    return compat


def test_flash_text_reads_every_text_and_never_fails_its_caller_on_cpython(tmp_path):
    lib = _lib(tmp_path)
    compat = _compat(lib)
    assert [compat.flash_text(k) for k in range(len(TEXTS))] == TEXTS
    assert compat.flash_text(2, 21) == "température 21 °C"
    assert compat.flash_text(4, (None,)) == "last None"
    assert compat.flash_text(4, None) == "last None"  # `"last %r" % None`, as the source
    with pytest.raises(TypeError):  # a wrong format fails as in the source
        compat.flash_text(0, 1)
    (lib / "texts.bin").write_bytes((lib / "texts.bin").read_bytes()[:3])  # torn
    assert compat.flash_text(2, 21) == "(text 2)"
    os.remove(lib / "texts.bin")
    assert compat.flash_text(4, 1) == "(text 4)"


def test_a_texts_file_of_another_build_is_not_read(tmp_path):
    other = build.TextTable()
    other.number("another build's text")
    compat = _compat(_lib(tmp_path, stamp=other))
    assert compat.flash_text(2, 21) == "(text 2)"  # not its text, not formatted
    assert compat.flash_text(4, (1, 2, 3)) == "(text 4)"  # no TypeError either


READER = """
import compat, micropython
print(repr([compat.flash_text(k) for k in range(%d)]))
print(repr(compat.flash_text(2, -5)))
r = None  # a global made under the lock would need the heap itself
micropython.heap_lock()
r = compat.flash_text(1)
micropython.heap_unlock()
print(repr(r))
import os
os.remove("lib/texts.bin")
print(repr(compat.flash_text(4, 1)))
""" % len(TEXTS)


def test_flash_text_on_micropython_also_without_heap(tmp_path):
    lib = _lib(tmp_path)
    subprocess.run(build.mpy_command("x64", str(tmp_path), "lib/compat.mpy", "lib/compat.py",
                                     str(lib / "compat.py")), check=True)
    os.remove(lib / "compat.py")
    (tmp_path / "reader.py").write_text(READER)
    r = subprocess.run([micropython_binary(), "reader.py"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, MICROPYPATH=".frozen:lib"))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert ast.literal_eval(out[0]) == TEXTS
    assert ast.literal_eval(out[1]) == "température -5 °C"
    assert out[2:] == ["'(text)'", "'(text 4)'"]  # no heap at all; no file


def test_a_build_writes_the_file_and_deploys_it(tmp_path):
    total = build.compile_all(str(tmp_path / "board"), "x64")
    data = (tmp_path / "board" / build.FLASH_TEXTS).read_bytes()
    assert len(data) > 4000 and total > 0
    assert build.FLASH_TEXTS in build.deploy_files()
    assert build.FLASH_TEXTS not in build.deploy_files(frozen=True)
    assert not (tmp_path / "board" / ".src").exists()


def _answers(csms, fw, frames, boots):
    """The central system's answers to `frames`, sent one after the other once the charger
    has booted for the boots-th time."""
    csms.wait_for(lambda: csms.csms.boots >= boots, timeout=30)
    fw.wait_accepted()
    out = []
    for text in frames:
        before = len(csms.csms.answers)
        csms.send_raw("CP1", text)
        csms.wait_for(lambda n=before: len(csms.csms.answers) > n, timeout=10)
        out.append(csms.csms.answers[before][1])
    for path in HTTP:
        try:
            out.append(fw.get(path))
        except ValueError:  # not JSON: an answer of httpd itself
            out.append("not JSON")
    return out


# Refused settings and malformed requests: the reasons of their 400s.
HTTP = ["/api/set?amp=99", "/api/set?nope=1", "/api/set?ocppu=%22ftp%3A%2F%2Fx%22",
        "/api/set?amp=%ZZ", "/api/set?ocppe=1"]


def _file_texts(board):
    data = (board / build.FLASH_TEXTS).read_bytes()
    n = (int.from_bytes(data[4:6], "little") - 4) // 2 - 1
    at = [int.from_bytes(data[4 + 2 * k: 6 + 2 * k], "little") for k in range(n + 1)]
    return {data[at[k]: at[k + 1]].decode() for k in range(n)}


def test_a_charger_from_mpy_says_what_the_source_says(tmp_path, csms, start_firmware):
    from e2e import Firmware
    from test_e2e_foundation import MALFORMED

    frames = [m[0] for m in MALFORMED] + [
        json.dumps([2, "r1", "RemoteStopTransaction", {"transactionId": 99}]),
        json.dumps([2, "u1", "UnlockConnector", {"connectorId": 7}]),
        json.dumps([2, "g1", "GetConfiguration", {"key": "HeartbeatInterval"}]),
    ]
    fw = start_firmware(csms.url(), data=tmp_path / "src")
    from_source = _answers(csms, fw, frames, 1)
    fw.stop()
    board = tmp_path / "board"
    build.compile_all(str(board), "x64")
    build.compile_files(build.host_files(), str(board), "x64")
    fw = Firmware(str(tmp_path / "mpy"), csms.url())
    fw.main_py = str(board / "main.py")
    fw.mp_path = "lib"
    fw.cwd = str(board)
    try:
        fw.start()
        from_mpy = _answers(csms, fw, frames, 2)
        origin = fw.firmware_from()
    finally:
        fw.stop()
    assert origin == "lib/firmware/app.mpy"
    assert from_mpy == from_source
    # Their descriptions were read from flash, and they arrived whole.
    texts = _file_texts(board)
    said = [a[3] for a in from_mpy if isinstance(a, list) and a[0] == 4 and a[3] in texts]
    assert len(said) >= 3, from_mpy
    assert all(a[0] == 400 for a in from_mpy[-len(HTTP):]), from_mpy
