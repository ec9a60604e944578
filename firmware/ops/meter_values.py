"""MeterValues (OCPP 1.6 §4.7): meter readings, built by firmware/transactions/metering.py.

Inside a transaction they go through the journal (firmware/transactions/service.py: written before
sent,
transactionId filled in at delivery). Outside one (clock-aligned readings without a
transaction) `send` delivers them directly, without transactionId, and never journals them.
"""

ACTION = "MeterValues"


def payload(connector_id, meter_value, transaction_id=None):
    """The request for one meterValue entry (a dict) or several (a list of them)."""
    p = {"connectorId": connector_id,
         "meterValue": meter_value if isinstance(meter_value, list) else [meter_value]}
    if transaction_id is not None:
        p["transactionId"] = transaction_id
    return p


async def send(cp, connector_id, meter_value):
    """A reading outside any transaction; raises CallError / CallTimeout / NotAccepted."""
    return await cp.session.call(ACTION, payload(connector_id, meter_value))
