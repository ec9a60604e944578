"""A stand-in for firmware.app.ChargePoint in unit tests: the same declarations and event hubs
(taken from the real class), with `tx` a plain attribute that a test sets directly."""

import contextlib
import sys

from firmware.app import ChargePoint


@contextlib.contextmanager
def modules_kept(*packages):
    """sys.modules and the attributes of `packages` put back as they were afterwards: code
    under test that lets modules go (router.forget) leaves the other tests the module objects
    they imported."""
    saved = dict(sys.modules)
    pkgs = {p: dict(vars(p)) for p in packages}
    try:
        yield
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
        for p, d in pkgs.items():
            for k, v in d.items():
                setattr(p, k, v)


class FakeCP:
    tx = None
    _declare = ChargePoint._declare
    on_tx = ChargePoint.on_tx
    tx_event = ChargePoint.tx_event
    status_keys = ChargePoint.status_keys
    wake = ChargePoint.wake
    rest = ChargePoint.rest
    rest_all = ChargePoint.rest_all
    _wake_on = ChargePoint._wake_on
    beat = ChargePoint.beat
    keep = ChargePoint.keep
