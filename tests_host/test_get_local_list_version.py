"""GetLocalListVersion through the real RPC path (schema-checked both ways): -1 while
LocalAuthListEnabled is false, 0 for an empty list, else the installed listVersion, also
after a restart."""

from test_send_local_list import entries, make, send, version
from test_status_notification import CP


def test_zero_when_empty(tmp_path):
    assert version(make(tmp_path)) == 0


def test_installed_version_survives_a_restart(tmp_path):
    cp = make(tmp_path)
    assert send(cp, 17, "Full", entries("A")) == "Accepted"
    assert version(cp) == 17
    cp2 = CP(tmp_path)
    assert version(cp2) == 17


def test_minus_one_while_disabled(tmp_path):
    cp = make(tmp_path)
    assert send(cp, 3, "Full", entries("A")) == "Accepted"
    assert cp.config.ocpp_set("LocalAuthListEnabled", "false") == "Accepted"
    assert version(cp) == -1
    assert cp.config.ocpp_set("LocalAuthListEnabled", "true") == "Accepted"
    assert version(cp) == 3  # the list was kept
