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
    from firmware.ocpp import router

    saved = dict(sys.modules)
    pkgs = {p: dict(vars(p)) for p in packages}
    # The handlers the modules registered go back with them: a message module imported
    # anew here registered its own, which would outlive the module put back (and a later
    # test that patches that module would patch one no handler uses).
    tables = [(t, dict(t)) for t in (router.HANDLERS, router.AFTER, router.LOADED)]
    try:
        yield
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
        for p, d in pkgs.items():
            for k, v in d.items():
                setattr(p, k, v)
        for t, d in tables:
            t.clear()
            t.update(d)


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
