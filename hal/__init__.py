"""The hardware layer: hal/base.py documents the interfaces (not imported by the drivers)."""


def board_defaults(**kw):
    """A complete `board` dict: defaults for a 3-phase 11 kW socket board, overridden by kw."""
    b = {
        "max_current": 16,
        "phases": 3,
        "model_kw": 11,
        "meter": "none",
        "has_relay_feedback": False,
        "has_lock": False,
        "has_pp": False,
        "ventilation": False,
    }
    b.update(kw)
    return b
