"""The README's key tables are the key table of the firmware (tools/keytable.py)."""

import os
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))

import keytable  # noqa: E402


def test_readme_key_tables_match_the_firmware():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert keytable.render(text) == text, "run: .venv/bin/python tools/keytable.py --write"


def test_every_standard_key_is_documented():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    for e in keytable.entries():
        if e["ocpp"]:
            assert "| %s |" % e["key"] in text
