"""Keras's dtype rules for ops: dtype names, type promotion, and values turned into tensors.

Promotion follows Keras 3 (`keras.backend.result_type`): a lattice in which Python scalars are
*weak* types (`int`, `float`) that take the dtype of the tensor they meet (`int32 tensor + 1.5`
is `float32`, `bfloat16 tensor * 2` stays `bfloat16`), and 64-bit results are narrowed to 32
bits (`int64` -> `int32`, `float64` -> `float32`) as on Keras's torch and JAX backends.
"""
import functools
import sys

import numpy as np
import torch

from plexus.graph.tensor import KerasTensor

_TORCH = {
    "bool": torch.bool, "uint8": torch.uint8, "uint16": torch.uint16, "uint32": torch.uint32,
    "uint64": torch.uint64, "int8": torch.int8, "int16": torch.int16, "int32": torch.int32,
    "int64": torch.int64, "bfloat16": torch.bfloat16, "float16": torch.float16,
    "float32": torch.float32, "float64": torch.float64, "complex64": torch.complex64,
    "complex128": torch.complex128,
}
_NAMES = {v: k for k, v in _TORCH.items()}
_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "int": "int32",
            "long": "int64", "short": "int16", "complex": "complex64"}
_PYTHON = {bool: "bool", int: "int32", float: "float32", complex: "complex64"}

# Each dtype points to the dtypes just above it; `int` and `float` are the weak Python types.
_EDGES = {
    "bool": ("int",), "int": ("uint8", "int8", "complex64"),
    "uint8": ("int16", "uint16"), "uint16": ("int32", "uint32"), "uint32": ("int64", "uint64"),
    "uint64": ("float",), "int8": ("int16",), "int16": ("int32",), "int32": ("int64",),
    "int64": ("float",), "float": ("bfloat16", "float16"), "bfloat16": ("float32",),
    "float16": ("float32",), "float32": ("float64", "complex64"), "float64": ("complex128",),
    "complex64": ("complex128",), "complex128": (),
}


def _closure():
    above = {}
    for start in _EDGES:
        seen, todo = {start}, [start]
        while todo:
            for up in _EDGES[todo.pop()]:
                if up not in seen:
                    seen.add(up)
                    todo.append(up)
        above[start] = frozenset(seen)
    return above


_ABOVE = _closure()
_NARROW = {"int64": "int32", "uint64": "uint32", "float64": "float32", "complex128": "complex64"}


def _setting(name, default):
    """A global setting from `plexus.config` once that module is loaded, else the default.
    (A dictionary lookup: ops read these on every call.)"""
    config = sys.modules.get("plexus.config")
    getter = getattr(config, name, None) if config is not None else None
    return getter() if getter is not None else default


def floatx():
    """The default float dtype (`plexus.config.floatx()`; "float32")."""
    return _setting("floatx", "float32")


def epsilon():
    """The fuzz factor ops add to denominators (`plexus.config.epsilon()`; 1e-7)."""
    return _setting("epsilon", 1e-7)


def image_data_format():
    """The default `data_format` of image ops (`plexus.config.image_data_format()`;
    "channels_last")."""
    return _setting("image_data_format", "channels_last")


def standardize_dtype(dtype):
    """Keras's name for a dtype given as a name, a torch/NumPy dtype or a Python type."""
    if dtype is None:
        return floatx()
    if isinstance(dtype, torch.dtype):
        name = _NAMES.get(dtype)
    elif dtype in _PYTHON:
        name = _PYTHON[dtype]
    else:
        name = getattr(dtype, "name", None) if not isinstance(dtype, str) else dtype
        if name is None:
            name = str(dtype)
        if isinstance(dtype, type) and issubclass(dtype, np.generic):
            name = np.dtype(dtype).name
        name = name.replace("torch.", "")
        name = _ALIASES.get(name, name)
    if name not in _TORCH:
        raise ValueError(f"Unknown dtype {dtype!r}. Use one of: {', '.join(_TORCH)}.")
    return name


def torch_dtype(dtype):
    """The torch dtype for a Keras dtype name (or anything `standardize_dtype` takes)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    return _TORCH[standardize_dtype(dtype)]


@functools.lru_cache(maxsize=1024)
def _join(nodes):
    common = frozenset.intersection(*(_ABOVE[n] for n in nodes))
    least = [c for c in common if common <= _ABOVE[c]]
    if len(least) != 1:
        raise ValueError(f"The dtypes {sorted(nodes)} have no common dtype to promote to. "
                         "Cast the inputs explicitly with `ops.cast`.")
    return least[0]


def _weak_name(name):
    if name == "bool":
        return name
    return "float" if "float" in name else "int" if "int" in name else "complex64"


def result_type(*dtypes):
    """The dtype Keras gives an op on inputs of `dtypes` (Python `int`/`float` are weak).

    Example:
        >>> result_type("int32", float)
        'float32'
    """
    if not dtypes:
        return floatx()
    entries = []
    for d in dtypes:
        weak = d is int or d is float
        entries.append((standardize_dtype(floatx() if d is None else d), weak))
    names = {n for n, _ in entries}
    if len(entries) == 1:
        out, weak = entries[0]
    elif len(names) == 1 and not all(w for _, w in entries):
        out, weak = entries[0][0], False
    elif all(w for _, w in entries):
        out, weak = _join(frozenset(names)), True
    else:
        out = _join(frozenset(_weak_name(n) if w else n for n, w in entries))
        weak = out in ("int", "float")
    if weak and out != "bool":
        bits = floatx()[-2:]
        out = "bool" if out == "bool" else (f"int{bits}" if out.startswith("int")
                                            else f"uint{bits}" if out.startswith("u")
                                            else f"float{bits}")
    return _NARROW.get(out, out)


def dtype_of(x):
    """Keras dtype name of a tensor, array, symbolic tensor or Python scalar (`int` weak)."""
    if isinstance(x, torch.Tensor):
        return _NAMES[x.dtype]
    if isinstance(x, KerasTensor):
        return x.dtype
    if isinstance(x, (bool, int, float, complex)):
        return type(x)
    return standardize_dtype(np.asarray(x).dtype)


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """`x` as a torch tensor: Python floats become `floatx`, ints `int32`, NumPy arrays keep
    their dtype; a torch tensor is returned as it is (cast when `dtype` is given)."""
    if sparse or ragged:
        raise ValueError("plexus.ops: sparse and ragged tensors are not supported; "
                         f"received sparse={sparse}, ragged={ragged}.")
    if isinstance(x, torch.Tensor):
        return x if dtype is None else x.to(torch_dtype(dtype))
    if isinstance(x, KerasTensor):
        raise TypeError("convert_to_tensor() was given a symbolic tensor; it has no values. "
                        "Call the op on it instead, or build a model and run it on data.")
    if dtype is not None:
        dtype = torch_dtype(dtype)
    if isinstance(x, bool):
        return torch.tensor(x, dtype=dtype or torch.bool)
    if isinstance(x, int):
        return torch.tensor(x, dtype=dtype or (torch.int32 if -2**31 <= x < 2**31 else torch.int64))
    if isinstance(x, float):
        return torch.tensor(x, dtype=dtype or torch_dtype(floatx()))
    if isinstance(x, complex):
        return torch.tensor(x, dtype=dtype or torch.complex64)
    if isinstance(x, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in x):
        out = torch.stack([convert_to_tensor(v) for v in x])
        return out if dtype is None else out.to(dtype)
    if hasattr(x, "__array__") and not isinstance(x, (list, tuple, np.ndarray)):
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        if x.dtype == np.uint32:
            x = x.astype(np.int64)
        if dtype is None and x.dtype.kind not in "biufc":
            raise TypeError(f"Cannot turn a NumPy array of dtype {x.dtype} into a tensor.")
        t = torch.from_numpy(np.ascontiguousarray(x)) if x.dtype.kind in "biufc" else None
        return t if dtype is None else t.to(dtype)
    if isinstance(x, (list, tuple)):
        flat = np.asarray(x)
        if dtype is None:
            kinds = [type(v) for v in np.ravel(np.asarray(x, dtype=object))] if flat.size else []
            dtype = torch_dtype(result_type(*kinds)) if kinds else torch_dtype(floatx())
        return torch.as_tensor(flat, dtype=dtype)
    if isinstance(x, np.generic):
        return torch.as_tensor(np.asarray(x), dtype=dtype)
    raise TypeError(f"Cannot turn a {type(x).__name__} into a tensor; expected a torch tensor, "
                    "a NumPy array, a Python number or a (nested) list of numbers.")
