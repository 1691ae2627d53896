"""What a load needs everywhere: the caller's objects, `safe_mode`, the file name for messages,
and checks on names and shapes read from files."""
import contextlib
import contextvars
import math
from collections.abc import Mapping

from plexus.saving.errors import LoadError

MAX_NAME_LENGTH = 512

_context = contextvars.ContextVar("plexus_load_context", default=None)


class LoadContext:
    """What a load needs everywhere: the caller's objects, `safe_mode`, the file for messages."""

    def __init__(self, custom_objects=None, safe_mode=True, source=None):
        check_custom_objects(custom_objects)
        self.custom_objects = dict(custom_objects or {})
        self.safe_mode = safe_mode
        self.source = source

    def where(self):
        return f" in {self.source}" if self.source else ""


def check_custom_objects(custom_objects):
    """`custom_objects` must map names to classes or functions; say so when it does not."""
    if custom_objects is None:
        return
    if not isinstance(custom_objects, Mapping):
        raise TypeError(
            "custom_objects must be a dict mapping names to your classes and functions, such as "
            f"custom_objects={{'Scale': Scale}}; received a {type(custom_objects).__name__}: "
            f"{str(custom_objects)[:80]}."
        )
    for key in custom_objects:
        if not isinstance(key, str):
            raise TypeError(
                "custom_objects keys must be the names used in the file (strings), such as "
                f"custom_objects={{'Scale': Scale}}; received the key {str(key)[:80]!r} of type "
                f"{type(key).__name__}."
            )


@contextlib.contextmanager
def load_context(custom_objects=None, safe_mode=True, source=None):
    """Make `custom_objects`, `safe_mode` and the file name visible to nested `from_config`s."""
    outer = _context.get()
    if outer is not None:
        merged = {**outer.custom_objects, **(custom_objects or {})}
        ctx = LoadContext(merged, safe_mode and outer.safe_mode, source or outer.source)
    else:
        ctx = LoadContext(custom_objects, safe_mode, source)
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


def custom_object_scope(custom_objects):
    """`with custom_object_scope({"Scale": Scale}): load_model(...)`: extra objects for every
    load inside the block (as passing `custom_objects=` to each)."""
    return load_context(custom_objects, True)


CustomObjectScope = custom_object_scope


def current_context():
    return _context.get() or LoadContext()


def check_name(name, what="layer name"):
    """Names from files are plain labels: bounded, printable, without path separators."""
    ctx = current_context()
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH or "/" in name \
            or "\\" in name or name in (".", "..") or not name.isprintable():
        raise LoadError(
            f"Invalid {what} {str(name)[:80]!r}{ctx.where()}: names must be non-empty printable "
            f"strings of at most {MAX_NAME_LENGTH} characters without '/' or '\\'. The file is "
            "corrupt or was crafted; it was not loaded."
        )
    return name


def check_shape(shape, what):
    """Refuse shapes that are not lists of non-negative ints or None."""
    ctx = current_context()
    if not isinstance(shape, (list, tuple)) or len(shape) > 32:
        raise LoadError(f"Invalid shape {str(shape)[:80]} for {what}{ctx.where()}.")
    for d in shape:
        if d is not None and (not isinstance(d, int) or isinstance(d, bool) or d < 0):
            raise LoadError(f"Invalid shape {list(shape)} for {what}{ctx.where()}.")
    return tuple(shape)


def element_count(shape):
    return math.prod(d for d in shape if d is not None)
