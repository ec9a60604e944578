"""GetConfiguration (OCPP 1.6 §5.8): all keys, or the requested ones plus `unknownKey`.

Secrets (AuthorizationKey) are listed without a value (Security Whitepaper: write-only).
More requested keys than GetConfigurationMaxKeys is a PropertyConstraintViolation.
"""

from firmware.ocpp import router

ACTION = "GetConfiguration"


def _item(name, got):
    value, readonly = got
    item = {"key": name, "readonly": readonly}
    if value is not None:
        item["value"] = value[:500]
    return item


@router.on(ACTION)
def get_configuration(cp, payload):
    cfg = cp.config
    wanted = payload.get("key")
    known = []
    unknown = []
    if wanted:
        limit = cfg.get("GetConfigurationMaxKeys")
        if len(wanted) > limit:
            raise router.OCPPError(
                router.PROPERTY_CONSTRAINT_VIOLATION,
                "%d keys requested, GetConfigurationMaxKeys is %d" % (len(wanted), limit),
            )
        for name in wanted:
            got = cfg.ocpp_get(name)
            if got is None:
                unknown.append(name)
            else:
                known.append(_item(name, got))
    else:
        for name in cfg.ocpp_names():
            known.append(_item(name, cfg.ocpp_get(name)))
    out = {"configurationKey": known}
    if unknown:
        out["unknownKey"] = unknown
    return out
