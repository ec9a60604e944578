"""Authorize (OCPP 1.6 §4.1): ask the central system whether an idTag may charge.

Decisions (local list, cache, offline rules) are firmware/authorization/auth.py's, by the
rules of firmware/authorization/service.py's docstring; this module only speaks the message
(loaded and let go with the Auth).
"""

ACTION = "Authorize"


def payload(id_tag):
    return {"idTag": id_tag[:20]}


async def send(cp, id_tag):
    """The idTagInfo of Authorize.conf; raises CallError / CallTimeout / NotAccepted."""
    conf = await cp.session.call(ACTION, payload(id_tag))
    return conf["idTagInfo"]
