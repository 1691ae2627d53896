"""Activation functions by Keras name."""
import difflib

import torch
import torch.nn.functional as F


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit: `x` above `threshold` (else 0), capped at `max_value`, with
    `negative_slope * (x - threshold)` below the threshold.

    Args:
        negative_slope: slope for values at or below `threshold`.
        max_value: the largest value returned (None: no cap).
        threshold: values at or below it give 0 (or the sloped part).
    """
    if negative_slope == 0.0 and threshold == 0.0:
        if max_value is None:
            return torch.relu(x)
        if max_value == 6:
            return F.relu6(x)
    if negative_slope and max_value is None and threshold == 0:
        return F.leaky_relu(x, negative_slope)
    y = torch.where(x > threshold, x, torch.zeros_like(x)) if threshold else torch.relu(x)
    if max_value is not None:
        y = torch.clamp(y, 0.0, max_value)
    if negative_slope:
        y = y - negative_slope * torch.relu(threshold - x)
    return y


def relu6(x):
    return F.relu6(x)


def _keep_logits(out, kind, axis, logits):
    """Remember the logits a sigmoid or softmax output came from, so the cross-entropy losses
    can work from them (fewer operations, and exact where the probabilities saturate), as
    Keras's TensorFlow backend does. Only for outputs that take part in a gradient."""
    if logits.requires_grad:
        out._plexus_logits = (kind, axis, logits)
    return out


def logits_of(y_pred, kind, axis=-1):
    """The logits `y_pred` was computed from by `kind` ("softmax" on `axis`, or "sigmoid"),
    or None."""
    rec = getattr(y_pred, "_plexus_logits", None)
    if rec is None or rec[0] != kind:
        return None
    if kind == "softmax" and rec[1] % y_pred.dim() != axis % y_pred.dim():
        return None
    return rec[2]


def sigmoid(x):
    return _keep_logits(torch.sigmoid(x), "sigmoid", None, x)


def hard_sigmoid(x):
    return F.hardsigmoid(x)


def tanh(x):
    return torch.tanh(x)


def _tracing():
    """Under torch.compile / torch.export: no shape-dependent fast paths (each would add a
    guard on the batch size)."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def _short_last_axis(z):
    """Whether a (log-)softmax over `z`'s last axis runs faster over the transposed view:
    torch's CPU kernel is several times slower over a last axis shorter than 16 (rows: 32 or
    more) than over the same memory read as a first axis."""
    return z.dim() == 2 and z.shape[-1] < 16 and z.shape[0] >= 32 and z.device.type == "cpu"


def softmax(x, axis=-1):
    if (not x.requires_grad and axis in (-1, 1) and not _tracing()
            and _short_last_axis(x)):  # (tracing first: no guard on the batch size)
        # torch's CPU kernel over a last axis shorter than 16 is several times slower than over
        # the same memory read as a first axis (not worth it when a gradient flows back: the
        # backward kernel is slower that way)
        return torch.softmax(x.t(), dim=0).t().contiguous()
    return _keep_logits(torch.softmax(x, dim=axis), "softmax", axis, x)


def log_softmax(x, axis=-1):
    return torch.log_softmax(x, dim=axis)


def softplus(x):
    return F.softplus(x)


def softsign(x):
    return F.softsign(x)


def elu(x, alpha=1.0):
    return F.elu(x, alpha)


def selu(x):
    return F.selu(x)


def gelu(x, approximate=False):
    return F.gelu(x, approximate="tanh" if approximate else "none")


def silu(x):
    return F.silu(x)


def exponential(x):
    return torch.exp(x)


def leaky_relu(x, negative_slope=0.2):
    return F.leaky_relu(x, negative_slope)


def mish(x):
    return F.mish(x)


def hard_silu(x):
    return F.hardswish(x)


def celu(x, alpha=1.0):
    """Continuously differentiable ELU: `max(x, 0) + min(alpha * (exp(x / alpha) - 1), 0)`."""
    return F.celu(x, alpha)


def glu(x, axis=-1):
    """Gated linear unit: `a * sigmoid(b)`, with `a` and `b` the two halves of `x` along
    `axis` (whose size must be even)."""
    if x.shape[axis] % 2:
        raise ValueError(f"glu splits the axis {axis} of its input in two halves, so its size "
                         f"must be even; received an input of shape {tuple(x.shape)}.")
    return F.glu(x, dim=axis)


def hard_tanh(x):
    """`x` clipped to [-1, 1]."""
    return F.hardtanh(x)


def hard_shrink(x, threshold=0.5):
    """`x` where `|x| > threshold`, else 0."""
    return F.hardshrink(x, threshold)


def soft_shrink(x, threshold=0.5):
    """`x - threshold` above `threshold`, `x + threshold` below `-threshold`, else 0."""
    return F.softshrink(x, threshold)


def tanh_shrink(x):
    """`x - tanh(x)`."""
    return F.tanhshrink(x)


def threshold(x, threshold, default_value):
    """`x` where `x > threshold`, else `default_value`."""
    return F.threshold(x, threshold, default_value)


def log_sigmoid(x):
    """`log(sigmoid(x))`, computed stably."""
    return F.logsigmoid(x)


def sparse_plus(x):
    """0 for `x <= -1`, `(x + 1)**2 / 4` for `-1 < x < 1`, `x` from 1 on."""
    return torch.where(x <= -1, torch.zeros_like(x), torch.where(x < 1, 0.25 * (x + 1) ** 2, x))


def sparse_sigmoid(x):
    """0 for `x <= -1`, `(x + 1) / 2` for `-1 < x < 1`, 1 from 1 on."""
    return torch.clamp(0.5 * (x + 1), 0.0, 1.0)


def squareplus(x, b=4):
    """`(x + sqrt(x**2 + b)) / 2`, a smooth ReLU (`b >= 0`)."""
    return (x + torch.sqrt(x * x + b)) / 2


def sparsemax(x, axis=-1):
    """Euclidean projection of `x` onto the probability simplex along `axis`: like softmax,
    a distribution, but with exact zeros for low scores."""
    z, _ = torch.sort(x, dim=axis, descending=True)
    cumsum = torch.cumsum(z, dim=axis)
    shape = [1] * x.dim()
    shape[axis] = -1
    k = torch.arange(1, x.shape[axis] + 1, device=x.device, dtype=x.dtype).view(shape)
    support = z - (cumsum - 1) / k > 0
    size = torch.sum(support, dim=axis, keepdim=True)
    tau = (torch.sum(torch.where(support, cumsum, torch.zeros_like(cumsum)), dim=axis,
                     keepdim=True) - 1) / size
    return torch.clamp(x - tau, min=0.0)


swish = silu
hard_swish = hard_silu

_ACTIVATIONS = {
    "linear": linear, "relu": relu, "relu6": relu6, "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid, "tanh": tanh, "softmax": softmax, "log_softmax": log_softmax,
    "softplus": softplus, "softsign": softsign, "elu": elu, "selu": selu, "gelu": gelu,
    "silu": silu, "swish": swish, "exponential": exponential, "leaky_relu": leaky_relu,
    "mish": mish, "hard_silu": hard_silu, "hard_swish": hard_swish, "celu": celu, "glu": glu,
    "hard_tanh": hard_tanh, "hard_shrink": hard_shrink, "soft_shrink": soft_shrink,
    "tanh_shrink": tanh_shrink, "threshold": threshold, "log_sigmoid": log_sigmoid,
    "sparse_plus": sparse_plus, "sparse_sigmoid": sparse_sigmoid, "squareplus": squareplus,
    "sparsemax": sparsemax,
}


def get(identifier):
    """Resolve an activation given as a name, a serialized dict, a callable or None (linear);
    your registered functions (and those of a `custom_object_scope`) resolve by name too."""
    if identifier is None:
        return linear
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        name = identifier
        fn = _ACTIVATIONS.get(identifier)
        if fn is None:
            from plexus.saving.registry import custom_object  # noqa: (registered functions)
            fn = custom_object(identifier)
        if fn is None:
            close = difflib.get_close_matches(str(name), _ACTIVATIONS, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Unknown activation {name!r}.{hint} Known activations: "
                f"{', '.join(sorted(_ACTIVATIONS))}; or pass a callable (register your own "
                "with plexus.saving.register_keras_serializable to load it by name)."
            )
        return fn
    if callable(identifier):
        return identifier
    raise TypeError(
        f"An activation must be a name or a callable; received {identifier!r} "
        f"of type {type(identifier).__name__}."
    )


def serialize(fn):
    """The Keras name of an activation function (its `__name__` for user functions)."""
    for name, known in _ACTIVATIONS.items():
        if known is fn:
            return name
    return getattr(fn, "__name__", str(fn))


def deserialize(config, custom_objects=None):
    """The activation function a saved config names: a name (`"relu"`) or Keras's
    `{"class_name": "function", "config": "relu", ...}`; `custom_objects` maps further names
    to functions."""
    name = config
    if isinstance(config, dict):
        name = config.get("config") if config.get("class_name") == "function" else \
            config.get("class_name")
    if not isinstance(name, str):
        raise ValueError(f"Cannot read an activation from {config!r}: expected a name or a "
                         "{'class_name': 'function', 'config': name} dict.")
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    return get(name)


# ---------------------------------------------------------------------- backward rules
def _softmax_last(z):
    """softmax over the last axis (over the transposed view where `_short_last_axis`)."""
    if _short_last_axis(z):
        return torch.softmax(z.t(), 0).t()
    return torch.softmax(z, -1)


_ATEN = torch.ops.aten
_threshold_backward = _ATEN.threshold_backward.default
_softmax_backward_data = _ATEN._softmax_backward_data.default

_BACKWARD_RULES = {
    # activation: (forward that may overwrite its fresh input, dL/dz from dL/dout and out)
    linear: (None, None),
    relu: (torch.relu_, lambda g, out: _threshold_backward(g, out, 0)),
    sigmoid: (torch.sigmoid_, _ATEN.sigmoid_backward.default),
    tanh: (torch.tanh_, _ATEN.tanh_backward.default),
    softmax: (_softmax_last, lambda g, out: _softmax_backward_data(g, out, -1, out.dtype)),
}


def backward_rule(fn):
    """`(forward, backward)` of an activation (called with its defaults) whose gradient
    follows from its output alone, or None.

    `forward(z)` computes the activation and may overwrite `z` (pass a tensor nothing else
    holds; None stands for the identity); `backward(g, out)` is the gradient with respect to
    `z` given the gradient `g` with respect to the output `out`. Layers use these rules to
    train without autograd (`plexus/layers/closed_form.py`); an activation without one
    trains through autograd.
    """
    return _BACKWARD_RULES.get(fn)
