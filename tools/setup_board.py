"""First-time setup of a board, without editing code:

    make setup PORT=/dev/ttyUSB0 WIFI_SSID=home WIFI_PASS=secret \\
        OCPP_URL=wss://csms.example.com/ocpp/CP1 API_PASS=admin123

Writes /setup.json onto the board with mpremote. On the next boot the firmware validates
it with the same rules as `/api/set` (bad values are logged and nothing is applied),
stores it in its configuration, and deletes the file.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile


def setup_values(ssid, wifi_pass, ocpp_url, api_pass):
    values = {}
    if ssid:
        values["wss"] = ssid
    if wifi_pass:
        values["wke"] = wifi_pass
    if ocpp_url:
        values["ocppu"] = ocpp_url
        values["ocppe"] = True
    if api_pass:
        values["apw"] = api_pass
    return values


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", required=True)
    ap.add_argument("--ssid", default="")
    ap.add_argument("--wifi-pass", default="")
    ap.add_argument("--ocpp-url", default="")
    ap.add_argument("--api-pass", default="")
    a = ap.parse_args()
    values = setup_values(a.ssid, a.wifi_pass, a.ocpp_url, a.api_pass)
    if not values:
        sys.exit("nothing to set: give WIFI_SSID, WIFI_PASS, OCPP_URL and/or API_PASS")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "setup.json")
        with open(path, "w") as f:
            json.dump(values, f)
        base = [sys.executable, "-m", "mpremote", "connect", a.port]
        subprocess.run(base + ["fs", "cp", path, ":setup.json"], check=True)
        subprocess.run(base + ["reset"], check=False)
    print("setup written (%s); the board applies it on this boot" % ", ".join(sorted(values)))


if __name__ == "__main__":
    main()
