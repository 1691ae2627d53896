"""Size limits checked before memory is allocated for anything a file asks for.

While a file is being loaded, every weight a layer creates is checked here first, so a config
that asks for a `Dense(10**12)` is refused instead of exhausting memory.

`MAX_WEIGHT_ELEMENTS` (2**31, 8 GiB of float32) caps one weight; `MAX_TOTAL_ELEMENTS` (2**33,
32 GiB of float32) caps all the weights of one loaded model. Raise them (module attributes) if
you really load larger models.
"""
import contextlib
import contextvars
import math

MAX_WEIGHT_ELEMENTS = 1 << 31
MAX_TOTAL_ELEMENTS = 1 << 33
# Bytes: one member of a .keras archive, and the config JSON text.
MAX_MEMBER_BYTES = 1 << 36
MAX_CONFIG_BYTES = 64 << 20

_budget = contextvars.ContextVar("plexus_weight_budget", default=None)


class _Budget:
    def __init__(self, source):
        self.source = source
        self.used = 0


@contextlib.contextmanager
def loading(source=None):
    """Count and cap weight allocations made while loading `source`."""
    if _budget.get() is not None:
        yield
        return
    token = _budget.set(_Budget(source))
    try:
        yield
    finally:
        _budget.reset(token)


def check_weight_size(layer_name, weight_name, shape):
    """Refuse a weight that would be absurdly large, while a file is being loaded."""
    budget = _budget.get()
    if budget is None:
        return
    from plexus.saving.errors import LoadError
    count = math.prod(shape)
    where = f" in {budget.source}" if budget.source else ""
    if count > MAX_WEIGHT_ELEMENTS:
        raise LoadError(
            f"Refusing to create weight {weight_name!r} of layer {layer_name!r} with shape "
            f"{tuple(shape)} ({count} elements){where}: one weight may hold at most "
            f"{MAX_WEIGHT_ELEMENTS} elements while loading a file (plexus.saving.limits."
            "MAX_WEIGHT_ELEMENTS). The config asks for an absurd size; the file is corrupt or "
            "hostile."
        )
    budget.used += count
    if budget.used > MAX_TOTAL_ELEMENTS:
        raise LoadError(
            f"Refusing to create weight {weight_name!r} of layer {layer_name!r}{where}: the model "
            f"would exceed {MAX_TOTAL_ELEMENTS} weight elements in total "
            "(plexus.saving.limits.MAX_TOTAL_ELEMENTS)."
        )
