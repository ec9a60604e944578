"""Headless Chromium for the web page test (tests_host/test_web_browser.py).

    python tools/browser.py install    install Debian's chromium and chromium-driver when
                                       missing (`make test` runs this); never fails: where
                                       they cannot be installed it says so in one line and
                                       the browser test is skipped with the same reason
    python tools/browser.py shot URL OUT.png
                                       a screenshot of a page (to look at it)

`driver()` starts Chromium through chromedriver with selenium (requirements.txt), headless,
with a fresh profile and nothing that talks to the network by itself.
"""

import os
import shutil
import subprocess
import sys
import tempfile

PACKAGES = ("chromium", "chromium-driver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,1400",
)


def binaries():
    """(chromium, chromedriver) paths, either None when missing."""
    return (shutil.which("chromium") or shutil.which("chromium-browser"),
            shutil.which("chromedriver"))


def missing():
    """Why the browser test cannot run here, or None when it can."""
    chrome, drv = binaries()
    if not chrome or not drv:
        return ("chromium and chromium-driver are not installed (Debian packages; "
                "`python tools/browser.py install` as root installs them)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    return None


def install():
    """Install the Debian packages when missing; a clear line and no failure otherwise."""
    chrome, drv = binaries()
    if chrome and drv:
        print("browser: %s and %s present" % (chrome, drv))
        return 0
    apt = shutil.which("apt-get")
    if not apt:
        print("browser: no apt-get here: the web page browser test will be skipped")
        return 0
    cmd = [apt]
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if not sudo or subprocess.run([sudo, "-n", "true"], capture_output=True).returncode:
            print("browser: not root and no password-less sudo: install %s yourself; "
                  "the web page browser test will be skipped" % " ".join(PACKAGES))
            return 0
        cmd = [sudo, "-n", apt]
    print("browser: installing %s with apt-get (once)" % " ".join(PACKAGES), flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for args in (["update", "-q"], ["install", "-y", "-q", "--no-install-recommends"]
                 + list(PACKAGES)):
        r = subprocess.run(cmd + args, env=env, capture_output=True, text=True)
        if r.returncode:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:]
            print("browser: apt-get %s failed (%s): the web page browser test will be "
                  "skipped" % (args[0], tail[0] if tail else r.returncode))
            return 0
    chrome, drv = binaries()
    print("browser: %s" % ("ready" if chrome and drv else "still missing after apt-get"))
    return 0


def driver():
    """A headless Chromium WebDriver with a fresh profile. Quit it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chrome, drv = binaries()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for f in FLAGS:
        opts.add_argument(f)
    profile = tempfile.mkdtemp(prefix="chromium-")
    opts.add_argument("--user-data-dir=" + profile)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # script errors, for tests
    d = webdriver.Chrome(options=opts, service=Service(executable_path=drv))
    d.profile_dir = profile
    return d


def quit_driver(d):
    try:
        d.quit()
    finally:
        shutil.rmtree(d.profile_dir, ignore_errors=True)


def main():
    if sys.argv[1:2] == ["install"]:
        return install()
    if sys.argv[1:2] == ["shot"] and len(sys.argv) == 4:
        import time

        d = driver()
        try:
            d.get(sys.argv[2])
            time.sleep(3)  # let the page poll the API once or twice
            d.save_screenshot(sys.argv[3])
        finally:
            quit_driver(d)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
