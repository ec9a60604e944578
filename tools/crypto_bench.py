"""Timings and heap of the device crypto (lib/p256.py, der, rsa_verify, x509, csr) on the
MicroPython unix port, with an ESP32 estimate.

    python tools/crypto_bench.py [--mp32 PATH] [--runs N]

Rows (name value unit), for each binary: the venv's 64-bit `micropython` and, when given or
found at build/micropython32, the 32-bit build of
../shared/tools/micropython32/build (the ESP32's word size and object layout, so its heap
figures are what an ESP32 pays):
- import_heap_{py,mpy}[_module]: heap held after importing the five modules from source /
  from .mpy (gc.mem_alloc after a collect, before and after), each and in total; compat,
  which the firmware always holds, is loaded before and not counted. Frozen into the image,
  the bytecode lives in flash and only the module objects remain.
- keygen/sign/verify/rsa_verify/parse/csr_ms: mean wall time of one operation.
- min_heap_kib: smallest -X heapsize (4 KiB steps) at which keygen + CSR + a chain check
  (P-256 leaf under an RSA-2048 root) run, modules loaded from .mpy; min_heap_over_bare_kib:
  the same less the smallest heap in which a bare interpreter (with compat) starts.
ESP32 estimate: the ESP32 at 240 MHz runs MicroPython big-int code roughly 20 to 40 times
slower than a desktop unix port (an assumption, not measured here: no board in CI). The
estimate rows print both ends, from the 32-bit build when there is one (16-bit big-int digits
like the ESP32; the 64-bit port uses 32-bit digits), else from the 64-bit port.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests_host"))
MODULES = ("der", "pem", "p256", "rsa_verify", "x509", "csr")
ESP32_SLOWDOWN = (20, 40)


def row(name, value, unit):
    print("%-28s %10s %s" % (name, value, unit), flush=True)


def micropython():
    return shutil.which("micropython", path=os.path.dirname(sys.executable))


def compile_mpy(out):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build

    exe = build.mpy_cross()
    for m in MODULES:
        src = os.path.join(ROOT, "lib", m + ".py")
        subprocess.run([exe, "-march=xtensawin", "-o", os.path.join(out, m + ".mpy"), src],
                       check=True)
    shutil.copy(os.path.join(ROOT, "lib", "compat.py"), out)  # rsa_verify imports const


def run(exe, code, path, heap="1m", timeout=600):
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([".frozen", path]))
    return subprocess.run([exe, "-X", "heapsize=" + heap, "-c", code], capture_output=True,
                          text=True, env=env, timeout=timeout)


# compat is in every firmware already: loaded first, not counted. One figure a module, in
# import order (x509 and csr find der, p256 loaded), then the total.
IMPORT_HEAP = """
import gc, compat
gc.collect(); a0 = a = gc.mem_alloc()
for m in %r:
    __import__(m)
    gc.collect(); b = gc.mem_alloc(); print(b - a, end=" "); a = b
print(a - a0)
""" % (MODULES,)

TIMINGS = """
import time, hashlib, binascii, p256, x509, csr, rsa_verify
def t(f, n):
    t0 = time.ticks_us()
    for _ in range(n):
        f()
    return time.ticks_diff(time.ticks_us(), t0) / n / 1000
N = %d
dg = hashlib.sha256(b"bench").digest()
d, q = p256.keygen()
r, s = p256.sign(d, dg)
leaf, root = x509.parse_pem(%r)
n, e = root["key"]
tbs = hashlib.sha256(leaf["tbs"]).digest()
out = [t(p256.keygen, N), t(lambda: p256.sign(d, dg), N),
       t(lambda: p256.verify(q, dg, r, s), N),
       t(lambda: rsa_verify.verify(n, e, tbs, leaf["sig"]), N),
       t(lambda: x509.parse(leaf["der"]), N), t(lambda: csr.make_csr(d, q, "CP0001", "ACME"), N)]
print(" ".join("%%.2f" %% x for x in out))
"""

MIN_HEAP = """
import p256, csr, x509
d, q = p256.keygen()
pem = csr.make_csr(d, q, "CP0001", "ACME")
leaf, root = x509.parse_pem(%r)
print(x509.verify_signed_by(leaf, root) and x509.verify_signed_by(root, root))
"""


def pki_pem():
    from cryptokit import ec_key, make_cert, rsa_key

    root = make_cert("RSA Root", rsa_key(), o="CA", ca=True)
    leaf = make_cert("CP0001", ec_key(), issuer=root, o="ACME")
    return leaf.pem + root.pem


def min_heap_kib(exe, path, code, lo=4, hi=512):
    if run(exe, code, path, "%dk" % hi).stdout.strip() != "True":
        return None
    lo //= 4
    hi //= 4
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok = run(exe, code, path, "%dk" % (mid * 4)).stdout.strip() == "True"
        lo, hi = (lo, mid) if ok else (mid, hi)
    return hi * 4


def bench(tag, exe, mpy_dir, chain, runs):
    src = os.path.join(ROOT, "lib")
    for kind, path in (("py", src), ("mpy", mpy_dir)):
        r = run(exe, IMPORT_HEAP, path)
        if r.returncode:
            sys.exit(r.stdout + r.stderr)
        sizes = r.stdout.split()
        for m, v in zip(MODULES, sizes[:-1], strict=True):
            row("%s_import_heap_%s_%s" % (tag, kind, m), v, "bytes")
        row("%s_import_heap_%s" % (tag, kind), sizes[-1], "bytes")
    r = run(exe, TIMINGS % (runs, chain), mpy_dir)
    if r.returncode:
        sys.exit(r.stdout + r.stderr)
    ms = [float(x) for x in r.stdout.split()]
    names = ("keygen", "sign", "verify", "rsa2048_verify", "parse_cert", "make_csr")
    for name, v in zip(names, ms, strict=True):
        row("%s_%s_ms" % (tag, name), "%.2f" % v, "ms")
    full = min_heap_kib(exe, mpy_dir, MIN_HEAP % chain)
    row("%s_min_heap_kib" % tag, full, "KiB")
    base = min_heap_kib(exe, mpy_dir, "import compat; print(True)")
    row("%s_min_heap_over_bare_kib" % tag, full - base, "KiB")
    return dict(zip(names, ms, strict=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mp32", default=None, help="32-bit MicroPython unix binary")
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    chain = pki_pem()
    mp32 = a.mp32 or os.path.join(ROOT, "build", "micropython32")
    if not os.path.exists(mp32):
        mp32 = None
    with tempfile.TemporaryDirectory() as tmp:
        compile_mpy(tmp)
        base, ms = "unix64", bench("unix64", micropython(), tmp, chain, a.runs)
        if mp32:  # 16-bit big-int digits as on the ESP32: the better base for the estimate
            base, ms = "unix32", bench("unix32", mp32, tmp, chain, a.runs)
    for name in ("keygen", "sign", "verify", "rsa2048_verify", "make_csr"):
        lo, hi = (ms[name] * f for f in ESP32_SLOWDOWN)
        row("esp32_est_%s_ms" % name, "%.0f-%.0f" % (lo, hi), "ms (x%d-x%d of %s)"
            % (ESP32_SLOWDOWN + (base,)))


if __name__ == "__main__":
    main()
