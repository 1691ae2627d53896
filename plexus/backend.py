"""`keras.backend`'s functions (the settings of `plexus.config`, `clear_session`, dtype
helpers) and the state plexus keeps for a session: the counters behind default layer names, the
global dtype policy and the session settings of `plexus.config`, in one `Session` that
`clear_session()` resets.

    import plexus as keras
    keras.backend.epsilon()            # 1e-07
    keras.backend.clear_session()      # names start again at `dense`

The session lives in a context variable whose default is one process-wide session, so a
setting made in one notebook cell or thread is seen by the next (as Keras users expect);
`session_scope()` gives code its own session (for example each of several threads that build
models at once). State a running forward pass keeps (nesting, recorded losses) is per thread:
see `plexus/layers/layer.py`.
"""
import contextlib
import contextvars
import gc
import re

from plexus.config import (  # noqa: F401  (keras.backend re-exports these)
    backend, epsilon, floatx, image_data_format, set_epsilon, set_floatx, set_image_data_format,
    standardize_data_format,
)
from plexus.graph.tensor import is_keras_tensor  # noqa: F401


class Session:
    """The default-name counters, `get_uid`'s counters, the global dtype policy (None:
    `floatx()`'s) and the session settings of `plexus.config` (unsafe deserialization, flash
    attention)."""

    def __init__(self):
        self.name_counts = {}
        self.uids = {}
        self.dtype_policy = None
        self.unsafe_deserialization = False
        self.flash_attention = None  # None: allowed (Keras's default); False: disabled

    def reset(self):
        self.__init__()


_PROCESS_SESSION = Session()
_SESSION = contextvars.ContextVar("plexus_session", default=_PROCESS_SESSION)
_on_clear = []  # functions clear_session() also calls (registered by the modules that need it)


def session():
    """The current `Session` (the process-wide one while `torch.compile` traces: it cannot read
    a context variable)."""
    import torch  # (imported by then; kept out of this module's import)
    if torch.compiler.is_compiling():
        return _PROCESS_SESSION
    return _SESSION.get()


@contextlib.contextmanager
def session_scope():
    """Run a block with a fresh session of its own (name counters, dtype policy, settings).

    Code that `torch.compile` traces inside the block reads the process-wide session instead
    (a trace cannot read a context variable): settings made in the block do not reach it."""
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


def get_uid(prefix=""):
    """1, 2, 3, ... on successive calls with the same `prefix` (until `clear_session`)."""
    uids = session().uids
    uids[prefix] = uids.get(prefix, 0) + 1
    return uids[prefix]


def clear_session(free_memory=True):
    """Reset the state plexus keeps for a session, as Keras's `clear_session`.

    Default layer names start again (`dense`, `dense_1`, ...); the global dtype policy goes back
    to `floatx()`'s; `enable_unsafe_deserialization` and `disable_flash_attention` are undone;
    the losses layers recorded in their last calls are dropped; torch.compile's caches are
    cleared. `floatx`, `epsilon` and `image_data_format` keep their values, as in Keras.
    Unseeded random draws follow torch's global generator, which
    `plexus.utils.set_random_seed` (not `clear_session`) seeds.

    Args:
        free_memory: also run Python's garbage collector (slower; frees deleted models now).
    """
    session().reset()
    for fn in _on_clear:
        fn()
    import torch._dynamo
    torch._dynamo.reset()
    if free_memory:
        gc.collect()


def standardize_dtype(dtype):
    """Keras's name for a dtype: `"float32"` for a torch, NumPy or Python type (`float`), an
    alias (`"double"`) or None (`floatx()`)."""
    from plexus.ops.dtypes import standardize_dtype as _standardize  # noqa: (ops imports us)
    return _standardize(dtype)


def is_float_dtype(dtype):
    """Whether `dtype` (a name, torch or NumPy dtype) is a floating dtype."""
    return standardize_dtype(dtype).startswith(("float", "bfloat"))


def is_int_dtype(dtype):
    """Whether `dtype` (a name, torch or NumPy dtype) is an integer dtype."""
    return standardize_dtype(dtype).startswith(("int", "uint"))


def result_type(*dtypes):
    """The dtype Keras's promotion rules give for combining `dtypes` (as `keras.backend`)."""
    from plexus.ops.dtypes import result_type as _result_type  # noqa: (plexus.ops is optional)
    return _result_type(*dtypes)
