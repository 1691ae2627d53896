"""Neural-network ops (`keras.ops.nn`): activations, normalization, losses, attention.

Convolution and pooling live in `plexus.ops.conv`; this module re-exports them.
"""
import math

import torch
import torch.nn.functional as F

from plexus.ops.common import all_axes, float_tensor, pair, t
from plexus.ops.dtypes import epsilon as _epsilon, result_type, torch_dtype
from plexus.ops.table import alias, op
from plexus.ops.conv import (  # noqa: F401 (re-exported: keras.ops.nn holds them)
    adaptive_average_pool, adaptive_max_pool, average_pool, conv, conv_transpose, depth_to_space,
    depthwise_conv, fold, max_pool, separable_conv, space_to_depth, unfold,
)
from plexus.ops.ctc import ctc_decode, ctc_loss  # noqa: F401 (re-exported)


def _activation(name, class_name, fn, doc, to_float=True):
    def impl(x):
        return fn(float_tensor(x) if to_float else t(x))
    impl.__name__ = name
    impl.__doc__ = doc
    return op("nn", class_name, elementwise=True)(impl)


relu = _activation("relu", "Relu", torch.relu, "`max(x, 0)`.", to_float=False)
relu6 = _activation("relu6", "Relu6", lambda x: torch.clamp(x, 0, 6), "`min(max(x, 0), 6)`.",
                    to_float=False)
sigmoid = _activation("sigmoid", "Sigmoid", torch.sigmoid, "`1 / (1 + exp(-x))`.")
softplus = _activation("softplus", "Softplus", F.softplus, "`log(1 + exp(x))`.")
softsign = _activation("softsign", "Softsign", F.softsign, "`x / (1 + |x|)`.")
silu = _activation("silu", "Silu", F.silu, "`x * sigmoid(x)` (also called swish).")
log_sigmoid = _activation("log_sigmoid", "LogSigmoid", F.logsigmoid, "`log(sigmoid(x))`.")
selu = _activation("selu", "Selu", F.selu, "Scaled exponential linear unit.")
tanh_shrink = _activation("tanh_shrink", "TanhShrink", lambda x: x - torch.tanh(x),
                          "`x - tanh(x)`.")
hard_tanh = _activation("hard_tanh", "HardTanh", lambda x: torch.clamp(x, -1, 1),
                        "`x` clipped to [-1, 1].", to_float=False)
hard_sigmoid = _activation("hard_sigmoid", "HardSigmoid", lambda x: torch.clamp(x / 6 + 0.5, 0, 1),
                           "`relu6(x + 3) / 6`: a piecewise-linear sigmoid.")
hard_silu = _activation("hard_silu", "HardSilu", lambda x: x * torch.clamp(x / 6 + 0.5, 0, 1),
                        "`x * relu6(x + 3) / 6` (also called hard swish).")
alias("hard_swish", "hard_silu")
alias("swish", "silu")
hard_swish = hard_silu
swish = silu
sparse_plus = _activation(
    "sparse_plus", "SparsePlus",
    lambda x: torch.where(x <= -1, torch.zeros_like(x), torch.where(x >= 1, x, (x + 1) ** 2 / 4)),
    "0 below -1, `x` above 1, `(x + 1)**2 / 4` between.")
sparse_sigmoid = _activation(
    "sparse_sigmoid", "SparseSigmoid",
    lambda x: torch.where(x <= -1, torch.zeros_like(x),
                          torch.where(x >= 1, torch.ones_like(x), (x + 1) / 2)),
    "0 below -1, 1 above 1, `(x + 1) / 2` between.")


@op("nn", "LeakyRelu", elementwise=True)
def leaky_relu(x, negative_slope=0.2):
    """`x` for positive values, `negative_slope * x` otherwise."""
    return F.leaky_relu(float_tensor(x), negative_slope)


@op("nn", "Elu", elementwise=True)
def elu(x, alpha=1.0):
    """Exponential linear unit: `x` if positive, else `alpha * (exp(x) - 1)`."""
    return F.elu(float_tensor(x), alpha)


@op("nn", "Celu", elementwise=True)
def celu(x, alpha=1.0):
    """Continuously differentiable ELU: `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`."""
    return F.celu(float_tensor(x), alpha)


@op("nn", "Gelu", elementwise=True)
def gelu(x, approximate=True):
    """Gaussian error linear unit; `approximate` uses the tanh formula."""
    return F.gelu(float_tensor(x), approximate="tanh" if approximate else "none")


@op("nn", "Glu")
def glu(x, axis=-1):
    """Gated linear unit: the first half of `axis` times the sigmoid of the second half."""
    x = float_tensor(x)
    if x.shape[axis] % 2:
        raise ValueError(f"glu: axis {axis} of x (shape {tuple(x.shape)}) must have an even size.")
    return F.glu(x, dim=axis)


@op("nn", "HardShrink", elementwise=True)
def hard_shrink(x, threshold=0.5):
    """`x` where `|x| > threshold`, else 0."""
    return F.hardshrink(float_tensor(x), threshold)


@op("nn", "SoftShrink", elementwise=True)
def soft_shrink(x, threshold=0.5):
    """`x - threshold` above it, `x + threshold` below `-threshold`, else 0."""
    return F.softshrink(float_tensor(x), threshold)


@op("nn", "Threshold", elementwise=True)
def threshold(x, threshold, default_value):
    """`x` where `x > threshold`, else `default_value`."""
    x = t(x)
    return torch.where(x > threshold, x, torch.as_tensor(default_value, dtype=x.dtype,
                                                          device=x.device))


@op("nn", "Squareplus", elementwise=True)
def squareplus(x, b=4):
    """`(x + sqrt(x**2 + b)) / 2`: a smooth ReLU."""
    x = float_tensor(x)
    return (x + torch.sqrt(x * x + b)) / 2


def _over_axes(fn, x, axis):
    """Apply a one-axis function over several axes by flattening them together."""
    if isinstance(axis, int):
        return fn(x, axis)
    dims = all_axes(x, axis)
    rest = [d for d in range(x.ndim) if d not in dims]
    perm = rest + list(dims)
    moved = x.permute(*perm)
    flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
    out = fn(flat, -1).reshape(moved.shape)
    return out.permute(*[perm.index(d) for d in range(x.ndim)])


@op("nn", "Softmax")
def softmax(x, axis=-1):
    """`exp(x) / sum(exp(x))` over `axis` (an int or a tuple of axes)."""
    x = float_tensor(x)
    if axis is None:
        axis = tuple(range(x.ndim))
    return _over_axes(lambda v, a: torch.softmax(v, dim=a), x, axis)


@op("nn", "LogSoftmax")
def log_softmax(x, axis=-1):
    """`log(softmax(x))` over `axis`, computed stably."""
    x = float_tensor(x)
    if axis is None:
        axis = tuple(range(x.ndim))
    return _over_axes(lambda v, a: torch.log_softmax(v, dim=a), x, axis)


@op("nn", "Sparsemax")
def sparsemax(x, axis=-1):
    """Euclidean projection of `x` onto the probability simplex along `axis` (sparse
    probabilities)."""
    x = float_tensor(x)
    z = torch.movedim(x, axis, -1)
    srt = torch.sort(z, dim=-1, descending=True).values
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    cum = torch.cumsum(srt, dim=-1)
    support = (1 + k * srt) > cum
    k_z = torch.sum(support, dim=-1, keepdim=True).clamp(min=1)
    tau = (torch.gather(cum, -1, k_z - 1) - 1) / k_z.to(z.dtype)
    return torch.movedim(torch.clamp(z - tau, min=0), -1, axis)


# ------------------------------------------------------------------------------ encodings
@op("nn", "OneHot")
def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """One-hot encoding of integer `x` along a new `axis`; negative ids give all-zero rows."""
    if sparse:
        raise ValueError("one_hot: sparse=True is not supported by plexus (torch tensors are dense).")
    x = t(x).long()
    out = F.one_hot(torch.where(x < 0, num_classes, x), num_classes + 1)[..., :num_classes]
    out = out.to(torch_dtype(dtype))
    return torch.movedim(out, -1, axis) if axis != -1 else out


@op("nn", "MultiHot", ("inputs",))
def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False, **kwargs):
    """Multi-hot encoding: 1 at each class id present in the last axis of `inputs`."""
    if num_classes is None:
        num_classes = kwargs.pop("num_tokens", None)
    if num_classes is None:
        raise ValueError("multi_hot: give num_classes, the number of classes.")
    if sparse:
        raise ValueError("multi_hot: sparse=True is not supported by plexus.")
    x = t(inputs).long()
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None]
    out = one_hot.__wrapped__(x, num_classes, axis=-1, dtype="int32").amax(dim=-2)
    out = out.to(torch_dtype(dtype))
    if squeeze:
        out = out[0]
    return torch.movedim(out, -1, axis) if axis != -1 else out


# ------------------------------------------------------------------------------ normalization
@op("nn", "Moments")
def moments(x, axes, keepdims=False, synchronized=False):
    """`(mean, variance)` of `x` over `axes`; 16-bit floats are reduced in float32."""
    x = float_tensor(x)
    dtype = x.dtype
    if dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    dims = all_axes(x, axes)
    mean = torch.mean(x, dim=dims, keepdim=True)
    var = torch.mean(torch.square(x - mean), dim=dims, keepdim=True)
    if not keepdims:
        mean, var = mean.squeeze(dims), var.squeeze(dims)
    return mean.to(dtype), var.to(dtype)


@op("nn", "BatchNorm", "x,mean,variance,offset,scale")
def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    """`(x - mean) / sqrt(variance + epsilon) * scale + offset`, with the 1-D statistics laid
    along `axis`."""
    x = float_tensor(x)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]

    def lay(v):
        return None if v is None else t(v).to(x.device, x.dtype).reshape(shape)
    inv = torch.rsqrt(lay(variance) + epsilon)
    if scale is not None:
        inv = inv * lay(scale)
    out = x * inv - lay(mean) * inv
    return out + lay(offset) if offset is not None else out


def _contiguous_last(x, axis):
    dims = sorted(all_axes(x, axis))
    return dims == list(range(x.ndim - len(dims), x.ndim)), dims


@op("nn", "LayerNorm", "x,gamma,beta")
def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, **kwargs):
    """Normalize each sample over `axis` to zero mean and unit variance, then scale by
    `gamma` and shift by `beta`."""
    eps = _epsilon() if epsilon is None else epsilon
    x = t(x)
    dtype = x.dtype  # the result is cast back to it, as Keras does
    x = x.to(torch_dtype(result_type(x.dtype, "float32")))
    g = None if gamma is None else t(gamma).to(x.device, x.dtype)
    b = None if beta is None else t(beta).to(x.device, x.dtype)
    last, dims = _contiguous_last(x, axis)
    if kwargs.pop("rms_scaling", False):
        var = torch.var(x, dim=dims, correction=0, keepdim=True)
        out = x * torch.rsqrt(var + eps)
        return (out * _lay(g, x, dims) if g is not None else out).to(dtype)
    if last:
        return F.layer_norm(x, [x.shape[d] for d in dims], g, b, eps).to(dtype)
    mean = torch.mean(x, dim=dims, keepdim=True)
    var = torch.mean(torch.square(x - mean), dim=dims, keepdim=True)
    out = (x - mean) * torch.rsqrt(var + eps)
    if g is not None:
        out = out * _lay(g, x, dims)
    if b is not None:
        out = out + _lay(b, x, dims)
    return out.to(dtype)


def _lay(v, x, dims):
    if v.ndim == x.ndim:
        return v
    shape = [1] * x.ndim
    for d in dims:
        shape[d] = x.shape[d]
    return v.reshape(shape)


@op("nn", "RMSNorm", "x,scale")
def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    """`x / sqrt(mean(x**2 over axis) + epsilon) * scale`."""
    eps = _epsilon() if epsilon is None else epsilon
    x = t(x)
    dtype = x.dtype  # the result is cast back to it, as Keras does
    x = x.to(torch_dtype(result_type(x.dtype, "float32")))
    dims = all_axes(x, axis)
    out = x * torch.rsqrt(torch.mean(torch.square(x), dim=dims, keepdim=True) + eps)
    if scale is not None:
        out = out * _lay(t(scale).to(x.device, x.dtype), x, dims)
    return out.to(dtype)


@op("nn", "Normalize")
def normalize(x, axis=-1, order=2, epsilon=None):
    """`x` divided by its `order`-norm over `axis` (at least `epsilon`)."""
    eps = _epsilon() if epsilon is None else epsilon
    x = float_tensor(x)
    norm = torch.linalg.vector_norm(x, ord=order, dim=axis, keepdim=True)
    return x / torch.clamp(norm, min=eps)


# ------------------------------------------------------------------------------ losses
def _probabilities(output, axis):
    output = output / torch.sum(output, dim=axis, keepdim=True)
    eps = _epsilon()
    return torch.clamp(output, eps, 1.0 - eps)


@op("nn", "CategoricalCrossentropy", "target,output")
def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Cross-entropy between one-hot (or soft) `target` and predicted `output` over `axis`;
    `from_logits` when `output` is unnormalized."""
    target, output = pair(target, output)
    output = float_tensor(output)
    target = target.to(output.dtype)
    if target.shape != output.shape:
        raise ValueError(f"categorical_crossentropy: target and output must have the same shape; "
                         f"got target {tuple(target.shape)} and output {tuple(output.shape)}.")
    log_p = torch.log_softmax(output, dim=axis) if from_logits else \
        torch.log(_probabilities(output, axis))
    return -torch.sum(target * log_p, dim=axis)


@op("nn", "SparseCategoricalCrossentropy", "target,output")
def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Cross-entropy between integer class ids `target` and predicted `output` over `axis`."""
    target, output = pair(target, output)
    output = float_tensor(output)
    if target.ndim == output.ndim and target.shape[-1] == 1:
        target = target.squeeze(-1)
    if target.ndim != output.ndim - 1:
        raise ValueError(f"sparse_categorical_crossentropy: target (shape {tuple(target.shape)}) "
                         f"must have one axis less than output (shape {tuple(output.shape)}).")
    log_p = torch.log_softmax(output, dim=axis) if from_logits else \
        torch.log(_probabilities(output, axis))
    log_p = torch.movedim(log_p, axis, -1)
    return -torch.gather(log_p, -1, target.long().unsqueeze(-1)).squeeze(-1)


@op("nn", "BinaryCrossentropy", "target,output")
def binary_crossentropy(target, output, from_logits=False):
    """Element-wise binary cross-entropy between `target` and predicted `output`."""
    target, output = pair(target, output)
    output = float_tensor(output)
    target = target.to(output.dtype)
    if target.shape != output.shape:
        raise ValueError(f"binary_crossentropy: target and output must have the same shape; "
                         f"got target {tuple(target.shape)} and output {tuple(output.shape)}.")
    if from_logits:
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")
    eps = _epsilon()
    output = torch.clamp(output, eps, 1.0 - eps)
    return -(target * torch.log(output) + (1 - target) * torch.log(1 - output))


@op("nn", "PSNR", "x1,x2")
def psnr(x1, x2, max_val):
    """Peak signal-to-noise ratio (dB) between two images with values up to `max_val`."""
    a, b = pair(x1, x2)
    if a.shape != b.shape:
        raise ValueError(f"psnr: x1 and x2 must have the same shape; got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}.")
    a, b = float_tensor(a), float_tensor(b)
    mse = torch.mean(torch.square(a - b))
    return 20 * math.log10(max_val) - 10 * torch.log10(mse)


@op("nn", "Polar", "abs_,angle")
def polar(abs_, angle):
    """The complex number with magnitude `abs_` and phase `angle`."""
    a, b = pair(abs_, angle)
    a, b = float_tensor(a), float_tensor(b)
    return torch.polar(a, b)


# ------------------------------------------------------------------------------ attention
@op("nn", "DotProductAttention", "query,key,value,bias,mask,scale")
def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False,
                          flash_attention=None, attn_logits_soft_cap=None):
    """Scaled dot-product attention on `(batch, length, heads, head_dim)` tensors
    (3-D tensors without the heads axis work too). `mask` (bool) marks the positions that may
    be attended; `bias` is added to the logits; `scale` defaults to `1 / sqrt(head_dim)`."""
    q, k, v = (float_tensor(a) for a in (query, key, value))
    if q.dtype is torch.float64:  # Keras's torch backend computes attention in float32
        q, k, v = q.float(), k.float(), v.float()
    three = q.ndim == 3
    if three:
        q, k, v = q[:, :, None], k[:, :, None], v[:, :, None]
    if q.ndim != 4:
        raise ValueError(f"dot_product_attention: query must be 3-D or 4-D "
                         f"(batch, length, heads, head_dim); got shape {tuple(query.shape)}.")
    if k.shape[2] != q.shape[2]:  # grouped-query attention: repeat key/value heads
        if q.shape[2] % k.shape[2]:
            raise ValueError(f"dot_product_attention: query has {q.shape[2]} heads, not a "
                             f"multiple of key's {k.shape[2]}.")
        reps = q.shape[2] // k.shape[2]
        k, v = k.repeat_interleave(reps, 2), v.repeat_interleave(reps, 2)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    head_dim = q.shape[-1]
    scale = 1.0 / math.sqrt(head_dim) if scale is None else float(scale)
    m = None
    if mask is not None:
        m = t(mask).to(q.device).bool()
        while m.ndim < 4:
            m = m.unsqueeze(0) if m.ndim < 3 else m.unsqueeze(1)
    if bias is None and attn_logits_soft_cap is None:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=is_causal and m is None,
                                             scale=scale) if not (is_causal and m is not None) \
            else F.scaled_dot_product_attention(q, k, v, attn_mask=m & _causal(q, k), scale=scale)
    else:
        logits = torch.matmul(q, k.transpose(-1, -2)) * scale
        if attn_logits_soft_cap is not None:
            logits = attn_logits_soft_cap * torch.tanh(logits / attn_logits_soft_cap)
        if bias is not None:
            b = t(bias).to(q.device, q.dtype)
            while b.ndim < 4:
                b = b.unsqueeze(0)
            logits = logits + b
        keep = m
        if is_causal:
            keep = _causal(q, k) if keep is None else keep & _causal(q, k)
        if keep is not None:
            logits = logits.masked_fill(~keep, torch.finfo(logits.dtype).min)
        out = torch.matmul(torch.softmax(logits, dim=-1), v)
    out = out.transpose(1, 2)
    return out[:, :, 0] if three else out


def _causal(q, k):
    return torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()

