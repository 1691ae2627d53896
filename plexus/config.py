"""Process-wide settings, as `keras.config`: default float type, epsilon, image data format, ...

    import plexus as keras
    keras.config.set_image_data_format("channels_first")
    keras.config.image_data_format()   # 'channels_first'

`floatx`, `epsilon`, `image_data_format`, logging, the debugging caps (`max_epochs`,
`max_steps_per_epoch`) and the thread policy of the training loops (`set_thread_policy`) live
in this module and last until changed, as in Keras; the session settings (unsafe
deserialization, flash attention, the global dtype policy) live in the session of
`plexus.backend` with the default-name counters, and `plexus.clear_session()` resets them.
"""
import os

_FLOAT_TYPES = ("bfloat16", "float16", "float32", "float64")
_DATA_FORMATS = ("channels_first", "channels_last")


def _env_int(name):
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"The environment variable {name} must be an integer; found {value!r}.")


def _check_thread_policy(value, where="set_thread_policy"):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, str) and value.strip().lower() in ("auto", "torch"):
        return value.strip().lower()
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"{where}: the thread policy must be 'auto', 'torch' or a positive "
                     f"number of threads; received {value!r}.")


# Settings that last until changed (Keras keeps these across clear_session too).
_settings = {
    "floatx": "float32",
    "epsilon": 1e-7,
    "image_data_format": "channels_last",
    "max_epochs": _env_int("KERAS_MAX_EPOCHS"),
    "max_steps_per_epoch": _env_int("KERAS_MAX_STEPS_PER_EPOCH"),
    "traceback_filtering": True,
    "interactive_logging": True,
    "thread_policy": _check_thread_policy(os.environ.get("PLEXUS_THREADS") or "auto",
                                          "the environment variable PLEXUS_THREADS"),
}


def _session():
    """The current session (`plexus.backend.Session`): its settings `clear_session()` resets."""
    from plexus import backend  # noqa: (plexus.backend imports this module)
    return backend.session()


def backend():
    """The name of the backend: always `"torch"` (plexus runs on PyTorch)."""
    return "torch"


def set_backend(backend):
    """Keras switches backends here; plexus has one, so only `"torch"` is accepted."""
    if backend != "torch":
        raise ValueError(
            f"plexus runs on PyTorch only; set_backend({backend!r}) is not possible. Use Keras "
            "itself for the 'tensorflow', 'jax' or 'numpy' backends.")


# ------------------------------------------------------------------------ floatx, epsilon
def floatx():
    """The default float type as a string (`"float32"` unless changed with `set_floatx`)."""
    return _settings["floatx"]


def set_floatx(value):
    """Set the default float type: `"bfloat16"`, `"float16"`, `"float32"` or `"float64"`.

    It is the dtype of layers created afterwards without a `dtype` (when no global dtype policy
    is set) and of floating data converted from NumPy. For mixed precision use
    `plexus.mixed_precision.set_dtype_policy("mixed_float16")` instead.
    """
    if value not in _FLOAT_TYPES:
        raise ValueError(f"Unknown `floatx` value: {value!r}. Expected one of {_FLOAT_TYPES}.")
    _settings["floatx"] = str(value)


def epsilon():
    """The fuzz factor used in numeric expressions (`1e-7` unless changed)."""
    return _settings["epsilon"]


def set_epsilon(value):
    """Set the fuzz factor used in numeric expressions (cross-entropy clipping, ...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"set_epsilon expects a number; received {value!r}.")
    _settings["epsilon"] = float(value)


# ------------------------------------------------------------------------ image data format
def image_data_format():
    """The default image data format: `"channels_last"` (the default) or `"channels_first"`."""
    return _settings["image_data_format"]


def set_image_data_format(data_format):
    """Set the data format layers use when their `data_format` argument is None.

    Args:
        data_format: `"channels_last"` (`(batch, height, width, channels)`) or
            `"channels_first"` (`(batch, channels, height, width)`).
    """
    _settings["image_data_format"] = _check_data_format(data_format)


def standardize_data_format(data_format):
    """`data_format`, checked; None gives the global default (`image_data_format()`)."""
    if data_format is None:
        return _settings["image_data_format"]
    return _check_data_format(data_format)


def _check_data_format(data_format):
    value = str(data_format).lower()
    if value not in _DATA_FORMATS:
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format!r}")
    return value


# ------------------------------------------------------------------------ debugging caps
def max_epochs():
    """The cap on `fit`'s epochs (None: no cap); also set by `KERAS_MAX_EPOCHS`."""
    return _settings["max_epochs"]


def set_max_epochs(max_epochs):
    """Cap the number of epochs `fit` runs, for quick debugging runs (None removes the cap)."""
    _settings["max_epochs"] = _check_cap(max_epochs, "max_epochs")


def max_steps_per_epoch():
    """The cap on steps per epoch (None: no cap); also set by `KERAS_MAX_STEPS_PER_EPOCH`."""
    return _settings["max_steps_per_epoch"]


def set_max_steps_per_epoch(max_steps_per_epoch):
    """Cap the steps of every epoch of `fit` / `evaluate` / `predict` (None removes the cap)."""
    _settings["max_steps_per_epoch"] = _check_cap(max_steps_per_epoch, "max_steps_per_epoch")


def _check_cap(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None; received {value!r}.")
    return value


# ------------------------------------------------------------------------ intra-op threads
def thread_policy():
    """How `fit`, `evaluate` and `predict` set torch's intra-op threads: `"auto"` (the
    default), `"torch"` or a fixed number; also set by the `PLEXUS_THREADS` variable."""
    return _settings["thread_policy"]


def set_thread_policy(policy):
    """Choose how plexus's loops (`fit`, `evaluate`, `predict`) set torch's intra-op threads.

    Args:
        policy: `"auto"` (the default): each loop picks the count per model and phase from
            the work per operation and timed steps, within the CPUs the process may use, and
            re-checks when step times jump (a busy machine); the user's own setting
            (`OMP_NUM_THREADS`, `torch.set_num_threads`) is left alone, and under `torchrun`
            each rank runs one thread. `"torch"`: plexus never touches torch's threads. A
            positive integer: the loops run with exactly that many.

    Whatever plexus sets inside a loop is restored when the loop ends.
    """
    _settings["thread_policy"] = _check_thread_policy(policy)


# ------------------------------------------------------------------------ logging, tracebacks
def enable_interactive_logging():
    """Progress bars and summaries print to stdout (the default)."""
    _settings["interactive_logging"] = True


def disable_interactive_logging():
    """Progress bars and summaries go to the `logging` module instead of stdout."""
    _settings["interactive_logging"] = False


def is_interactive_logging_enabled():
    return _settings["interactive_logging"]


def enable_traceback_filtering():
    """Kept for Keras compatibility: plexus never hides frames from tracebacks."""
    _settings["traceback_filtering"] = True


def disable_traceback_filtering():
    """Kept for Keras compatibility: plexus never hides frames from tracebacks."""
    _settings["traceback_filtering"] = False


def is_traceback_filtering_enabled():
    """The flag set by `enable/disable_traceback_filtering`. plexus tracebacks are never
    filtered (they are short), whatever its value."""
    return _settings["traceback_filtering"]


# ------------------------------------------------------------------------ session settings
def enable_unsafe_deserialization():
    """Make `safe_mode=False` the default of `load_model` and `deserialize_keras_object`.

    plexus never runs code read from a file, even then: a Lambda stored as bytecode must still
    be given as a function in `custom_objects`. Reset by `plexus.clear_session()`.
    """
    _session().unsafe_deserialization = True


def is_unsafe_deserialization_enabled():
    return _session().unsafe_deserialization


def enable_flash_attention():
    """Let attention layers use torch's fused (flash) attention kernels where they apply."""
    _session().flash_attention = None


def disable_flash_attention():
    """Keep attention layers off torch's flash attention kernels."""
    _session().flash_attention = False


def is_flash_attention_enabled():
    """False after `disable_flash_attention()`; None (the default: allowed) otherwise."""
    return _session().flash_attention


def is_nnx_enabled():
    """Always False: NNX is a JAX-backend feature."""
    return False


def dtype_policy():
    """The global dtype policy (`<DTypePolicy "float32">` unless set)."""
    from plexus.mixed_precision import policy
    return policy.global_policy()


def set_dtype_policy(policy):
    """Set the dtype policy of layers created afterwards without a `dtype`."""
    from plexus.mixed_precision import policy as _policy
    _policy.set_global_policy(policy)
