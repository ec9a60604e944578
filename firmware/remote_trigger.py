"""RemoteTrigger profile: TriggerMessage (firmware/ops/trigger_message.py) asks the charge
point to send one of its messages now. Nothing runs on its own; the message module uses
`cp.session` (BootNotification, Heartbeat), `cp.station` (StatusNotification) and `cp.tx`
(MeterValues).
"""

OPS = ("trigger_message",)


def attach(cp):
    from firmware.ocpp import router

    router.offer(OPS)
    router.forget(__name__)  # nothing of it is needed after this: its module goes
    return []
