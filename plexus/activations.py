"""Activation functions by Keras name."""
import difflib

import torch
import torch.nn.functional as F


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return torch.relu(x)
    neg = negative_slope * (x - threshold) if negative_slope else None
    y = torch.where(x >= threshold, x, neg if neg is not None else torch.zeros_like(x))
    if max_value is not None:
        y = torch.clamp(y, max=max_value)
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


def softmax(x, axis=-1):
    if (not x.requires_grad and x.dim() == 2 and axis in (-1, 1) and x.shape[-1] < 16
            and x.shape[0] >= 32 and x.device.type == "cpu"):
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


swish = silu
hard_swish = hard_silu

_ACTIVATIONS = {
    "linear": linear, "relu": relu, "relu6": relu6, "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid, "tanh": tanh, "softmax": softmax, "log_softmax": log_softmax,
    "softplus": softplus, "softsign": softsign, "elu": elu, "selu": selu, "gelu": gelu,
    "silu": silu, "swish": swish, "exponential": exponential, "leaky_relu": leaky_relu,
    "mish": mish, "hard_silu": hard_silu, "hard_swish": hard_swish,
}


def get(identifier):
    """Resolve an activation given as a name, a serialized dict, a callable or None (linear);
    your registered functions (and those of a `custom_object_scope`) resolve by name too."""
    if identifier is None:
        return linear
    if isinstance(identifier, (str, dict)):
        name = identifier
        if isinstance(identifier, dict):  # a serialized function: {"class_name": "function", ...}
            name = identifier.get("config") if identifier.get("class_name") == "function" \
                else identifier.get("class_name")
        fn = _ACTIVATIONS.get(name) if isinstance(name, str) else None
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
