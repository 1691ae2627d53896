"""Quantization helpers, as `keras.quantizers`: abs-max int8 quantization (`AbsMaxQuantizer`,
`abs_max_quantize`), fake quantization with a trainable range, float8 scaling, and int4
packing. They compute on torch tensors and return torch tensors.

Quantizing a whole model (`Model.quantize`, the quantization configs, GPTQ, AWQ) is not part
of plexus.
"""
import inspect

import numpy as np
import torch

from plexus.graph.tensor import torch_dtype

_EPSILON = 1e-7
_FLOAT8 = {"float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2}


def _tensor(x, dtype=None):
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    return x if dtype is None else x.to(dtype)


def _float_dtype(x):
    return x.dtype if x.is_floating_point() else torch.float32


class Quantizer:
    """Base of the quantizers: `quantizer(x)` returns quantized values (the base returns `x`).

    Args:
        output_dtype: the dtype of the quantized values.
    """

    def __init__(self, output_dtype="int8"):
        self.output_dtype = output_dtype

    def __call__(self, x):
        return x

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_config().")


def abs_max_quantize(inputs, axis, value_range=(-127, 127), dtype="int8", epsilon=_EPSILON,
                     to_numpy=False):
    """Quantize by the absolute maximum along `axis`: `scale = value_range[1] / (max|x| +
    epsilon)`, `q = clip(round(x * scale), *value_range)` cast to `dtype`.

    Returns `(q, scale)`; `scale` keeps `axis` with size 1 and the input's float dtype.
    `to_numpy=True` computes on the host with NumPy (saves device memory); same numbers.

    Example:
        >>> q, scale = abs_max_quantize(np.array([[0.5, -1.0]]), axis=-1)
        >>> q
        tensor([[  64, -127]], dtype=torch.int8)
    """
    x = _tensor(inputs)
    dtype_in = _float_dtype(x)
    if to_numpy:
        xn = x.detach().cpu().numpy()
        axis_n = tuple(axis) if isinstance(axis, (list, tuple)) else axis
        scale = np.divide(value_range[1],
                          np.add(np.max(np.abs(xn), axis=axis_n, keepdims=True), epsilon))
        out = np.clip(np.round(xn * scale), value_range[0], value_range[1]).astype(dtype)
        return torch.from_numpy(out), torch.as_tensor(scale).to(dtype_in)
    x = x.to(dtype_in)
    dims = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    scale = (value_range[1] / (x.abs().amax(dim=dims, keepdim=True) + epsilon)).to(dtype_in)
    out = torch.clamp(torch.round(x * scale), value_range[0], value_range[1])
    return out.to(torch_dtype(dtype)), scale


def abs_max_quantize_grouped_with_zero_point(inputs, block_size, value_range=(-8, 7),
                                             dtype="int8", epsilon=_EPSILON, to_numpy=False):
    """Asymmetric quantization of a 2D `(input_dim, output_dim)` tensor by groups of
    `block_size` rows: each group and column gets `scale = (max - min + epsilon) /
    (qmax - qmin)` and `zero_point = clip(round(-min / scale) + qmin)`, and
    `q = clip(round(x / scale) + zero_point, qmin, qmax)`. The last group is padded with
    zeros when `block_size` does not divide `input_dim`.

    Returns `(q, scale, zero_point)`: `q` like `inputs` in `dtype`, `scale` (the input's
    float dtype) and `zero_point` (int8) of shape `(ceil(input_dim / block_size),
    output_dim)`. `to_numpy` is accepted for Keras's signature (the numbers are the same).
    """
    x = _tensor(inputs)
    if x.ndim != 2:
        raise ValueError(f"abs_max_quantize_grouped_with_zero_point: inputs must be 2D "
                         f"(input_dim, output_dim); received shape {tuple(x.shape)}.")
    dtype_in = _float_dtype(x)
    x = x.to(dtype_in)
    rows, cols = x.shape
    groups = -(-rows // int(block_size))
    padded = torch.cat([x, x.new_zeros(groups * block_size - rows, cols)], dim=0)
    blocks = padded.reshape(groups, block_size, cols)
    qmin, qmax = value_range
    low = blocks.amin(dim=1, keepdim=True)
    high = blocks.amax(dim=1, keepdim=True)
    scale = (high - low + epsilon) / (qmax - qmin)
    zero_point = torch.clamp(torch.round(-low / scale) + qmin, qmin, qmax)
    q = torch.clamp(torch.round(blocks / scale) + zero_point, qmin, qmax)
    q = q.reshape(groups * block_size, cols)[:rows].to(torch_dtype(dtype))
    return q, scale[:, 0].to(dtype_in), zero_point[:, 0].to(torch.int8)


class AbsMaxQuantizer(Quantizer):
    """`abs_max_quantize` as an object: `quantizer(x, axis=-1)` returns `(q, scale)`.

    Args:
        axis: the default axis of the maximum (deprecated in Keras in favour of the call's
            `axis`); -1 when neither is given.
        value_range: the range of the quantized values, within [-128, 127] for int8.
        epsilon: added to the maximum to avoid division by zero.
        output_dtype: the dtype of the quantized values.
    """

    def __init__(self, axis=None, value_range=(-127, 127), epsilon=_EPSILON,
                 output_dtype="int8"):
        super().__init__(output_dtype=output_dtype)
        self.axis = None if axis is None else (
            (axis,) if isinstance(axis, int) else tuple(axis))
        self.value_range, self.epsilon = value_range, epsilon
        if output_dtype == "int8" and (value_range[0] < -128 or value_range[1] > 127):
            raise ValueError(f"AbsMaxQuantizer: output_dtype='int8' needs value_range within "
                             f"[-128, 127]; received value_range={value_range}.")

    def __call__(self, x, axis=None, to_numpy=False):
        axis = self.axis if axis is None else axis
        return abs_max_quantize(x, -1 if axis is None else axis, self.value_range,
                                self.output_dtype, self.epsilon, to_numpy)

    def get_config(self):
        config = {"value_range": self.value_range, "epsilon": self.epsilon,
                  "output_dtype": self.output_dtype}
        if self.axis is not None:
            config["axis"] = self.axis
        return config


def _nudge(min_range, max_range, num_bits, narrow_range):
    """The range nudged so that 0.0 is exactly representable, its scale and inverse scale."""
    min_range, max_range = min_range.float(), max_range.float()
    quant_max = (1 << num_bits) - 1
    quant_min = 1 if narrow_range else 0
    diff = max_range - min_range
    scale = diff / (quant_max - quant_min)
    inv_scale = (quant_max - quant_min) / diff
    zero_point = torch.round(torch.clamp(quant_min - min_range / scale, quant_min, quant_max))
    return (quant_min - zero_point) * scale, (quant_max - zero_point) * scale, scale, inv_scale


class _FakeQuant(torch.autograd.Function):
    """Fake quantization with straight-through gradients for `x` inside the range and
    gradients for the range's ends from the values clipped to them."""

    @staticmethod
    def forward(ctx, x, min_val, max_val, num_bits, narrow_range, axis):
        shape = [1] * x.ndim
        if axis is not None:
            shape[axis] = -1
        lo, hi = min_val.reshape(shape) if axis is not None else min_val, \
            max_val.reshape(shape) if axis is not None else max_val
        nudged_min, nudged_max, scale, inv_scale = _nudge(lo, hi, num_bits, narrow_range)
        quant_zero = torch.floor(-nudged_min * inv_scale + 0.5)
        clamped = torch.clamp(x.to(nudged_min.dtype), nudged_min, nudged_max)
        result = torch.floor((clamped - nudged_min) * inv_scale - quant_zero + 0.5) * scale
        ctx.save_for_backward(x, nudged_min, nudged_max)
        ctx.axis, ctx.min_shape, ctx.max_shape = axis, min_val.shape, max_val.shape
        return result.to(x.dtype)

    @staticmethod
    def backward(ctx, upstream):
        x, nudged_min, nudged_max = ctx.saved_tensors
        zero = torch.zeros_like(upstream)
        dx = torch.where((x >= nudged_min) & (x <= nudged_max), upstream, zero)
        grad_min = torch.where(x <= nudged_min, upstream, zero)
        grad_max = torch.where(x >= nudged_max, upstream, zero)
        if ctx.axis is None:
            grad_min, grad_max = grad_min.sum(), grad_max.sum()
        else:
            dims = [i for i in range(x.ndim) if i != ctx.axis]
            grad_min, grad_max = grad_min.sum(dims), grad_max.sum(dims)
        return (dx, grad_min.reshape(ctx.min_shape), grad_max.reshape(ctx.max_shape), None,
                None, None)


def fake_quant_with_min_max_vars(inputs, min_vals, max_vals, num_bits=8, narrow_range=False,
                                 axis=None):
    """Quantize `inputs` to `num_bits` levels over `[min_vals, max_vals]` (nudged so that 0
    is a level) and return the dequantized floats; per channel along `axis` when given.
    Gradients flow to `inputs` inside the range (straight through) and to `min_vals` /
    `max_vals` from the values clipped to them, so the range can be trained.

    Example:
        >>> fake_quant_with_min_max_vars(torch.tensor([0.13, 2.0]), -0.5, 1.0, num_bits=4)
        tensor([0.1000, 1.0000])
    """
    x = _tensor(inputs)
    min_vals = _tensor(min_vals, x.dtype if x.is_floating_point() else torch.float32)
    max_vals = _tensor(max_vals, min_vals.dtype)
    if axis is not None:
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"fake_quant_with_min_max_vars: axis {axis} is out of range for "
                             f"inputs of rank {x.ndim}.")
        axis = axis % x.ndim
    return _FakeQuant.apply(x, min_vals, max_vals, int(num_bits), bool(narrow_range), axis)


def compute_float8_scale(amax, scale, dtype_max, margin=0):
    """The next float8 scale: `amax / dtype_max * 2**margin`, or the current `scale` where
    `amax` is zero or not finite."""
    amax = _tensor(amax)
    scale = _tensor(scale, amax.dtype if amax.is_floating_point() else torch.float32)
    factor = dtype_max / amax / (2 ** margin)
    factor = torch.where(amax > 0.0, factor, 1.0 / scale)
    factor = torch.where(torch.isfinite(amax), factor, 1.0 / scale)
    return 1.0 / factor


def compute_float8_amax_history(x, amax_history):
    """`amax_history` rolled by one, with `max|x|` as its first entry."""
    amax_history = _tensor(amax_history)
    new = torch.roll(amax_history, shifts=-1, dims=0).clone()
    new[0] = _tensor(x).abs().max().to(amax_history.dtype)
    return new


def quantize_and_dequantize(inputs, scale, quantized_dtype, compute_dtype):
    """`inputs / scale` clipped to `quantized_dtype`'s range, rounded to it (a float8 dtype
    such as `"float8_e4m3fn"` or `"float8_e5m2"`), and scaled back, in `compute_dtype`."""
    compute = torch_dtype(compute_dtype)
    quantized = _FLOAT8.get(str(quantized_dtype).replace("torch.", ""))
    if quantized is None:
        raise ValueError(f"quantize_and_dequantize: quantized_dtype must be one of "
                         f"{sorted(_FLOAT8)}; received {quantized_dtype!r}.")
    top = float(torch.finfo(quantized).max)
    x = _tensor(inputs).to(compute) / _tensor(scale).to(compute)
    x = torch.clamp(x, -top, top).to(quantized)
    return x.to(compute) * _tensor(scale).to(compute)


def _check_int4_dtype(dtype):
    if dtype not in ("int8", "uint8"):
        raise ValueError(f"dtype must be 'int8' or 'uint8'; received {dtype!r}.")


def pack_int4(arr, axis=0, dtype="int8"):
    """Pack int4 values (`dtype` int8 or uint8, in [-8, 7]) two per byte along `axis`: the
    low nibble holds the even rows, the high nibble the odd ones (an odd count is padded with
    a zero row). Returns `(packed, packed_shape, orig_len)`.

    Example:
        >>> packed, shape, n = pack_int4(np.array([[-3, 7], [2, -8], [1, 0]], np.int8))
        >>> packed
        tensor([[  45, -121],
                [   1,    0]], dtype=torch.int8)
    """
    _check_int4_dtype(dtype)
    x = _tensor(arr)
    if x.dtype != torch_dtype(dtype):
        raise TypeError(f"pack_int4 expects a {dtype} tensor; received "
                        f"{str(x.dtype).replace('torch.', '')}.")
    x = torch.movedim(x, axis, 0)
    n = x.shape[0]
    if n % 2:
        x = torch.cat([x, torch.zeros_like(x[:1])], dim=0)
    low = x[0::2].to(torch.int16) & 0x0F
    high = x[1::2].to(torch.int16) & 0x0F
    packed = (low | (high << 4)).to(torch.uint8)  # the byte; int8 reads it as two's complement
    packed = packed.view(torch.int8) if dtype == "int8" else packed
    packed = torch.movedim(packed, 0, axis)
    return packed, tuple(packed.shape), n


def unpack_int4(packed, orig_len, axis=0, dtype="int8"):
    """Undo `pack_int4`: the int4 values (signed for `dtype="int8"`) of `packed` along
    `axis`, cut to `orig_len`."""
    _check_int4_dtype(dtype)
    p = _tensor(packed)
    if p.dtype not in (torch.int8, torch.uint8):
        raise TypeError(f"unpack_int4 expects an int8 or uint8 tensor; received "
                        f"{str(p.dtype).replace('torch.', '')}.")
    p = torch.movedim(p, axis, 0).to(torch.int16) & 0xFF
    low, high = p & 0x0F, (p >> 4) & 0x0F
    if dtype == "int8":
        low, high = (low ^ 8) - 8, (high ^ 8) - 8
    out = torch.stack([low, high], dim=1).reshape(-1, *p.shape[1:])[:orig_len]
    return torch.movedim(out.to(torch_dtype(dtype)), 0, axis)


_OBJECTS = {"Quantizer": Quantizer, "AbsMaxQuantizer": AbsMaxQuantizer,
            "quantizer": Quantizer, "abs_max_quantizer": AbsMaxQuantizer}


def serialize(quantizer):
    """The config dict a `.keras` file would hold for `quantizer`."""
    from plexus.saving.serialization import serialize_keras_object
    return serialize_keras_object(quantizer)


def deserialize(config, custom_objects=None):
    """The quantizer a config dict (or a name) describes."""
    from plexus.saving.registry import custom_object
    from plexus.saving.serialization import custom_object_scope
    with custom_object_scope(custom_objects or {}):
        found = custom_object(config)
    if found is not None:
        return found
    name = config.get("class_name") if isinstance(config, dict) else config
    cls = _OBJECTS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"Unknown quantizer {name!r}; known: {sorted(_OBJECTS)} or objects "
                         "passed in custom_objects.")
    if isinstance(config, dict):
        return cls.from_config(dict(config.get("config") or {}))
    return cls()


def get(identifier, **kwargs):
    """A quantizer from a quantizer, a config dict, or a name (`"abs_max_quantizer"`;
    `kwargs` go to the class)."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _OBJECTS.get(identifier)
    else:
        obj = identifier
    if inspect.isclass(obj):
        return obj(**kwargs)
    if callable(obj):
        return obj
    raise ValueError(f"Could not interpret quantizer identifier: {identifier!r}.")
