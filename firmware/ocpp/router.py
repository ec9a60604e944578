"""Action routing for incoming OCPP 1.6J CALLs, and the OCPP-J error codes.

Message modules register themselves at import time:

    from firmware.ocpp import router

    @router.on("Reset")
    def reset(cp, payload):
        return {"status": "Accepted"}

    @router.after("Reset")
    def reset_after(cp, payload, response):
        ...  # runs once the CALLRESULT is on the wire

Plain dicts, because MicroPython functions take no attributes. Handlers get and return the
wire payload (camelCase dicts), no conversion. An action in KNOWN without a handler is
answered NotSupported; an action outside KNOWN is answered NotImplemented (OCPP-J 1.6 §4.2.3).
"""

from compat import forget as _forget  # out of sys.modules and off its package

# OCPP-J 1.6 §4.2.3 error codes. 1.6 JSON spells "Occurence" (sic); peers using the
# corrected spelling are accepted by `canonical()`.
NOT_IMPLEMENTED = "NotImplemented"
NOT_SUPPORTED = "NotSupported"
INTERNAL_ERROR = "InternalError"
PROTOCOL_ERROR = "ProtocolError"
SECURITY_ERROR = "SecurityError"
FORMATION_VIOLATION = "FormationViolation"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
GENERIC_ERROR = "GenericError"
# Added by the RPC to a validated payload whose frame had strings cut (lib/ws.py CUT): the
# number cut. Only DataTransfer gets that far; no schema allows the key, so no peer can send it.
CUT_KEY = "\x00cut"

CODES = (
    NOT_IMPLEMENTED,
    NOT_SUPPORTED,
    INTERNAL_ERROR,
    PROTOCOL_ERROR,
    SECURITY_ERROR,
    FORMATION_VIOLATION,
    PROPERTY_CONSTRAINT_VIOLATION,
    OCCURENCE_CONSTRAINT_VIOLATION,
    TYPE_CONSTRAINT_VIOLATION,
    GENERIC_ERROR,
)


def canonical(code):
    """The 1.6 spelling of an error code received from a peer (or GenericError if unknown)."""
    if code == "OccurrenceConstraintViolation":
        return OCCURENCE_CONSTRAINT_VIOLATION
    # OCPP 2.0 renamed FormationViolation; some 1.6 peers send the new name.
    if code == "FormatViolation":
        return FORMATION_VIOLATION
    return code if code in CODES else GENERIC_ERROR


class OCPPError(Exception):
    """An error answered as CALLERROR [4, id, code, description, details]."""

    def __init__(self, code, description="", details=None):
        super().__init__(code, description)
        self.code = code
        self.description = description
        self.details = details if details is not None else {}

    def __str__(self):
        return self.code + (": " + self.description if self.description else "")


# Every request a central system may send to a charge point: OCPP 1.6 (19 requests in six
# feature profiles) and the OCPP 1.6 Security Whitepaper (7).
KNOWN = frozenset(
    (
        # Core
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "DataTransfer",
        "GetConfiguration",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "Reset",
        "UnlockConnector",
        # FirmwareManagement
        "GetDiagnostics",
        "UpdateFirmware",
        # LocalAuthListManagement
        "GetLocalListVersion",
        "SendLocalList",
        # Reservation
        "CancelReservation",
        "ReserveNow",
        # SmartCharging
        "ClearChargingProfile",
        "GetCompositeSchedule",
        "SetChargingProfile",
        # RemoteTrigger
        "TriggerMessage",
        # Security Whitepaper
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    )
)
# Name used in docs/ARCHITECTURE.md: actions that exist (→ NotSupported when unhandled).
SUPPORTED = KNOWN

HANDLERS = {}  # action -> handler(cp, payload) -> dict
OFFERED = {}  # action -> firmware/ops module name, imported on the action's first CALL
AFTER = {}  # action -> after(cp, payload, response)
SCHEMAS = {}  # action -> spec string overriding request_specs.REQUEST (rarely needed)
LOADED = {}  # action -> [firmware/ops module the router imported, ticks_ms of its last done()]
IDLE_MS = 60000  # a module unused this long is dropped (sweep)
# Stateless helpers of rare requests (certificates, firmware and log transfers), imported by
# their handlers and tasks when needed and dropped by sweep() whenever no CALL is in hand:
# a task still running one keeps what it references, the next user imports it anew. None is
# imported at the top of a module that stays (that would keep a second copy alive). So are
# the message modules of rare outgoing messages (constants and a send()).
HELPERS = ("xfer", "ftp", "httpfile", "bundle", "x509", "der", "pem", "p256", "csr",
           "rsa_verify", "certsig",
           "wsbig", "wsstream", "wsfar", "wslist", "firmware.firmware_update.install",
           "firmware.firmware_update.signed",
           "firmware.firmware_update.diagnostics", "firmware.security.certs",
           "firmware.security.cert_admin",
           "firmware.security.identity", "firmware.security.getlog",
           "firmware.ops.sign_certificate", "firmware.ops.firmware_status_notification",
           "firmware.ops.boot_notification",
           "firmware.ops.diagnostics_status_notification",
           "firmware.ops.log_status_notification",
           "firmware.ops.signed_firmware_status_notification")


def on(action, schema=None):
    """Decorator: fn(cp, payload) -> response payload answers CALLs of `action`."""

    def deco(fn):
        HANDLERS[action] = fn
        if schema is not None:
            SCHEMAS[action] = schema
        return fn

    return deco


def after(action):
    """Decorator: fn(cp, payload, response) runs after the CALLRESULT for `action` is sent."""

    def deco(fn):
        AFTER[action] = fn
        return fn

    return deco


def offer(names):
    """A feature offers its messages (firmware/ops module names, snake_case of the action):
    each module is imported on the first CALL of its action, so a message the central
    system never sends costs no heap."""
    for name in names:
        OFFERED["".join(w[:1].upper() + w[1:] for w in name.split("_"))] = name


def lookup(action):
    """The handler for `action`, or raise the OCPPError the CALL must be answered with. On a
    tight() heap what the last requests left idle goes first (_idle_go): a task one spawned
    (ExtendedTriggerMessage's SignCertificate) may have ended since its done(), and this
    CALL may be the largest (the CertificateSigned that follows it)."""
    if tight():
        from compat import ticks_ms

        _idle_go(ticks_ms())
    fn = HANDLERS.get(action)
    if fn is not None:
        if action in LOADED:
            LOADED[action][1] = None  # in hand again until done(): sweep and shed keep it
        return fn
    name = OFFERED.get(action)
    if name is not None:
        mod = roomy(__import__, "firmware.ops." + name, None, None, ("RESIDENT",))
        fn = HANDLERS.get(action)  # registered by the import (and its after-handler)
        if fn is not None:
            if not getattr(mod, "RESIDENT", False):
                LOADED[action] = [name, None]  # in use until done()
            return fn
    if action in KNOWN:
        raise OCPPError(NOT_SUPPORTED, action + " not supported")
    raise OCPPError(NOT_IMPLEMENTED, "unknown action " + action)


def done(action, now):
    """A CALL of `action` is answered (its after-handler has run) at ticks_ms `now`: the
    message module the router imported for it is dropped by sweep() once no CALL of that
    action came for IDLE_MS, so a request the central system sends once a month holds no
    heap in between (from .mpy files: its bytecode) while one it sends every few seconds
    (a load manager's SetChargingProfile) is not imported again each time. On a tight()
    heap it goes at once, with every other idle one and what the features in SHED hold
    idle: the central system's next request, which may follow within milliseconds, needs
    the room (the app sweeps only every second).
    Returns what tight() said when it asked (an action it loaded), else None."""
    if action in LOADED:
        LOADED[action][1] = now
        t = tight()
        if t:
            _idle_go(now)
        return t
    return None


def in_hand(actions=None):
    """True while a CALL of a message module the router loaded is being handled (a CALL in
    hand: an async handler may still use its module and the helpers); with `actions`
    (hands()), only a CALL of one of those counts."""
    for a in LOADED:
        if LOADED[a][1] is None and (actions is None or a in actions):
            return True
    return False


def hands():
    """The actions whose CALL is in hand now (a tuple, usually empty or of one)."""
    return tuple(a for a in LOADED if LOADED[a][1] is None)


def tight():
    """Less than a quarter of the heap free (MicroPython; never on CPython). One scan of the
    heap's allocation table (gc.mem_free): the heap's size is taken once."""
    import gc

    free = getattr(gc, "mem_free", None)
    if free is None:
        return False
    f = free()
    if not _HEAP[0]:
        _HEAP[0] = f + gc.mem_alloc()
    return f * 4 < _HEAP[0]


_HEAP = [0]  # bytes of the heap (MicroPython's never changes size)


def sweep(now, idle_ms=None):
    """Drop the modules of done() actions idle for idle_ms (the app calls it every second):
    their handlers and sys.modules entries go. Without idle_ms: IDLE_MS, or at once while
    the heap is tight() (a burst of the central system's rare requests left their modules
    behind, and the next one, the largest perhaps, needs the room). Modules with state that
    outlives the answer (a task in progress, a request kept for the after-handler) say
    RESIDENT = True and are never dropped. What a running handler or task still references
    lives on until done. Returns the idle_ms it used (the app's other sweeps follow it)."""
    from compat import ticks_diff

    if idle_ms is None:
        idle_ms = 0 if tight() else IDLE_MS
    for action in [a for a in LOADED if LOADED[a][1] is not None
                   and ticks_diff(now, LOADED[a][1]) >= idle_ms]:
        _drop(action, LOADED.pop(action)[0])
    if not in_hand():  # an async handler may be using the helpers
        for name in HELPERS:
            _forget(name)
    for i in range(len(_TASKS) - 1, -1, -1):  # a done task holds its coroutine's frame,
        if _TASKS[i].done():  # and so its dropped module, until it is let go
            _TASKS.pop(i)
    return idle_ms


_TASKS = []  # tasks message modules started after their answers (spawn)


def spawn(coro):
    """A task a message module starts after its answer (a triggered message, a status to
    send), referenced here (STYLE.md: every task referenced) so that the module need not stay
    loaded for it: dropped meanwhile, the task keeps what it uses until it ends."""
    import asyncio

    _TASKS[:] = [t for t in _TASKS if not t.done()]
    t = asyncio.create_task(coro)
    _TASKS.append(t)
    return t


# What features hold while idle and let go when shed() asks, as their own sweeps do on a
# tight heap (the authorization, the lazy API keys): name -> fn(), never raising.
SHED = {}


def shed():
    """Short of memory: drop at once every message module and helper no CALL is using
    (not only those idle for a minute), and what the features in SHED hold idle, then
    collect."""
    import gc

    from compat import ticks_ms

    _idle_go(ticks_ms())
    gc.collect()


def room():
    """Before a long frame is read (lib/ws.py's `room`): on a tight() heap, shed() at once.
    A burst of the central system's requests (SignCertificate's CSR, then the
    CertificateSigned) comes faster than the app's sweep each second, and the frame cannot
    be read twice."""
    if tight():
        shed()


def _idle_go(now):
    # What shed() lets go; done() too on a tight heap: the central system's requests may
    # come one after the other faster than the app's sweep each second, and what one
    # loaded (the authorization for a SendLocalList) must not be in the next one's way.
    sweep(now, 0)
    for name in SHED:
        SHED[name]()


def roomy(fn, *args):
    """fn(*args), once more after shed() when it ran out of memory: for steps that change
    nothing before they return (parsing a frame, importing a module, checking a
    certificate). A second MemoryError propagates."""
    try:
        return fn(*args)
    except MemoryError:
        shed()
        return fn(*args)


def _drop(action, name):
    HANDLERS.pop(action, None)
    AFTER.pop(action, None)
    SCHEMAS.pop(action, None)
    _forget("firmware.ops." + name)


def forget(*names):
    """Helpers (HELPERS) a step is done with, let go in the middle of a CALL that still has
    a long way to go: whoever holds one keeps it, the next user imports it anew."""
    for name in names:
        _forget(name)
