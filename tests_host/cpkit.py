"""A stand-in for firmware.app.ChargePoint in unit tests: the same declarations and event hubs
(taken from the real class), with `tx` a plain attribute that a test sets directly."""

from firmware.app import ChargePoint


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
