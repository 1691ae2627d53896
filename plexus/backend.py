"""Process-wide state users expect: the counters behind default layer names and the global
dtype policy, kept in one `Session` that `clear_session()` resets.

The session lives in a context variable whose default is one process-wide session, so a
setting made in one notebook cell or thread is seen by the next (as Keras users expect);
`session_scope()` gives code its own session (for example each of several threads that build
models at once). State a running forward pass keeps (nesting, recorded losses) is per thread:
see `plexus/layers/layer.py`.
"""
import contextlib
import contextvars
import re


class Session:
    """The default-name counters and the global dtype policy (None: float32)."""

    def __init__(self):
        self.name_counts = {}
        self.dtype_policy = None

    def reset(self):
        self.name_counts.clear()
        self.dtype_policy = None


_PROCESS_SESSION = Session()
_SESSION = contextvars.ContextVar("plexus_session", default=_PROCESS_SESSION)
_on_clear = []  # functions clear_session() also calls (registered by the modules that need it)


def session():
    """The current `Session`."""
    return _SESSION.get()


@contextlib.contextmanager
def session_scope():
    """Run a block with a fresh session of its own (name counters, dtype policy)."""
    token = _SESSION.set(Session())
    try:
        yield _SESSION.get()
    finally:
        _SESSION.reset(token)


def to_snake_case(name):
    """`Conv2D` -> `conv2d`, `MaxPooling1D` -> `max_pooling1d`, `LSTM` -> `lstm`,
    `ConvLSTM2D` -> `conv_lstm2d` (Keras's rule, so default names and file paths agree)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def unique_name(prefix):
    """Return `prefix`, then `prefix_1`, `prefix_2`... as Keras names layers."""
    counts = session().name_counts
    count = counts.get(prefix, 0)
    counts[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session():
    """Reset the default-name counters (`dense`, `dense_1`, ... start again), the global
    dtype policy (back to `"float32"`) and the losses layers recorded in their last calls."""
    session().reset()
    for fn in _on_clear:
        fn()


def floatx():
    return "float32"
