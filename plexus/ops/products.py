"""Products and correlations (`keras.ops.numpy`): matmul, dot, tensordot, einsum, ..."""
import torch
import torch.nn.functional as F

from plexus.ops.common import pair, promoted, t, tensor_list
from plexus.ops.dtypes import floatx, result_type, torch_dtype
from plexus.ops.table import op


def _int8_guard(a, b, fn):
    if a.dtype is torch.int8 and b.dtype is torch.int8:  # int8 products accumulate in int32
        return fn(a.to(torch.int32), b.to(torch.int32))
    return fn(a, b)


_PLAIN = (torch.float32, torch.bfloat16)


def _product_dtypes(a, b, both_int8_gives):
    """(result dtype, compute dtype) of Keras's matmul/dot: `result_type` of the operands,
    computed in a dtype torch's CPU kernels take (bools as floats, float16 as float32)."""
    if a.dtype is torch.int8 and b.dtype is torch.int8:
        result = both_int8_gives
    else:
        result = torch_dtype(result_type(a.dtype, b.dtype))
    compute = result
    if result is torch.bool:
        compute = torch_dtype(floatx())
    elif result is torch.float16 and a.device.type == "cpu":
        compute = torch.float32
    return result, compute


@op("numpy", "Matmul", "x1,x2")
def matmul(x1, x2):
    """Matrix product (batched over leading axes; 1-D operands as vectors); two int8
    operands give int32."""
    if type(x1) is torch.Tensor and type(x2) is torch.Tensor and x1.dtype is x2.dtype and \
            x1.dtype in _PLAIN:  # the common case: same float dtype, nothing to convert
        return torch.matmul(x1, x2)
    a, b = pair(x1, x2)
    result, compute = _product_dtypes(a, b, torch.int32)
    if a.dtype is compute and b.dtype is compute:  # the common case: no casts
        return torch.matmul(a, b)
    return torch.matmul(a.to(compute), b.to(compute)).to(result)


@op("numpy", "Dot", "x1,x2")
def dot(x1, x2):
    """Dot product: scalars multiply, vectors give a scalar, matrices multiply."""
    a, b = pair(x1, x2)
    result, compute = _product_dtypes(a, b, torch.int8)
    if compute is not torch.float64 and not compute.is_floating_point:
        compute = torch_dtype(result_type(compute, float))
    a, b = a.to(compute), b.to(compute)
    if a.ndim == 0 or b.ndim == 0:
        out = torch.multiply(a, b)
    elif b.ndim > 2:
        out = torch.tensordot(a, b, dims=([a.ndim - 1], [b.ndim - 2]))
    else:
        out = torch.matmul(a, b)
    return out.to(result)


@op("numpy", "Tensordot", "x1,x2")
def tensordot(x1, x2, axes=2):
    """Sum of products over `axes` (an int: the last/first axes; or two lists of axes)."""
    a, b = promoted(x1, x2)
    if not isinstance(axes, int):
        axes = [list(ax) if isinstance(ax, (list, tuple)) else [ax] for ax in axes]
    return torch.tensordot(a, b, dims=axes)


@op("numpy", "Inner", "x1,x2")
def inner(x1, x2):
    """Inner product over the last axes."""
    a, b = promoted(x1, x2)
    return torch.inner(a, b)


@op("numpy", "Outer", "x1,x2")
def outer(x1, x2):
    """Outer product of the flattened operands."""
    a, b = pair(x1, x2)
    return torch.outer(a.reshape(-1), b.reshape(-1))


@op("numpy", "Vdot", "x1,x2")
def vdot(x1, x2):
    """Dot product of the flattened operands (the first conjugated)."""
    a, b = promoted(x1, x2)
    return torch.vdot(a.reshape(-1), b.reshape(-1))


@op("numpy", "Kron", "x1,x2")
def kron(x1, x2):
    """Kronecker product."""
    a, b = pair(x1, x2)
    return torch.kron(a, b)


@op("numpy", "Cross", "x1,x2")
def cross(x1, x2, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors (2-vectors are extended with a zero z) along the axes."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = promoted(x1, x2)
    a, b = torch.movedim(a, axisa, -1), torch.movedim(b, axisb, -1)
    two = a.shape[-1] == 2 and b.shape[-1] == 2
    if a.shape[-1] == 2:
        a = F.pad(a, (0, 1))
    if b.shape[-1] == 2:
        b = F.pad(b, (0, 1))
    a, b = torch.broadcast_tensors(a, b)
    out = torch.linalg.cross(a, b, dim=-1)
    if two:
        return out[..., 2]
    return torch.movedim(out, -1, axisc)


@op("numpy", "Einsum", ("operands",))
def einsum(subscripts, *operands, **kwargs):
    """Einstein summation over `operands` as described by `subscripts` (`"ij,jk->ik"`)."""
    xs = [t(o) for o in operands]
    dtypes = {x.dtype for x in xs}
    if dtypes == {torch.int8}:
        return torch.einsum(subscripts, *[x.to(torch.int32) for x in xs])
    if len(dtypes) > 1:
        xs = tensor_list(xs)
    return torch.einsum(subscripts, *xs)


@op("numpy", "Correlate", "x1,x2")
def correlate(x1, x2, mode="valid"):
    """Cross-correlation of two 1-D sequences (`mode`: valid, same or full)."""
    a, b = promoted(x1, x2)
    if not a.is_floating_point():
        a, b = a.float(), b.float()
    n, m = a.shape[0], b.shape[0]
    if mode == "valid":
        pad = 0
    elif mode == "same":
        pad = (m - 1) // 2 if n >= m else (m - 1) // 2
        left, right = m // 2, (m - 1) // 2
        if n < m:
            left, right = (m - 1) // 2 + (m - n) // 2, m // 2 - (m - n) // 2
        out = F.conv1d(F.pad(a[None, None], (left, right)), b[None, None]).reshape(-1)
        return out
    elif mode == "full":
        pad = m - 1
    else:
        raise ValueError(f"correlate: mode must be 'valid', 'same' or 'full'; got {mode!r}.")
    if n < m and mode == "valid":
        return F.conv1d(b[None, None], a[None, None]).reshape(-1).flip(0)
    return F.conv1d(F.pad(a[None, None], (pad, pad)), b[None, None]).reshape(-1)
