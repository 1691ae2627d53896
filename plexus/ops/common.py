"""Small helpers the op implementations share: conversion, operand pairs, axes."""
import torch

from plexus.ops.dtypes import convert_to_tensor, floatx, result_type, torch_dtype

t = convert_to_tensor


def operands(x1, x2):
    """Operands for torch's binary kernels: a Python int or float next to a non-bool tensor
    stays a Python number (torch then treats it as Keras treats a weak type, and no tensor is
    made per call); anything else as `pair`."""
    if type(x1) is torch.Tensor:
        if type(x2) in (int, float) and x1.dtype is not torch.bool:
            return x1, x2
    elif type(x2) is torch.Tensor and type(x1) in (int, float) and x2.dtype is not torch.bool:
        return x1, x2
    return pair(x1, x2)


def pair(x1, x2):
    """Both operands as tensors; a converted operand joins the other's device."""
    a = x1 if isinstance(x1, torch.Tensor) else None
    b = x2 if isinstance(x2, torch.Tensor) else None
    if a is None:
        a = convert_to_tensor(x1)
        if b is not None and b.device.type != "cpu":
            a = a.to(b.device)
    if b is None:
        b = convert_to_tensor(x2)
        if a.device.type != "cpu":
            b = b.to(a.device)
    return a, b


def promoted(x1, x2, *extra):
    """Both operands as tensors of Keras's promoted dtype (`result_type`)."""
    if not extra and type(x1) is torch.Tensor and type(x2) is torch.Tensor and \
            x1.dtype is x2.dtype and x1.dtype not in _WIDE:
        return x1, x2
    dtype = torch_dtype(result_type(_kind(x1), _kind(x2), *extra))
    a, b = pair(x1, x2)
    return a.to(dtype), b.to(dtype)


_WIDE = (torch.float64, torch.int64, torch.uint64, torch.complex128)  # narrowed by result_type


def strong(x1, x2, *extra):
    """Both operands as tensors of `result_type` of their tensor dtypes (Python numbers made
    tensors first, so they count at full strength: `float16 tensor, 2.5` gives float32)."""
    a, b = pair(x1, x2)
    dtype = torch_dtype(result_type(a.dtype, b.dtype, *extra))
    return a.to(dtype), b.to(dtype)


def _kind(x):
    if isinstance(x, torch.Tensor):
        return x.dtype
    if isinstance(x, (bool, int, float)):
        return type(x)
    return convert_to_tensor(x).dtype


def float_tensor(x):
    """`x` as a tensor, integers and bools cast to the default float dtype."""
    x = x if isinstance(x, torch.Tensor) else convert_to_tensor(x)
    if x.is_floating_point() or x.is_complex():
        return x
    return x.to(torch_dtype(floatx()))


def narrow_float(x):
    """`x` as a tensor of `result_type(dtype, float)`: integers to floatx, float64 narrowed to
    float32 (Keras's rule for most floating reductions)."""
    x = x if isinstance(x, torch.Tensor) else convert_to_tensor(x)
    return x.to(torch_dtype(result_type(x.dtype, float)))


def floatx_dtype():
    return torch_dtype(floatx())


def axes(axis):
    """An axis argument as torch takes it: None, an int, or a tuple of ints."""
    if axis is None or isinstance(axis, int):
        return axis
    return tuple(int(a) for a in axis)


def all_axes(x, axis):
    """`axis` as a tuple of non-negative ints (every axis for None)."""
    if axis is None:
        return tuple(range(x.ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % x.ndim if x.ndim else 0 for a in axis)


def tensor_list(xs):
    """A sequence of operands as tensors on one device, promoted to one dtype."""
    first = xs[0] if len(xs) else None
    if type(first) is torch.Tensor:
        dtype = first.dtype
        if all(type(x) is torch.Tensor and x.dtype is dtype for x in xs):
            return xs  # torch itself refuses tensors on different devices
    xs = list(xs)
    if not xs:
        raise ValueError("Expected a non-empty sequence of tensors; received an empty one.")
    kinds = [_kind(x) for x in xs]
    dtype = kinds[0] if len(set(kinds)) == 1 and isinstance(kinds[0], torch.dtype) else \
        torch_dtype(result_type(*kinds))
    device = next((x.device for x in xs if isinstance(x, torch.Tensor)), None)
    out = []
    for x in xs:
        x = x if isinstance(x, torch.Tensor) else convert_to_tensor(x)
        out.append(x.to(device=device, dtype=dtype))
    return out
