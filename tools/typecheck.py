"""Static type check of the ESP32 drivers against the MicroPython ESP32 stubs (host only).

    python tools/typecheck.py [FILE ...]      default: hal/esp32/*.py

Copies `machine.pyi`, `esp32.pyi`, `micropython.pyi`, `network.pyi` of the
`micropython-esp32-stubs` package (plus the `_mpy_shed` and `vfs` stubs they import, from
`micropython-stdlib-stubs`) into a temporary stub folder on MYPYPATH, then runs mypy with
`check_untyped_defs` (the drivers carry no annotations; without it mypy would skip their
bodies). Errors inside the stubs are silenced; any error in our files fails the run (exit
status 1), so a call the ESP32 port does not have, such as `PWM.duty_percent`, is caught on
the host.
"""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUBS = ("machine.pyi", "esp32.pyi", "micropython.pyi", "network.pyi", "vfs.pyi", "_mpy_shed")
STUB_MODULES = "machine,esp32,micropython,network,vfs,_mpy_shed,_mpy_shed.*"


def find_stub_dir():
    for d in (sysconfig.get_paths()["purelib"], *sys.path):
        if d and os.path.isfile(os.path.join(d, "machine.pyi")):
            return d
    return None


def copy_stubs(src, dst):
    for name in STUBS:
        path = os.path.join(src, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(dst, name))
        elif os.path.isfile(path):
            shutil.copy(path, dst)
        elif name in ("machine.pyi", "esp32.pyi", "micropython.pyi"):
            raise SystemExit("typecheck: stub %s missing in %s" % (name, src))


def main(argv):
    files = argv or sorted(glob.glob(os.path.join(ROOT, "hal", "esp32", "*.py")))
    src = find_stub_dir()
    if src is None:
        print("typecheck: micropython-esp32-stubs not installed (pip install -r requirements.txt)")
        return 2
    with tempfile.TemporaryDirectory(prefix="wb-stubs-") as tmp:
        stubs = os.path.join(tmp, "stubs")
        os.mkdir(stubs)
        copy_stubs(src, stubs)
        cfg = os.path.join(tmp, "mypy.ini")
        with open(cfg, "w") as f:
            f.write(
                "[mypy]\n"
                "python_version = 3.10\n"
                "check_untyped_defs = True\n"
                "follow_imports = silent\n"
                "warn_unused_configs = False\n"
                "[mypy-%s]\nignore_errors = True\n" % STUB_MODULES
            )
        env = dict(os.environ)
        # the stubs first, then the board search path (lib/ before the repo root)
        env["MYPYPATH"] = os.pathsep.join([stubs, os.path.join(ROOT, "lib"), ROOT])
        cache = os.path.join(tmp, "cache")
        cmd = [sys.executable, "-m", "mypy", "--config-file", cfg, "--no-error-summary",
               "--cache-dir", cache, "--explicit-package-bases", *files]  # fmt: skip
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    if out:
        print(out)
    if r.returncode != 0:
        print("typecheck: FAILED (%d files)" % len(files))
        return 1
    print("typecheck: ok (%d files against the ESP32 stubs)" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
