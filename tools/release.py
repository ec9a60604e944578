"""Application bundle for OCPP UpdateFirmware (host side): `make release [VERSION=x.y.z]`.

    python tools/release.py [--version X] [--out DIR]       prints the bundle's path last

Builds ONE file, DIR/wallbox-<version>.bundle (DIR defaults to build/release): a JSON line

    {"format": 1, "version": X, "files": [{"path": "lib/ws.mpy", "size": n, "sha256": h}, ...]}

followed by the files' bytes back to back, in that order. The files are exactly what
`make deploy` copies (tools/build.py board_files(), compiled with mpy-cross
-march=xtensawin): boot.py and main.py as source, every other module as .mpy under lib/,
lib/texts.bin (the texts those modules read from flash: build.flash_texts()),
plus the simulator's modules (build.host_files(): hal/sim, hal/serial_unix; unused on a
board) so that `make sim` runs the new version whole from its A/B slot.
lib/version.mpy is compiled from a generated `VERSION = "<X>"`, so the installed firmware
reports X (`from version import VERSION`); the manifest carries X as well, for the installer.
lib/bundle.py reads and checks the format on the device.

Default version: lib/version.py's VERSION + "+dev." + `git describe --always --dirty`
(e.g. 0.1.0+dev.bc61d4d), or + "+dev" outside a git checkout. A version is 1 to 50 of
[0-9A-Za-z.+_-] (BootNotification firmwareVersion is CiString50).
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import build  # noqa: E402

ROOT = build.ROOT
FORMAT = 1
VERSION_FILE = "lib/version.mpy"
_VALID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,49}$")


def current_version():
    """VERSION of lib/version.py."""
    with open(os.path.join(ROOT, "lib", "version.py")) as f:
        m = re.search(r'^VERSION = "([^"]+)"', f.read(), re.M)
    if not m:
        sys.exit("release: no VERSION in lib/version.py")
    return m.group(1)


def default_version():
    try:
        r = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--exclude=*"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
        tag = r.stdout.strip().replace("-", ".")
    except (OSError, subprocess.CalledProcessError):
        tag = ""
    return current_version() + "+dev" + ("." + tag if tag else "")


def check_version(v):
    if not _VALID.match(v):
        sys.exit("release: bad VERSION %r (1 to 50 of 0-9 A-Z a-z . + _ -)" % v)
    return v


def write_bundle(path, version, files):
    """Write a bundle: files is [(path on the board, local file)] -> the manifest."""
    entries = []
    for dst, local in files:
        h = hashlib.sha256()
        with open(local, "rb") as f:
            for block in iter(lambda: f.read(65536), b""):
                h.update(block)
        entries.append({"path": dst, "size": os.path.getsize(local), "sha256": h.hexdigest()})
    manifest = {"format": FORMAT, "version": version, "files": entries}
    with open(path, "wb") as out:
        out.write(json.dumps(manifest, separators=(",", ":")).encode() + b"\n")
        for _, local in files:
            with open(local, "rb") as f:
                out.write(f.read())
    return manifest


def compile_version(version, out):
    """out/lib/version.mpy declaring VERSION = version."""
    src = os.path.join(out, "version.py")
    with open(src, "w") as f:
        f.write("VERSION = %s\n" % json.dumps(version))
    target = os.path.join(out, VERSION_FILE)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    cmd = build.mpy_command("xtensawin", out, VERSION_FILE, "lib/version.py", src)
    subprocess.run(cmd, check=True)
    os.remove(src)


def release(version, out_dir):
    """Build the bundle -> (its path, the manifest)."""
    with tempfile.TemporaryDirectory(prefix="wb-release-") as tmp:
        staged = os.path.join(tmp, "board")
        build.compile_all(staged)
        # The simulator's hardware model too (a few KB, never imported on a board), so that
        # `make sim` runs the whole new version from its slot.
        build.compile_files(build.host_files(), staged, "xtensawin")
        compile_version(version, staged)
        dsts = [dst for _, dst in build.board_files() + build.host_files()]
        dsts.append(build.FLASH_TEXTS)  # the texts the modules read from flash
        if VERSION_FILE not in dsts:
            dsts.append(VERSION_FILE)
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "wallbox-%s.bundle" % version)
        manifest = write_bundle(path, version, [(d, os.path.join(staged, d)) for d in dsts])
    return path, manifest


def main():
    ap = argparse.ArgumentParser(description="Build the firmware bundle for UpdateFirmware.")
    ap.add_argument("--version", default="", help="default: lib/version.py + '+dev.<git>'")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "release"))
    a = ap.parse_args()
    version = check_version(a.version or default_version())
    path, manifest = release(version, a.out)
    total = sum(e["size"] for e in manifest["files"])
    print("release %s: %d files, %d bytes of files, bundle %d bytes"
          % (version, len(manifest["files"]), total, os.path.getsize(path)))
    print(os.path.abspath(path))


if __name__ == "__main__":
    main()
