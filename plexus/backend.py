"""`keras.backend`'s functions: the settings of `plexus.config`, `clear_session`, dtype helpers,
and the counters behind default layer names.

    import plexus as keras
    keras.backend.epsilon()            # 1e-07
    keras.backend.clear_session()      # names start again at `dense`
"""
import gc
import re

from plexus.config import (  # noqa: F401  (keras.backend re-exports these)
    backend, epsilon, floatx, image_data_format, set_epsilon, set_floatx, set_image_data_format,
    standardize_data_format,
)
from plexus.graph.tensor import is_keras_tensor, standardize_dtype  # noqa: F401

_name_counts = {}
_uids = {}


def to_snake_case(name):
    """`Conv2D` -> `conv2d`, `MaxPooling1D` -> `max_pooling1d`, `LSTM` -> `lstm`."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def unique_name(prefix):
    """Return `prefix`, then `prefix_1`, `prefix_2`... as Keras names layers."""
    count = _name_counts.get(prefix, 0)
    _name_counts[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def get_uid(prefix=""):
    """1, 2, 3, ... on successive calls with the same `prefix` (until `clear_session`)."""
    _uids[prefix] = _uids.get(prefix, 0) + 1
    return _uids[prefix]


def clear_session(free_memory=True):
    """Reset the state plexus keeps for a session, as Keras's `clear_session`.

    Default layer names start again (`dense`, `dense_1`, ...); the global dtype policy goes back
    to `floatx()`; `enable_unsafe_deserialization` and `disable_flash_attention` are undone;
    torch.compile's caches are dropped. Unseeded random draws follow torch's global generator,
    which `plexus.utils.set_random_seed` (not `clear_session`) seeds.
    `floatx`, `epsilon` and `image_data_format` keep their values, as in Keras.

    Args:
        free_memory: also run Python's garbage collector (slower; frees deleted models now).
    """
    _name_counts.clear()
    _uids.clear()
    from plexus import config
    from plexus.mixed_precision import policy  # noqa: (imported late: it needs plexus.graph)
    policy._reset()
    config._reset_session()
    import torch._dynamo
    torch._dynamo.reset()
    if free_memory:
        gc.collect()


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
