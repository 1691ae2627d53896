"""Ops that create tensors: ranges, constants, identity matrices, windows (`keras.ops.numpy`)."""
import math

import torch

from plexus.ops.common import t
from plexus.ops.dtypes import convert_to_tensor, floatx, result_type, torch_dtype
from plexus.ops.table import op


def _dtype(dtype, default=None):
    return torch_dtype(dtype if dtype is not None else (default or floatx()))


def _device():
    """Inside a layer's call, the device of its data (a shape trace's device while tracing);
    else None, torch's default device, as Keras creates tensors on its current device."""
    from plexus.layers.layer import current_call_device  # noqa: (layers import the ops)
    return current_call_device()


def _shape(shape):
    return (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)


@op("numpy", "Zeros", call=())
def zeros(shape, dtype=None):
    """A tensor of zeros of `shape` (`floatx` by default)."""
    return torch.zeros(_shape(shape), dtype=_dtype(dtype), device=_device())


@op("numpy", "Ones", call=())
def ones(shape, dtype=None):
    """A tensor of ones of `shape`."""
    return torch.ones(_shape(shape), dtype=_dtype(dtype), device=_device())


@op("numpy", "Empty", call=())
def empty(shape, dtype=None):
    """An uninitialised tensor of `shape` (here: zeros, so results are reproducible)."""
    return torch.zeros(_shape(shape), dtype=_dtype(dtype), device=_device())


@op("numpy", "Full", ("fill_value",))
def full(shape, fill_value, dtype=None):
    """A tensor of `shape` (`floatx` unless `dtype` is given) filled with `fill_value`."""
    value = t(fill_value).to(_dtype(dtype))
    device = _device()
    if device is not None:
        value = value.to(device)
    return torch.broadcast_to(value, _shape(shape)).clone()


@op("numpy", "ZerosLike")
def zeros_like(x, dtype=None):
    """Zeros of `x`'s shape (and dtype, unless `dtype` is given)."""
    x = t(x)
    return torch.zeros_like(x, dtype=None if dtype is None else torch_dtype(dtype))


@op("numpy", "OnesLike")
def ones_like(x, dtype=None):
    """Ones of `x`'s shape (and dtype, unless `dtype` is given)."""
    x = t(x)
    return torch.ones_like(x, dtype=None if dtype is None else torch_dtype(dtype))


@op("numpy", "EmptyLike")
def empty_like(x, dtype=None):
    """A tensor of `x`'s shape (zeros here)."""
    return zeros_like.__wrapped__(x, dtype)


@op("numpy", "FullLike", "x,fill_value")
def full_like(x, fill_value, dtype=None):
    """A tensor of `x`'s shape filled with `fill_value`."""
    x = t(x)
    dt = x.dtype if dtype is None else torch_dtype(dtype)
    return torch.broadcast_to(t(fill_value).to(dt).to(x.device), x.shape).clone()


@op("numpy", "Array")
def array(x, dtype=None):
    """A tensor from `x` (a tensor, a NumPy array, a number or nested lists)."""
    return convert_to_tensor(x, dtype)


@op("numpy", "Arange", ("start", "stop", "step"))
def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in `[start, stop)` (`arange(n)` is `0 .. n-1`)."""
    if stop is None:
        start, stop = 0, start
    if step is None:
        step = 1
    if dtype is None:
        kinds = [type(v) if isinstance(v, (int, float)) else t(v).dtype for v in (start, stop, step)]
        dtype = result_type(*kinds)
    dt = torch_dtype(dtype)
    values = [v.item() if isinstance(v, torch.Tensor) else v for v in (start, stop, step)]
    return torch.arange(*values, dtype=dt, device=_device())


def _endpoints(start, stop):
    return t(start), t(stop)


@op("numpy", "Linspace", "start,stop")
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """`num` evenly spaced values from `start` to `stop` (included when `endpoint`);
    tensors `start`/`stop` give one sequence per element along `axis`."""
    a, b = _endpoints(start, stop)
    dt = _dtype(dtype)
    work = torch.float64 if dt is torch.float64 else torch.float32
    a, b = torch.broadcast_tensors(a.to(work), b.to(work))
    div = (num - 1) if endpoint else num
    steps = torch.arange(num, dtype=work)
    shape = (num,) + (1,) * a.ndim
    step = (b - a) / div if div > 0 else torch.full_like(a, float("nan"))
    out = a.unsqueeze(0) + steps.reshape(shape) * step.unsqueeze(0)
    if endpoint and num > 1:
        out[-1] = b
    out = torch.movedim(out, 0, axis).to(dt)
    return (out, step.to(dt)) if retstep else out


@op("numpy", "Logspace", "start,stop")
def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0):
    """`base ** linspace(start, stop)`."""
    exps = linspace.__wrapped__(start, stop, num, endpoint, False, "float32", axis)
    return torch.pow(torch.as_tensor(base, dtype=exps.dtype), exps).to(_dtype(dtype))


@op("numpy", "Geomspace", "start,stop")
def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """`num` values spaced evenly on a log scale from `start` to `stop`."""
    a, b = _endpoints(start, stop)
    a, b = a.double(), b.double()
    sign = torch.sign(a)
    exps = linspace.__wrapped__(torch.log10(a.abs()), torch.log10(b.abs()), num, endpoint,
                                False, "float64", 0)
    out = sign * torch.pow(10.0, exps)
    if num > 0:
        out[0] = a
        if endpoint and num > 1:
            out[-1] = b
    return torch.movedim(out, 0, axis).to(_dtype(dtype))


@op("numpy", "Eye", call=())
def eye(N, M=None, k=0, dtype=None):  # noqa: N803 (Keras's argument names)
    """A 2-D tensor with ones on diagonal `k` and zeros elsewhere."""
    M = N if M is None else M  # noqa: N806
    device = _device()
    return torch.ones(N, M, dtype=_dtype(dtype), device=device).tril(k).triu(k) if N and M \
        else torch.zeros(N, M, dtype=_dtype(dtype), device=device)


@op("numpy", "Identity", call=())
def identity(n, dtype=None):
    """The `n x n` identity matrix."""
    return torch.eye(n, dtype=_dtype(dtype), device=_device())


@op("numpy", "Tri", call=())
def tri(N, M=None, k=0, dtype=None):  # noqa: N803
    """Ones at and below diagonal `k`, zeros above."""
    M = N if M is None else M  # noqa: N806
    return torch.ones(N, M, dtype=_dtype(dtype), device=_device()).tril(k)


# ------------------------------------------------------------------------------ windows
def _window(x):
    n = int(x.item()) if isinstance(x, torch.Tensor) else int(x)
    return n, torch.arange(n, dtype=torch.float64)


def _finish(w):
    return w.to(torch_dtype(floatx()))


@op("numpy", "Bartlett")
def bartlett(x):
    """The Bartlett (triangular) window of `x` points."""
    n, i = _window(x)
    if n == 1:
        return _finish(torch.ones(1, dtype=torch.float64))
    return _finish(1 - torch.abs(2 * i / (n - 1) - 1))


@op("numpy", "Blackman")
def blackman(x):
    """The Blackman window of `x` points."""
    n, i = _window(x)
    if n == 1:
        return _finish(torch.ones(1, dtype=torch.float64))
    a = 2 * math.pi * i / (n - 1)
    return _finish(0.42 - 0.5 * torch.cos(a) + 0.08 * torch.cos(2 * a))


@op("numpy", "Hamming")
def hamming(x):
    """The Hamming window of `x` points."""
    n, i = _window(x)
    if n == 1:
        return _finish(torch.ones(1, dtype=torch.float64))
    return _finish(0.54 - 0.46 * torch.cos(2 * math.pi * i / (n - 1)))


@op("numpy", "Hanning")
def hanning(x):
    """The Hann window of `x` points."""
    n, i = _window(x)
    if n == 1:
        return _finish(torch.ones(1, dtype=torch.float64))
    return _finish(0.5 - 0.5 * torch.cos(2 * math.pi * i / (n - 1)))


@op("numpy", "Kaiser")
def kaiser(x, beta):
    """The Kaiser window of `x` points with shape parameter `beta`."""
    n, i = _window(x)
    if n == 1:
        return _finish(torch.ones(1, dtype=torch.float64))
    r = 2 * i / (n - 1) - 1
    b = torch.tensor(float(beta), dtype=torch.float64)
    return _finish(torch.special.i0(b * torch.sqrt(1 - r * r)) / torch.special.i0(b))
