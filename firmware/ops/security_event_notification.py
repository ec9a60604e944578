"""SecurityEventNotification (OCPP 1.6 Security Whitepaper §4.x): the charge point reports a
security event. Sent by firmware/security/events.py deliver (critical events journaled first,
firmware/security/service.py); loaded only while an event waits to be sent."""

ACTION = "SecurityEventNotification"


async def send(session, payload):
    """payload: {"type", "timestamp", "techInfo"?}; raises what session.call raises."""
    return await session.call(ACTION, payload)
