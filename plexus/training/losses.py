"""Losses: functions `fn(y_true, y_pred) -> per-sample values` and `Loss` objects that reduce them.

Every loss exists twice, as in Keras: a function (`mean_squared_error`) returning one value per
sample, and a class (`MeanSquaredError`) that applies sample weights and reduces to a scalar
(`"sum_over_batch_size"` by default: the weighted sum divided by the number of values).
"""
import difflib
import math

import torch
import torch.nn.functional as F

from plexus import activations, config
from plexus.training.arguments import check_loss_values


def _as_tensor(x, like=None):
    if isinstance(x, torch.Tensor):
        return x
    t = torch.as_tensor(x)
    if like is not None:
        t = t.to(like.device)
    return t


def match_rank(a, b):
    """Squeeze or expand a trailing size-1 axis so `a` and `b` have the same rank."""
    ra, rb = a.dim(), b.dim()
    if ra == rb + 1 and a.shape[-1] == 1:
        if rb == 1:
            b = b.unsqueeze(-1)
        else:
            a = a.squeeze(-1)
    elif rb == ra + 1 and b.shape[-1] == 1:
        if ra == 1:
            a = a.unsqueeze(-1)
        else:
            b = b.squeeze(-1)
    return a, b


def _prep(y_true, y_pred):
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred).to(y_pred.dtype)
    return match_rank(y_true, y_pred)


# ---------------------------------------------------------------------- functions
def mean_squared_error(y_true, y_pred):
    """Mean of `(y_true - y_pred) ** 2` over the last axis."""
    y_true, y_pred = _prep(y_true, y_pred)
    return torch.mean(torch.square(y_pred - y_true), dim=-1)


def mean_absolute_error(y_true, y_pred):
    """Mean of `|y_true - y_pred|` over the last axis."""
    y_true, y_pred = _prep(y_true, y_pred)
    return torch.mean(torch.abs(y_pred - y_true), dim=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """`100 * mean(|(y_true - y_pred) / max(|y_true|, eps)|)` over the last axis."""
    y_true, y_pred = _prep(y_true, y_pred)
    diff = torch.abs((y_true - y_pred) / torch.clamp(torch.abs(y_true), min=config.epsilon()))
    return 100.0 * torch.mean(diff, dim=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    """Mean of `(log(1 + y_pred) - log(1 + y_true)) ** 2` (values clipped at eps)."""
    y_true, y_pred = _prep(y_true, y_pred)
    eps = config.epsilon()
    a = torch.log(torch.clamp(y_pred, min=eps) + 1.0)
    b = torch.log(torch.clamp(y_true, min=eps) + 1.0)
    return torch.mean(torch.square(a - b), dim=-1)


def _l2_normalize(x, axis):
    return x * torch.rsqrt(torch.clamp(torch.sum(x * x, dim=axis, keepdim=True), min=1e-12))


def cosine_similarity(y_true, y_pred, axis=-1):
    """Negative cosine similarity along `axis`: -1 for identical directions."""
    y_true, y_pred = _prep(y_true, y_pred)
    return -torch.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), dim=axis)


def huber(y_true, y_pred, delta=1.0):
    """Quadratic for errors up to `delta`, linear beyond; mean over the last axis."""
    y_true, y_pred = _prep(y_true, y_pred)
    err = y_pred - y_true
    abs_err = torch.abs(err)
    quad = 0.5 * torch.square(err)
    lin = delta * abs_err - 0.5 * delta * delta
    return torch.mean(torch.where(abs_err <= delta, quad, lin), dim=-1)


def log_cosh(y_true, y_pred):
    """Mean of `log(cosh(y_pred - y_true))`, computed stably."""
    y_true, y_pred = _prep(y_true, y_pred)
    x = y_pred - y_true
    return torch.mean(x + F.softplus(-2.0 * x) - math.log(2.0), dim=-1)


def _hinge_labels(y_true):
    """Labels in {0, 1} become {-1, 1}; other labels are kept (no host sync)."""
    is_binary = torch.all((y_true == 0) | (y_true == 1))
    return torch.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred):
    """Mean of `max(1 - y_true * y_pred, 0)`; labels 0/1 are read as -1/1."""
    y_pred = _as_tensor(y_pred)
    y_true = _hinge_labels(_as_tensor(y_true, y_pred).to(y_pred.dtype))
    return torch.mean(torch.clamp(1.0 - y_true * y_pred, min=0.0), dim=-1)


def squared_hinge(y_true, y_pred):
    """Mean of `max(1 - y_true * y_pred, 0) ** 2`; labels 0/1 are read as -1/1."""
    y_pred = _as_tensor(y_pred)
    y_true = _hinge_labels(_as_tensor(y_true, y_pred).to(y_pred.dtype))
    return torch.mean(torch.square(torch.clamp(1.0 - y_true * y_pred, min=0.0)), dim=-1)


def categorical_hinge(y_true, y_pred):
    """`max(max_wrong - true_score + 1, 0)` for one-hot `y_true`."""
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred).to(y_pred.dtype)
    pos = torch.sum(y_true * y_pred, dim=-1)
    neg = torch.amax((1.0 - y_true) * y_pred, dim=-1)
    return torch.clamp(neg - pos + 1.0, min=0.0)


def kl_divergence(y_true, y_pred):
    """`sum(y_true * log(y_true / y_pred))` with both clipped to [eps, 1]."""
    y_pred = _as_tensor(y_pred)
    eps = config.epsilon()
    y_true = torch.clamp(_as_tensor(y_true, y_pred).to(y_pred.dtype), eps, 1.0)
    y_pred = torch.clamp(y_pred, eps, 1.0)
    return torch.sum(y_true * torch.log(y_true / y_pred), dim=-1)


def poisson(y_true, y_pred):
    """Mean of `y_pred - y_true * log(y_pred + eps)`."""
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred).to(y_pred.dtype)
    return torch.mean(y_pred - y_true * torch.log(y_pred + config.epsilon()), dim=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary cross-entropy, mean over `axis`; probabilities are clipped to [eps, 1 - eps].

    Args:
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: squeeze labels towards 0.5 by this fraction.
    """
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred).to(y_pred.dtype)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"binary_crossentropy: targets of shape {tuple(y_true.shape)} do not match "
            f"predictions of shape {tuple(y_pred.shape)}. Give one target per prediction."
        )
    logits = y_pred if from_logits else activations.logits_of(y_pred, "sigmoid")
    if logits is not None:
        values = F.binary_cross_entropy_with_logits(logits, y_true, reduction="none")
    else:
        eps = config.epsilon()
        values = F.binary_cross_entropy(torch.clamp(y_pred, eps, 1.0 - eps), y_true,
                                        reduction="none")
    return torch.mean(values, dim=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Cross-entropy for one-hot targets; probabilities are renormalized and clipped.

    Args:
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: mix the one-hot targets with the uniform distribution by this fraction.
    """
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred).to(y_pred.dtype)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"categorical_crossentropy: targets of shape {tuple(y_true.shape)} do not match "
            f"predictions of shape {tuple(y_pred.shape)}. Targets must be one-hot (use "
            "plexus.utils.to_categorical), or use sparse_categorical_crossentropy for class ids."
        )
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    logits = y_pred if from_logits else activations.logits_of(y_pred, "softmax", axis)
    if logits is not None:
        log_prob = F.log_softmax(logits, dim=axis)
    else:
        probs = y_pred / torch.sum(y_pred, dim=axis, keepdim=True)
        eps = config.epsilon()
        log_prob = torch.log(torch.clamp(probs, eps, 1.0 - eps))
    return -torch.sum(y_true * log_prob, dim=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """Cross-entropy for integer class ids; probabilities are renormalized and clipped."""
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred)
    if y_true.dim() == y_pred.dim() and y_true.shape[axis] == 1:
        y_true = y_true.squeeze(axis)
    y_true = y_true.long()
    expected = tuple(d for i, d in enumerate(y_pred.shape) if i != axis % y_pred.dim())
    if tuple(y_true.shape) != expected:
        raise ValueError(
            f"sparse_categorical_crossentropy: targets of shape {tuple(y_true.shape)} do not "
            f"match predictions of shape {tuple(y_pred.shape)}; expected targets of shape "
            f"{expected} (one class id per sample). For one-hot targets use "
            "categorical_crossentropy."
        )
    valid = None
    if ignore_class is not None:
        valid = y_true != ignore_class
        y_true = torch.where(valid, y_true, torch.zeros_like(y_true))
    logits = None if from_logits else activations.logits_of(y_pred, "softmax", axis)
    if logits is not None:
        y_pred, from_logits = logits, True
    if y_pred.dim() > 1 and axis % y_pred.dim() != 1:
        y_pred = y_pred.movedim(axis, 1)
    try:
        if from_logits:
            out = F.cross_entropy(y_pred, y_true, reduction="none")
        else:
            probs = y_pred / torch.sum(y_pred, dim=1, keepdim=True)
            eps = config.epsilon()
            out = F.nll_loss(torch.log(torch.clamp(probs, eps, 1.0 - eps)), y_true,
                             reduction="none")
    except IndexError as e:
        classes = y_pred.shape[1] if y_pred.dim() > 1 else 1
        raise ValueError(
            f"sparse_categorical_crossentropy: the targets hold class ids from "
            f"{int(y_true.min())} to {int(y_true.max())}, but the predictions have {classes} "
            f"classes (ids 0 to {classes - 1}). Give the output layer as many units as there "
            "are classes, or renumber the labels from 0.") from e
    if valid is not None:
        out = with_loss_mask(torch.where(valid, out, torch.zeros_like(out)), valid)
    return out


# ---------------------------------------------------------------------- reduction
REDUCTIONS = ("sum_over_batch_size", "sum", "none", None, "mean", "mean_with_sample_weight")


def with_loss_mask(values, mask):
    """Mark the entries of `values` that count (`mask` true): the reduction leaves the others
    out, so a mean is taken over the valid entries only (as for Keras's masked losses)."""
    values._plexus_loss_mask = mask
    return values


def _mask_weights(values, mask, sample_weight, reduction):
    """Fold a loss mask into the sample weights: in a mean, valid entries weigh
    `total / valid` so that the mean runs over them alone."""
    mask = mask.to(values.dtype)
    if reduction in ("mean", "sum_over_batch_size"):
        valid = torch.sum(mask)
        mask = mask * torch.where(valid > 0, mask.numel() / torch.clamp(valid, min=1.0),
                                  torch.zeros_like(valid))
    if sample_weight is None:
        return mask
    sample_weight = _as_tensor(sample_weight, values).to(values.dtype)
    mask, sample_weight = match_rank(mask, sample_weight)
    return sample_weight * mask


def reduce_weighted(values, sample_weight=None, reduction="sum_over_batch_size"):
    """Weight per-sample `values` and reduce them as `reduction` says."""
    mask = getattr(values, "_plexus_loss_mask", None)
    if mask is not None:
        sample_weight = _mask_weights(values, mask, sample_weight, reduction)
    if sample_weight is not None:
        sample_weight = _as_tensor(sample_weight, values).to(values.dtype)
        values, sample_weight = match_rank(values, sample_weight)
        values = values * sample_weight
    if reduction in (None, "none") or values.dim() == 0:
        return values
    if sample_weight is None and reduction in ("sum_over_batch_size", "mean") and values.numel():
        return torch.mean(values)
    total = torch.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        weights = torch.sum(sample_weight)
        return torch.where(weights != 0, total / weights, torch.zeros_like(total))
    n = values.numel()
    return total / n if n else total * 0.0


class Loss:
    """Base class of losses: `loss(y_true, y_pred, sample_weight=None) -> scalar`.

    Subclasses define `call(y_true, y_pred)` returning one value per sample.

    Args:
        reduction: `"sum_over_batch_size"` (default), `"sum"`, `"mean"`,
            `"mean_with_sample_weight"` or `"none"`.
        name: the loss's name.
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"Unknown loss reduction {reduction!r}; expected one of {list(REDUCTIONS)}."
            )
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = _as_tensor(y_pred)
        if y_pred.is_floating_point() is False:
            y_pred = y_pred.float()
        values = self.call(y_true, y_pred)
        batch = y_pred.shape[0] if y_pred.dim() else None
        if not isinstance(values, torch.Tensor) or not values.is_floating_point() or (
                values.dim() and values.shape[0] != batch and values.numel() != 1):
            check_loss_values(values, self.name, batch)  # raises, saying what is wrong
        return reduce_weighted(values, sample_weight, self.reduction)

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _snake(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(c.lower())
    return "".join(out)


class LossFunctionWrapper(Loss):
    """A `Loss` made from a function `fn(y_true, y_pred, **kwargs)`."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true = _as_tensor(y_true, y_pred)
        y_true, y_pred = match_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _fused_rule(self):
        """This loss as one closed-form value and gradient with the model's final activation
        (`plexus/training/fused_losses.py`), or None: autograd through `__call__`. Only while
        `call` and `__call__` are the ones above (a subclass overriding them loses it)."""
        cls = type(self)
        if cls.call is not LossFunctionWrapper.call or cls.__call__ is not Loss.__call__:
            return None
        from plexus.training import fused_losses
        return fused_losses.rule_for(self.fn, self._fn_kwargs, self.reduction)

    def get_config(self):
        return {**super().get_config(), **self._fn_kwargs}


def _wrapper(fn, default_name, arg_names=(), defaults=()):
    """Make a `Loss` class around `fn` with keyword arguments `arg_names`."""

    def __init__(self, *args, reduction="sum_over_batch_size", name=default_name, dtype=None,
                 **kwargs):
        params = dict(zip(arg_names, defaults))
        params.update(zip(arg_names, args))
        for k in list(kwargs):
            if k not in arg_names:
                raise TypeError(f"{type(self).__name__}: unexpected keyword argument {k!r}.")
            params[k] = kwargs.pop(k)
        LossFunctionWrapper.__init__(self, fn, reduction=reduction, name=name, **params)
        for k, v in params.items():
            setattr(self, k, v)

    return __init__


def _loss_class(cls_name, fn, default_name, arg_names=(), defaults=()):
    cls = type(cls_name, (LossFunctionWrapper,), {
        "__init__": _wrapper(fn, default_name, arg_names, defaults),
        "__doc__": f"Loss object for `{fn.__name__}`: {fn.__doc__.splitlines()[0]}",
        "__module__": __name__,
    })
    return cls


MeanSquaredError = _loss_class("MeanSquaredError", mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _loss_class("MeanAbsoluteError", mean_absolute_error, "mean_absolute_error")
MeanAbsolutePercentageError = _loss_class(
    "MeanAbsolutePercentageError", mean_absolute_percentage_error,
    "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _loss_class(
    "MeanSquaredLogarithmicError", mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error")
CosineSimilarity = _loss_class("CosineSimilarity", cosine_similarity, "cosine_similarity",
                               ("axis",), (-1,))
Huber = _loss_class("Huber", huber, "huber_loss", ("delta",), (1.0,))
LogCosh = _loss_class("LogCosh", log_cosh, "log_cosh")
Hinge = _loss_class("Hinge", hinge, "hinge")
SquaredHinge = _loss_class("SquaredHinge", squared_hinge, "squared_hinge")
CategoricalHinge = _loss_class("CategoricalHinge", categorical_hinge, "categorical_hinge")
KLDivergence = _loss_class("KLDivergence", kl_divergence, "kl_divergence")
Poisson = _loss_class("Poisson", poisson, "poisson")
BinaryCrossentropy = _loss_class(
    "BinaryCrossentropy", binary_crossentropy, "binary_crossentropy",
    ("from_logits", "label_smoothing", "axis"), (False, 0.0, -1))
CategoricalCrossentropy = _loss_class(
    "CategoricalCrossentropy", categorical_crossentropy, "categorical_crossentropy",
    ("from_logits", "label_smoothing", "axis"), (False, 0.0, -1))
SparseCategoricalCrossentropy = _loss_class(
    "SparseCategoricalCrossentropy", sparse_categorical_crossentropy,
    "sparse_categorical_crossentropy", ("from_logits", "ignore_class", "axis"),
    (False, None, -1))

# Aliases users know.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh
bce = BCE = binary_crossentropy

# (task_losses builds on the helpers above, so it is imported once they exist)
from plexus.training import task_losses  # noqa: E402

_FUNCTIONS = [mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
              mean_squared_logarithmic_error, cosine_similarity, huber, log_cosh, hinge,
              squared_hinge, categorical_hinge, kl_divergence, poisson, binary_crossentropy,
              categorical_crossentropy, sparse_categorical_crossentropy]
_CLASSES = [MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
            MeanSquaredLogarithmicError, CosineSimilarity, Huber, LogCosh, Hinge, SquaredHinge,
            CategoricalHinge, KLDivergence, Poisson, BinaryCrossentropy, CategoricalCrossentropy,
            SparseCategoricalCrossentropy]
BY_NAME = {f.__name__: f for f in _FUNCTIONS}
BY_NAME.update({c.__name__: c for c in _CLASSES})
BY_NAME.update({f.__name__: f for f in task_losses.FUNCTIONS})
BY_NAME.update({c.__name__: c for c in task_losses.CLASSES})
BY_NAME.update({"mse": mse, "MSE": mse, "mae": mae, "MAE": mae, "mape": mape, "MAPE": mape,
                "msle": msle, "MSLE": msle, "kld": kld, "KLD": kld, "bce": bce, "BCE": bce,
                "kullback_leibler_divergence": kld, "logcosh": log_cosh, "huber_loss": huber})


def unknown_name_error(kind, name, known):
    """A ValueError for an unknown `kind` name, listing close matches."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown {kind} {name!r}.{hint} Known {kind} names include: "
        f"{', '.join(sorted(k for k in known if not k[0].isupper()))}."
    )


def get(identifier):
    """A loss function or `Loss` object from a name, a config dict, a class or a callable."""
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in BY_NAME:
            raise unknown_name_error("loss", identifier, BY_NAME)
        obj = BY_NAME[identifier]
        return obj() if isinstance(obj, type) else obj
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise unknown_name_error("loss", identifier["class_name"], BY_NAME)
        return cls(**identifier.get("config", {})) if isinstance(cls, type) else cls
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(
        f"Cannot interpret {identifier!r} as a loss: pass a name such as 'mse', a function "
        "fn(y_true, y_pred) or a plexus.losses.Loss object."
    )


def serialize(loss):
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    return getattr(loss, "__name__", str(loss))


def deserialize(config, custom_objects=None):
    if custom_objects and isinstance(config, str) and config in custom_objects:
        return custom_objects[config]
    return get(config)
