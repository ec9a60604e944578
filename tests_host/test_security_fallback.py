"""SecurityProfile fallback (firmware/security/service.py): a raised profile is confirmed only by
an Accepted BootNotification on a link opened with that profile; five attempts in a row that do
not reach Accepted put the previous profile back, and that survives a restart."""

import asyncio
import json
import os

import pytest
import test_certificate_signed as certificate_signed_test

from firmware.security.service import _FALLBACK_TRIES, Security

KEY = "0123456789abcdef"


class Session:
    profile = None  # the profile the current link was opened with (ocpp/session.py)

    def __init__(self):
        self.accepted = asyncio.Event()  # never set: the events wait on flash

    def is_accepted(self):
        return False


class CP(certificate_signed_test.CP):  # the same charge point, with a session
    def __init__(self, data_dir):
        super().__init__(data_dir)
        self.session = Session()


def _security(cp):
    sec = Security(cp)
    cp.security = sec
    cp.config.subscribe(sec.on_config)
    return sec


@pytest.fixture
def cp(tmp_path):
    cp = CP(tmp_path)
    assert cp.config.update({"AuthorizationKey": KEY}, "test") == {}
    return cp


def _raise(cp):
    assert cp.config.update({"SecurityProfile": 1}, "ocpp") == {}


async def _accepted(cp, sec, link_profile):
    cp.session.profile = link_profile
    await sec.on_accepted(cp)


def _run(body):
    # An event starts the delivery task: the test runs in an event loop.
    asyncio.run(body())


def _fallback_file(cp):
    return cp.data_dir + "/security/fallback.json"


def test_a_raise_is_confirmed_by_an_accepted_link_with_the_new_profile(cp):
    async def body():
        sec = _security(cp)
        _raise(cp)
        assert json.load(open(_fallback_file(cp))) == {"prev": 0}
        await _accepted(cp, sec, 1)
        assert not os.path.exists(_fallback_file(cp))
        for _ in range(_FALLBACK_TRIES * 2):  # confirmed: failures no longer fall back
            sec.on_attempt(False)
        assert cp.config.get("SecurityProfile") == 1

    _run(body)


def test_an_accept_of_the_old_link_that_comes_after_the_raise_confirms_nothing(cp):
    """The on-accepted hooks run one after another after Accepted; a ChangeConfiguration that
    raises the profile can be answered meanwhile. The old profile's link must not confirm the
    new profile, or a profile the central system refuses is never left."""
    async def body():
        sec = _security(cp)
        _raise(cp)
        await _accepted(cp, sec, 0)  # the hook of the link opened with profile 0, late
        assert os.path.exists(_fallback_file(cp))
        for i in range(_FALLBACK_TRIES):
            assert cp.config.get("SecurityProfile") == 1, i
            sec.on_attempt(False)
        assert cp.config.get("SecurityProfile") == 0
        assert not os.path.exists(_fallback_file(cp))
        texts = []
        while sec.queue.peek() is not None:  # a critical event: kept on flash until sent
            seq, p = sec.queue.peek()
            texts.append(p.get("techInfo", ""))
            sec.queue.ack(seq)
        assert any("back to 0" in t for t in texts), texts

    _run(body)


def test_fewer_failures_than_the_limit_keep_the_raised_profile(cp):
    async def body():
        sec = _security(cp)
        _raise(cp)
        for _ in range(_FALLBACK_TRIES - 1):
            sec.on_attempt(False)
        sec.on_attempt(True)
        assert cp.config.get("SecurityProfile") == 1

    _run(body)


def test_the_fallback_survives_a_restart_before_confirmation(cp, tmp_path):
    async def body():
        sec = _security(cp)
        _raise(cp)
        cp2 = CP(tmp_path)  # power cut: config and fallback.json from flash
        sec2 = _security(cp2)
        assert cp2.config.get("SecurityProfile") == 1
        for _ in range(_FALLBACK_TRIES):
            sec2.on_attempt(False)
        assert cp2.config.get("SecurityProfile") == 0
        del sec

    _run(body)
