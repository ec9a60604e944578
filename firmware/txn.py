"""Service placeholder: replaced by its owner. attach(cp) wires the service into the
charge point and returns the coroutines the app runs as tasks."""


def attach(cp):
    return []
