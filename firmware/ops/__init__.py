def status_payload(statuses, status, request_id=None):
    """{"status"[, "requestId"]} of a Security Whitepaper status notification
    (LogStatusNotification, SignedFirmwareStatusNotification); ValueError for a status
    that is not one of `statuses`."""
    if status not in statuses:
        raise ValueError(status)
    p = {"status": status}
    if request_id is not None:
        p["requestId"] = request_id
    return p
