"""How data given to a model becomes tensors: the one standardisation that calls (`model(x)`),
`fit`, `evaluate` and `predict` share.

A value for several named slots (a model's inputs, its outputs' targets or sample weights) may
be one array, a list or tuple in order, or a dict by name. A dict that lacks a name is an
error; names a dict has beyond the expected ones are ignored with a warning, as Keras does.
"""
import warnings

import numpy as np
import torch

from plexus.graph.tensor import KerasTensor


def is_array(x):
    """Whether `x` is one array (NumPy, torch, or anything with `__array__`), not a structure."""
    return isinstance(x, (np.ndarray, torch.Tensor, KerasTensor)) or (
        hasattr(x, "__array__") and not isinstance(x, (list, tuple, dict, str)))


def flatten_named(value, names, what, owner, slot=None):
    """`value` (one array, a list/tuple in order, or a dict by name) as a list in the order of
    `names`. `what` names the value in messages ("input", "target", "sample_weight"), `slot`
    what the names name ("input", "output"), `owner` the model."""
    slot = slot or what
    n = len(names)
    if isinstance(value, dict):
        missing = [k for k in names if k not in value]
        if missing:
            raise ValueError(
                f"Model {owner!r}: the {what} dict is missing "
                f"{', '.join(repr(k) for k in missing)}. It expects keys {list(names)} (its "
                f"{slot} names); received keys {list(value)}.")
        extra = [k for k in value if k not in names]
        if extra:
            warnings.warn(
                f"Model {owner!r} ignores {what} keys {extra}; it expects {list(names)}.",
                stacklevel=4)
        return [value[k] for k in names]
    if isinstance(value, (list, tuple)):
        if n == 1 and not (len(value) == 1 and (is_array(value[0]) or value[0] is None)):
            if value and is_array(value[0]):
                raise ValueError(
                    f"Model {owner!r} expects 1 {slot} ({names[0]}), but the {what} given is a "
                    f"{type(value).__name__} of {len(value)} arrays. Pass one array.")
            return [value]  # nested lists of numbers: one array
        if len(value) != n:
            raise ValueError(
                f"Model {owner!r} expects {n} {slot}(s) ({', '.join(names)}), but the {what} given "
                f"is a {type(value).__name__} of {len(value)}. Pass one array per {slot}, in "
                "that order, or a dict keyed by name.")
        return list(value)
    if n != 1:
        raise ValueError(
            f"Model {owner!r} expects {n} {slot}s ({', '.join(names)}), but the {what} given is a "
            f"single array. Pass a list with one array per {slot}, or a dict keyed by name.")
    return [value]


def to_tensor(x, device=None, dtype=None, int_ok=True, what="data"):
    """One array-like as a tensor on `device`: cast to `dtype` when given (integers pass when
    `int_ok`), else float64 and bool become float32."""
    if isinstance(x, KerasTensor):
        raise TypeError(
            f"{what} is a symbolic tensor (from plexus.Input or a layer). Calling a model on "
            "a mix of symbolic tensors and data, or passing symbolic tensors to fit/evaluate/"
            "predict, is not supported: pass real data (NumPy arrays or torch tensors).")
    if not isinstance(x, torch.Tensor):
        try:
            arr = np.asarray(x)
        except Exception as e:  # noqa: BLE001 - report what could not be read
            raise TypeError(f"Could not read {what} as an array: {e}") from e
        if arr.dtype == object:
            raise TypeError(
                f"{what} could not be turned into a numeric array (it has dtype object: ragged "
                "lists or mixed types). Pad sequences to one length and pass a NumPy array.")
        x = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype is not None:
        if x.dtype != dtype and not (int_ok and not x.is_floating_point()
                                     and x.dtype != torch.bool):
            x = x.to(dtype)
    elif x.dtype == torch.float64 or x.dtype == torch.bool:
        x = x.float()
    if device is not None and x.device != device:
        x = x.to(device, non_blocking=x.is_pinned())
    return x


def string_array(x, name):
    """Data for an `Input(dtype="string")`: a NumPy array of str/bytes."""
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype.kind not in "USO":
        raise TypeError(
            f"Input {name!r} has dtype 'string', but received an array of dtype {arr.dtype}. "
            "Pass text as a NumPy array (or list) of str or bytes.")
    return arr


def adjust_rank(x, expected):
    """Data one rank off an input of shape `expected` whose (or whose data's) last size is 1
    gets that axis added or dropped, as Keras does (`Input(shape=(1,))` takes shape (n,))."""
    if len(x.shape) == len(expected) - 1 and expected and expected[-1] == 1:
        return x[..., None]
    if len(x.shape) == len(expected) + 1 and x.shape[-1] == 1:
        return x[..., 0]
    return x


def check_shape(expected, received, name, owner):
    """ValueError unless `received` fits `expected` (None matches any size)."""
    ok = len(received) == len(expected) and all(
        e is None or v is None or e == v for e, v in zip(expected, received))
    if not ok:
        raise ValueError(
            f"Input {name!r} of model {owner!r} expects arrays of shape {tuple(expected)} "
            f"(None: any size), but received shape {tuple(received)}.")
