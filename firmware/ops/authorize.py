"""Authorize (OCPP 1.6 §4.1): ask the central system whether an idTag may charge.

Decisions (local list, cache, offline rules) are firmware/authorization/service.py's; this module
only
speaks the message.
"""

ACTION = "Authorize"


def payload(id_tag):
    return {"idTag": id_tag[:20]}


async def send(cp, id_tag):
    """The idTagInfo of Authorize.conf; raises CallError / CallTimeout / NotAccepted."""
    conf = await cp.session.call(ACTION, payload(id_tag))
    return conf["idTagInfo"]
