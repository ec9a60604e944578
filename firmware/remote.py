"""Remote service: the LocalAuthListManagement profile (SendLocalList, GetLocalListVersion)
and the RemoteTrigger profile (TriggerMessage); the messages are firmware/ops/<name>.py.

    coros = remote.attach(cp)   # [] : nothing runs on its own

Shares the local authorization list `cp.locallist` with the authorization of firmware/auth.py
(whichever of the two is attached first creates it: there is only ever one). TriggerMessage
needs `cp.station` for StatusNotification and reads `cp.tx` for MeterValues.
"""


def attach(cp):
    from firmware.ops import (  # noqa: F401 - importing registers the handlers
        get_local_list_version,
        send_local_list,
        trigger_message,
    )

    if getattr(cp, "locallist", None) is None:
        from firmware.locallist import LocalList

        cp.locallist = LocalList(cp.data_dir)
        cp.locallist.enabled = bool(cp.config.get("LocalAuthListEnabled"))
    return []
