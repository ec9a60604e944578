"""The firmware on MicroPython built 32-bit: the ESP32's word size and object model, so the
heap measured here is what a board pays.

    python tools/mp32.py image [OUT]    unix port with the firmware frozen in (manifest_unix.py)
    python tools/mp32.py plain [OUT]    the same port without it (runs 32-bit .mpy files)
    python tools/mp32.py static         heap held by importing each module of the frozen build

The binaries come from `../shared/tools/micropython32/build` (the official unix port v1.28.0,
built with MICROPY_FORCE_32BIT): `../shared` beside this repository, or beside its main
checkout when this is a git worktree; MP32_BUILD names the script elsewhere. Without it,
skip_reason() says why and callers report `skipped`. Builds are cached under build/ and made
again only when the build script or a frozen source file changes. Their .mpy files need
`mpy-cross -march=x86` (mpy v6.3, as sys.implementation._mpy of the binary says).
"""

import ast
import fcntl
import hashlib
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import build  # noqa: E402

MANIFEST = "manifest_unix.py"
FROZEN = os.path.join(ROOT, "build", "mp32-frozen", "micropython")
PLAIN = os.path.join(ROOT, "build", "mp32", "micropython")
MARCH = "x86"
_SCRIPT = os.path.join("shared", "tools", "micropython32", "build")


def _repo_parents():
    """The folders `../shared` may be in: beside this checkout, and beside the main checkout
    when this one is a git worktree (.git is then a file naming .../.git/worktrees/<name>)."""
    out = [os.path.dirname(ROOT)]
    dotgit = os.path.join(ROOT, ".git")
    if os.path.isfile(dotgit):
        with open(dotgit) as f:
            line = f.read().strip()
        if line.startswith("gitdir:"):
            gitdir = os.path.normpath(os.path.join(ROOT, line[7:].strip()))
            main = os.path.dirname(os.path.dirname(os.path.dirname(gitdir)))
            out.append(os.path.dirname(main))
    return out


def build_script():
    """Path of the 32-bit build script, or None where it is absent."""
    env = os.environ.get("MP32_BUILD")
    if env is not None:
        return env if env and os.path.isfile(env) else None
    for parent in _repo_parents():
        path = os.path.join(parent, _SCRIPT)
        if os.path.isfile(path):
            return path
    return None


def skip_reason():
    if build_script() is None:
        return "no 32-bit MicroPython build script (../shared/tools/micropython32/build)"
    return None


def _digest(script, manifest):
    """What a build depends on: the script, its source archive, the manifest and every file
    the manifest freezes (paths and contents)."""
    h = hashlib.sha256()
    tgz = os.path.join(os.path.dirname(script), "micropython-1.28.0-src.tgz")
    for path in (script, tgz):
        st = os.stat(path) if os.path.exists(path) else None
        h.update(repr((path, st and st.st_size, st and st.st_mtime_ns)).encode())
    if manifest:
        files = build.manifest_files(manifest)
        for frozen in sorted(files):
            h.update(frozen.encode() + b"\0")
            for name in (manifest, files[frozen]):
                with open(os.path.join(ROOT, name), "rb") as f:
                    h.update(f.read() + b"\0")
    return h.hexdigest()


def ensure(out, manifest=None):
    """Build (or reuse) the 32-bit binary at `out`, with `manifest` frozen in; returns `out`.
    Raises RuntimeError when the script is absent or the build fails."""
    script = build_script()
    if script is None:
        raise RuntimeError(skip_reason())
    os.makedirs(os.path.dirname(out), exist_ok=True)
    stamp = out + ".digest"
    # One build at a time from this checkout (parallel tests, a bench running beside them).
    with open(os.path.join(os.path.dirname(out), ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = _digest(script, manifest)
        if os.path.exists(out) and os.path.exists(stamp):
            with open(stamp) as f:
                if f.read() == digest:
                    return out
        if manifest:
            _stale_frozen(manifest)
        cmd = [script, out] + ([os.path.join(ROOT, manifest)] if manifest else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if r.returncode != 0 or not os.path.exists(out):
            raise RuntimeError("32-bit build failed:\n" + r.stdout + r.stderr)
        with open(stamp, "w") as f:
            f.write(digest)
    return out


def frozen_content(manifest):
    """Where the build script's incremental build keeps the frozen modules of `manifest`:
    $MP32_CACHE (default ~/.cache/micropython32)/micropython/ports/unix/build-manifest-<first
    12 hex digits of the MD5 of the manifest's real path>/frozen_content.c."""
    cache = os.environ.get("MP32_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                         "micropython32")
    key = hashlib.md5(os.path.realpath(os.path.join(ROOT, manifest)).encode()).hexdigest()
    return os.path.join(cache, "micropython", "ports", "unix", "build-manifest-" + key[:12],
                        "frozen_content.c")


def _stale_frozen(manifest):
    # MicroPython's makemanifest writes frozen_content.c again only when a frozen file is
    # newer than it: a module removed or renamed, or a file put back with an older mtime
    # (mv, cp -p), would stay frozen in the new binary as it was. Removed, so the build
    # freezes exactly what the manifest names now.
    try:
        os.remove(frozen_content(manifest))
    except FileNotFoundError:
        pass


def frozen():
    """The unix port, 32-bit, with the firmware and the simulator's HAL frozen in."""
    return ensure(FROZEN, MANIFEST)


def plain():
    """The unix port, 32-bit, without the firmware (for 32-bit .mpy files)."""
    return ensure(PLAIN)


# -- Static heap: what importing each frozen module holds -------------------------------------


def frozen_modules(manifest=MANIFEST):
    """{dotted module name: source path} of what the manifest freezes."""
    out = {}
    for path, src in build.manifest_files(manifest).items():
        name = path[:-3].replace("/", ".")
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = src
    return out


def _top_level_imports(tree):
    """Import statements that run when the module is imported (not inside functions)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            todo.append(child)


def _imports(name, src, ours):
    """The modules `name` imports when imported: ours (dotted) and others (top-level name)."""
    with open(os.path.join(ROOT, src)) as f:
        tree = ast.parse(f.read(), src)
    package = name if src.endswith("__init__.py") else name.rpartition(".")[0]
    parts = name.split(".")
    found = {".".join(parts[:i]) for i in range(1, len(parts))}  # parent packages first
    for node in _top_level_imports(tree):
        if isinstance(node, ast.Import):
            targets = [(a.name, ()) for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([p for p in up if p] + ([base] if base else []))
            targets = [(base, [a.name for a in node.names])]
        for mod, names in targets:
            bits = mod.split(".")
            found.update(".".join(bits[:i]) for i in range(1, len(bits) + 1))
            found.update(mod + "." + n for n in names if mod + "." + n in ours)
    return {m for m in found if m in ours or "." not in m}


def import_order(modules, found=None):
    """Every frozen module and every other module they import at load time, each after what
    it imports: importing them one by one in this order charges each with its own heap.
    `found`: {module: names} of imports the source does not show (seen at run time)."""
    deps = {m: _imports(m, src, modules) for m, src in modules.items()}
    for m, names in (found or {}).items():
        deps[m] |= {n if n in modules else n.split(".")[0] for n in names}
    order, seen = [], set()

    def visit(m):
        if m in seen:
            return
        seen.add(m)
        for d in sorted(deps.get(m, ())):
            visit(d)
        order.append(m)

    for m in sorted(modules):
        visit(m)
    return [(m, m in modules) for m in order if m]


_STATIC = """
import gc, sys
ORDER = @ORDER@
gc.collect()
a0 = gc.mem_alloc()
# sys.modules grown once to its final size, so that no import is charged for a rehash.
for i in range(len(ORDER) + 8):
    sys.modules["_%d" % i] = None
for i in range(len(ORDER) + 8):
    del sys.modules["_%d" % i]
gc.collect()
print("M sys.modules", gc.mem_alloc() - a0)
for m, ours in ORDER:
    before = list(sys.modules)
    gc.collect()
    a = gc.mem_alloc()
    try:
        __import__(m)
    except ImportError:
        if ours:
            raise
        continue
    gc.collect()
    b = gc.mem_alloc()
    print("M", m, b - a, *[k for k in sys.modules if k not in before and k != m])
before = None
gc.collect()
print("T", gc.mem_alloc() - a0)
"""


def static_heap(exe, manifest=MANIFEST):
    """Heap held once every module of the frozen build is imported, on the binary `exe`
    (built with that manifest): (total bytes, [(module, bytes, ours)]), `ours` False for the
    MicroPython modules they import (asyncio…). Imports the source hides (a function called
    at load time) show up at run time: the order is corrected and measured again."""
    modules = frozen_modules(manifest)
    found = {}
    for _ in range(4):
        order = import_order(modules, found)
        env = dict(os.environ, MICROPYPATH=".frozen")
        r = subprocess.run(
            [exe, "-X", "heapsize=4m", "-c", _STATIC.replace("@ORDER@", repr(order))],
            capture_output=True, text=True, env=env, cwd=os.path.dirname(exe), timeout=60,
        )
        if r.returncode != 0:
            raise RuntimeError("static heap measurement failed:\n" + r.stdout + r.stderr)
        ours = dict(order)
        rows, total, missed = [], None, False
        for line in r.stdout.splitlines():
            f = line.split()
            if f and f[0] == "M":
                rows.append((f[1], int(f[2]), ours.get(f[1], False)))
                if rows[-1][2] and len(f) > 3 and not set(f[3:]) <= found.get(f[1], set()):
                    found.setdefault(f[1], set()).update(f[3:])
                    missed = True
            elif f and f[0] == "T":
                total = int(f[1])
        if not missed:
            break
    return total, rows


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "image"
    if cmd not in ("image", "plain", "static"):
        sys.exit(__doc__)
    if skip_reason():
        sys.exit("mp32: " + skip_reason())
    if cmd == "static":
        total, rows = static_heap(frozen())
        for name, size, ours in sorted(rows, key=lambda r: -r[1]):
            if size:
                print("%-44s %6.1f KiB" % (name if ours else name + " (MicroPython)", size / 1024))
        print("%-44s %6.1f KiB" % ("total", total / 1024))
        return
    out = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    exe = frozen() if cmd == "image" else plain()
    if out and out != exe:
        import shutil

        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copy(exe, out)
        exe = out
    print(exe)


if __name__ == "__main__":
    main()
