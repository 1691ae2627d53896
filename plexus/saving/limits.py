"""Limits on what loading a file may cost, checked before the cost is paid.

One `Budget` per load counts the bytes of every allocation the load makes for the file: the
weights its layers create, the arrays read from HDF5, the staged copies of both, the
optimizer's slots. A file can only justify what it holds: once its HDF5 part has been scanned
(`h5.scan`), a load may allocate at most `BUDGET_FACTOR` times the bytes of numbers stored in
it plus `BUDGET_ALLOWANCE_BYTES`, so a config that asks for a huge layer next to a tiny weights
file is refused before the layer's weights exist. Every dataset's declared size is compared with
the bytes it really occupies (`MAX_COMPRESSION_RATIO` for compressed ones) during the scan.

Without a file (`model_from_json`), the absolute caps still hold: `MAX_WEIGHT_ELEMENTS` (2**31)
for one weight and `MAX_TOTAL_ELEMENTS` (2**33) for a whole model. Configs are capped in depth
(`MAX_CONFIG_DEPTH`), layers (`MAX_LAYERS`) and layer calls (`MAX_NODES`), HDF5 files in objects
(`MAX_H5_OBJECTS`). All are module attributes: raise them if you really load larger models.
"""
import contextlib
import contextvars
import json
import math

from plexus.saving.errors import LoadError

MAX_WEIGHT_ELEMENTS = 1 << 31
MAX_TOTAL_ELEMENTS = 1 << 33
# Bytes: one member of a .keras archive, and the config JSON text.
MAX_MEMBER_BYTES = 1 << 36
MAX_CONFIG_BYTES = 64 << 20
# Nesting of JSON objects and lists in a config: a model nested in ten others (with a
# Bidirectional LSTM inside) is 42 deep.
MAX_CONFIG_DEPTH = 100
MAX_LAYERS = 20_000
MAX_NODES = 50_000
MAX_H5_OBJECTS = 1 << 18
# deflate's best ratio is about 1032:1; a dataset or zip member claiming more is a bomb.
MAX_COMPRESSION_RATIO = 1100
BUDGET_FACTOR = 8
BUDGET_ALLOWANCE_BYTES = 64 << 20

_budget = contextvars.ContextVar("plexus_load_budget", default=None)


class Budget:
    """What one load has allocated (bytes, layers, layer calls) and what it may allocate."""

    def __init__(self, source):
        self.source = source
        self.used = 0
        self.limit = None  # no file scanned yet: only the absolute caps
        self.elements = 0
        self.layers = 0
        self.nodes = 0

    def where(self):
        return f" in {self.source}" if self.source else ""

    def allow(self, file_bytes):
        """Set the limit from the bytes the file holds (numbers checked by `h5.scan`, or, before
        the scan, the declared size of the weights member); what is already taken must fit."""
        self.limit = BUDGET_ALLOWANCE_BYTES + BUDGET_FACTOR * int(file_bytes)
        if self.used > self.limit:
            raise LoadError(
                f"The model described{self.where()} has already taken {self.used} bytes for its "
                f"weights and config, but the file holds only {int(file_bytes)} bytes of numbers "
                "(plexus.saving.limits.BUDGET_FACTOR); the config asks for far larger weights "
                "than the file holds. It is corrupt or hostile."
            )

    def charge(self, nbytes, what):
        self.used += int(nbytes)
        if self.limit is not None and self.used > self.limit:
            raise LoadError(
                f"Refusing to allocate {int(nbytes)} bytes for {what}{self.where()}: the load "
                f"would take {self.used} bytes, more than the file can justify ({self.limit} "
                f"bytes: plexus.saving.limits.BUDGET_FACTOR times the bytes of numbers stored in "
                "it, plus BUDGET_ALLOWANCE_BYTES). The config asks for far larger weights than "
                "the file holds; it is corrupt or hostile."
            )


@contextlib.contextmanager
def loading(source=None):
    """Count and cap the allocations made while loading `source` (nested loads share one)."""
    outer = _budget.get()
    if outer is not None:
        yield outer
        return
    budget = Budget(source)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def current():
    """The budget of the load in progress, or None."""
    return _budget.get()


def charge(nbytes, what):
    """Charge an allocation to the load in progress (nothing outside a load)."""
    budget = _budget.get()
    if budget is not None:
        budget.charge(nbytes, what)


def check_weight_size(layer_name, weight_name, shape, itemsize=4):
    """Refuse a weight that would be absurdly large, while a file is being loaded."""
    budget = _budget.get()
    if budget is None:
        return
    count = math.prod(shape)
    what = f"weight {weight_name!r} of layer {layer_name!r} with shape {tuple(shape)}"
    if count > MAX_WEIGHT_ELEMENTS:
        raise LoadError(
            f"Refusing to create {what} ({count} elements){budget.where()}: one weight may hold "
            f"at most {MAX_WEIGHT_ELEMENTS} elements while loading a file (plexus.saving.limits."
            "MAX_WEIGHT_ELEMENTS). The config asks for an absurd size; the file is corrupt or "
            "hostile."
        )
    budget.elements += count
    if budget.elements > MAX_TOTAL_ELEMENTS:
        raise LoadError(
            f"Refusing to create {what}{budget.where()}: the model would exceed "
            f"{MAX_TOTAL_ELEMENTS} weight elements in total "
            "(plexus.saving.limits.MAX_TOTAL_ELEMENTS)."
        )
    budget.charge(count * itemsize, what)


def _count(attr, n, cap, what, where):
    budget = _budget.get()
    total = n + (getattr(budget, attr) if budget is not None else 0)
    if total > cap:
        where = where or (budget.where() if budget is not None else "")
        raise LoadError(f"The model config{where} {what} ({total}); refused "
                        f"(plexus.saving.limits.MAX_{attr.upper()}).")
    if budget is not None:
        setattr(budget, attr, total)


def count_layers(n, where=""):
    """Count `n` layers about to be created from a config; refuse more than `MAX_LAYERS`."""
    _count("layers", n, MAX_LAYERS, f"describes more than {MAX_LAYERS} layers", where)


def count_nodes(n, where=""):
    """Count `n` layer calls about to be replayed from a config; refuse more than `MAX_NODES`."""
    _count("nodes", n, MAX_NODES, f"records more than {MAX_NODES} layer calls", where)


def check_depth(value, what):
    """Refuse JSON-like data nested deeper than `MAX_CONFIG_DEPTH` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise LoadError(
                f"{what} is nested more than {MAX_CONFIG_DEPTH} levels deep; refused "
                "(plexus.saving.limits.MAX_CONFIG_DEPTH). The file is corrupt or crafted."
            )
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
    return value


def parse_json(text, what):
    """`json.loads(text)` for configs from files: size, syntax and depth checked, errors as
    `LoadError`s that name `what` (the file and member)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf8")
        except UnicodeDecodeError as e:
            raise LoadError(f"{what} is not valid JSON (not UTF-8 text: {e})") from e
    if not isinstance(text, str):
        raise LoadError(f"{what} must be JSON text; found {type(text).__name__}.")
    if len(text) > MAX_CONFIG_BYTES:
        raise LoadError(f"{what} holds {len(text)} characters, more than the limit of "
                        f"{MAX_CONFIG_BYTES} (plexus.saving.limits.MAX_CONFIG_BYTES).")
    charge(len(text), what)
    try:
        value = json.loads(text)
    except RecursionError as e:
        raise LoadError(f"{what} is nested absurdly deep; refused.") from e
    except ValueError as e:
        raise LoadError(f"{what} is not valid JSON: {str(e)[:200]}") from e
    return check_depth(value, what)
