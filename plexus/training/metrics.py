"""Metrics: stateful objects with `update_state`, `result` and `reset_state`.

State stays on the device of the data it sees, so updating a metric never waits for the device;
`result()` returns a 0-d tensor and only reading it as a number (`float(...)`) synchronizes.
"""
import re

import torch

from plexus.training import losses as L


class Metric:
    """Base class: accumulate state over batches with `update_state`, read it with `result`.

    Args:
        name: the metric's name (history keys are built from it).
        dtype: the dtype named in the config (`"float32"` by default); state is float32.
    """

    _direction = None  # "up" for metrics to maximize (what EarlyStopping's mode="auto" reads)

    def __init__(self, name=None, dtype=None):
        self.name = name or L._snake(type(self).__name__)
        self.dtype = dtype or "float32"
        self._state = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        self._state = None

    reset_states = reset_state

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class Mean(Metric):
    """The (weighted) mean of the values given to `update_state(values, sample_weight=None)`."""

    def update_state(self, values, sample_weight=None):
        values = L._as_tensor(values).detach()
        if not values.is_floating_point():
            values = values.float()
        if values.dim() > 1:
            values = values.reshape(values.shape[0], -1).mean(dim=1)
        if self._state is None:
            # [total on the device, count on the device, count kept on the host]
            self._state = [torch.zeros((), device=values.device),
                           torch.zeros((), device=values.device), 0.0]
        state = self._state
        if sample_weight is None:
            state[0] += values.sum()
            state[2] += values.numel() if values.dim() else 1
        elif not isinstance(sample_weight, torch.Tensor) and values.dim() == 0:
            state[0].add_(values, alpha=float(sample_weight))  # a batch-size weight: no sync
            state[2] += float(sample_weight)
        else:
            sw = L._as_tensor(sample_weight, values).to(values.dtype)
            values, sw = L.match_rank(values, sw)
            if sw.dim() > 1:
                sw = sw.reshape(sw.shape[0], -1).mean(dim=1)
            sw = torch.broadcast_to(sw, values.shape)
            state[0] += (values * sw).sum()
            state[1] += sw.sum()

    def result(self):
        if self._state is None:
            return torch.zeros(())
        total, count, host_count = self._state
        count = count + host_count
        return torch.where(count > 0, total / torch.clamp(count, min=1e-30),
                           torch.zeros_like(total))


class Sum(Mean):
    """The (weighted) sum of the values given to `update_state`."""

    def result(self):
        return torch.zeros(()) if self._state is None else self._state[0].clone()


class MeanMetricWrapper(Mean):
    """The running mean of `fn(y_true, y_pred)` over samples."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "metric"), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = L._as_tensor(y_pred).detach()
        y_true = L._as_tensor(y_true, y_pred)
        y_true, y_pred = L.match_rank(y_true, y_pred)
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, **self._fn_kwargs}


# ---------------------------------------------------------------------- accuracy functions
def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Fraction of predictions on the right side of `threshold`, per sample."""
    y_true, y_pred = L.match_rank(L._as_tensor(y_true, y_pred), L._as_tensor(y_pred))
    hits = (y_true.to(y_pred.dtype) == (y_pred > threshold).to(y_pred.dtype))
    return hits.float().mean(dim=-1)


def categorical_accuracy(y_true, y_pred):
    """1 where the predicted class (argmax) is the one-hot target's class."""
    return (torch.argmax(y_true, dim=-1) == torch.argmax(y_pred, dim=-1)).float()


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the predicted class (argmax) equals the integer target."""
    y_true = L._as_tensor(y_true, y_pred)
    if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    return (y_true.long() == torch.argmax(y_pred, dim=-1)).float()


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the one-hot target's class is among the `k` highest predictions."""
    return sparse_top_k_categorical_accuracy(torch.argmax(y_true, dim=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the integer target is among the `k` highest predictions."""
    y_true = L._as_tensor(y_true, y_pred)
    if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    k = min(k, y_pred.shape[-1])
    # Ties count in the target's favour only if it is strictly among the top k scores.
    target_score = torch.gather(y_pred, -1, y_true.long().unsqueeze(-1))
    higher = (y_pred > target_score).sum(dim=-1)
    return (higher < k).float()


def accuracy(y_true, y_pred):
    """1 where the prediction equals the target, elementwise."""
    y_pred = L._as_tensor(y_pred)
    y_true, y_pred = L.match_rank(L._as_tensor(y_true, y_pred).to(y_pred.dtype), y_pred)
    return (y_true == y_pred).float()


def cosine_similarity(y_true, y_pred, axis=-1):
    """Cosine of the angle between targets and predictions along `axis` (1: same direction)."""
    return -L.cosine_similarity(y_true, y_pred, axis=axis)


def pearson_correlation(y_true, y_pred, axis=-1):
    """Pearson's correlation coefficient between targets and predictions along `axis`."""
    y_true, y_pred = L._prep(y_true, y_pred)
    t = y_true - torch.mean(y_true, dim=axis, keepdim=True)
    p = y_pred - torch.mean(y_pred, dim=axis, keepdim=True)
    t = t / torch.std(t, dim=axis, keepdim=True, correction=0)
    p = p / torch.std(p, dim=axis, keepdim=True, correction=0)
    return torch.mean(t * p, dim=axis)


def concordance_correlation(y_true, y_pred, axis=-1):
    """Lin's concordance correlation coefficient along `axis`: like Pearson's, but also
    penalizing a shift or a scale between targets and predictions."""
    y_true, y_pred = L._prep(y_true, y_pred)
    t_mean = torch.mean(y_true, dim=axis, keepdim=True)
    p_mean = torch.mean(y_pred, dim=axis, keepdim=True)
    t_var = torch.var(y_true - t_mean, dim=axis, keepdim=True, correction=0)
    p_var = torch.var(y_pred - p_mean, dim=axis, keepdim=True, correction=0)
    # (as Keras computes it: both factors centred on the predictions' mean)
    covar = (y_true - p_mean) * (y_pred - p_mean)
    norm = t_var + p_var + torch.square(t_mean - p_mean)
    return torch.mean(2 * covar / (norm + L.EPSILON), dim=axis)


def _metric_class(cls_name, fn, default_name, arg_names=(), defaults=(), direction="down"):
    def __init__(self, *args, name=default_name, dtype=None, **kwargs):
        params = dict(zip(arg_names, defaults))
        params.update(zip(arg_names, args))
        for k, v in kwargs.items():
            if k not in arg_names:
                raise TypeError(f"{cls_name}: unexpected keyword argument {k!r}.")
            params[k] = v
        MeanMetricWrapper.__init__(self, fn, name=name, dtype=dtype, **params)
        for k, v in params.items():
            setattr(self, k, v)

    return type(cls_name, (MeanMetricWrapper,), {
        "__init__": __init__, "__module__": __name__, "_direction": direction,
        "__doc__": f"Running mean of `{fn.__name__}`: {fn.__doc__.splitlines()[0]}"})


BinaryAccuracy = _metric_class("BinaryAccuracy", binary_accuracy, "binary_accuracy",
                               ("threshold",), (0.5,), direction="up")
CategoricalAccuracy = _metric_class("CategoricalAccuracy", categorical_accuracy,
                                    "categorical_accuracy", direction="up")
SparseCategoricalAccuracy = _metric_class(
    "SparseCategoricalAccuracy", sparse_categorical_accuracy, "sparse_categorical_accuracy",
    direction="up")
TopKCategoricalAccuracy = _metric_class(
    "TopKCategoricalAccuracy", top_k_categorical_accuracy, "top_k_categorical_accuracy",
    ("k",), (5,), direction="up")
SparseTopKCategoricalAccuracy = _metric_class(
    "SparseTopKCategoricalAccuracy", sparse_top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy", ("k",), (5,), direction="up")
MeanSquaredError = _metric_class("MeanSquaredError", L.mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _metric_class("MeanAbsoluteError", L.mean_absolute_error,
                                  "mean_absolute_error")
MeanAbsolutePercentageError = _metric_class(
    "MeanAbsolutePercentageError", L.mean_absolute_percentage_error,
    "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _metric_class(
    "MeanSquaredLogarithmicError", L.mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error")
BinaryCrossentropy = _metric_class(
    "BinaryCrossentropy", L.binary_crossentropy, "binary_crossentropy",
    ("from_logits", "label_smoothing"), (False, 0.0))
CategoricalCrossentropy = _metric_class(
    "CategoricalCrossentropy", L.categorical_crossentropy, "categorical_crossentropy",
    ("from_logits", "label_smoothing"), (False, 0.0))
SparseCategoricalCrossentropy = _metric_class(
    "SparseCategoricalCrossentropy", L.sparse_categorical_crossentropy,
    "sparse_categorical_crossentropy", ("from_logits",), (False,))
Hinge = _metric_class("Hinge", L.hinge, "hinge")
SquaredHinge = _metric_class("SquaredHinge", L.squared_hinge, "squared_hinge")
CategoricalHinge = _metric_class("CategoricalHinge", L.categorical_hinge, "categorical_hinge")
Accuracy = _metric_class("Accuracy", accuracy, "accuracy", direction="up")
CosineSimilarity = _metric_class("CosineSimilarity", cosine_similarity, "cosine_similarity",
                                 ("axis",), (-1,), direction="up")
LogCoshError = _metric_class("LogCoshError", L.log_cosh, "logcosh")
PearsonCorrelation = _metric_class("PearsonCorrelation", pearson_correlation,
                                   "pearson_correlation", ("axis",), (-1,), direction="up")
ConcordanceCorrelation = _metric_class(
    "ConcordanceCorrelation", concordance_correlation, "concordance_correlation", ("axis",),
    (-1,), direction="up")
KLDivergence = _metric_class("KLDivergence", L.kl_divergence, "kl_divergence")
Poisson = _metric_class("Poisson", L.poisson, "poisson")


class RootMeanSquaredError(Mean):
    """Square root of the running mean of squared errors."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = L._as_tensor(y_pred).detach()
        y_true, y_pred = L.match_rank(L._as_tensor(y_true, y_pred).to(y_pred.dtype), y_pred)
        super().update_state(torch.square(y_true - y_pred), sample_weight)

    def result(self):
        return torch.sqrt(super().result())


# ---------------------------------------------------------------------- lookup
# (these build on the classes above, so they are imported once those exist)
from plexus.training import confusion_metrics, score_metrics  # noqa: E402
from plexus.training.confusion_metrics import (  # noqa: E402,F401
    AUC, FalseNegatives, FalsePositives, Precision, PrecisionAtRecall, Recall,
    RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity, TrueNegatives,
    TruePositives)
from plexus.training.score_metrics import (  # noqa: E402,F401
    BinaryIoU, F1Score, FBetaScore, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU, R2Score)

mse = MSE = L.mean_squared_error
mae = MAE = L.mean_absolute_error
mape = MAPE = L.mean_absolute_percentage_error
msle = MSLE = L.mean_squared_logarithmic_error


def keras_snake(name):
    """A class name in snake case as Keras writes it (`BinaryIoU` -> `binary_io_u`,
    `KLDivergence` -> `kl_divergence`)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_CLASSES = [Mean, Sum, MeanMetricWrapper, BinaryAccuracy, CategoricalAccuracy,
            SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
            Accuracy, MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
            MeanSquaredLogarithmicError, RootMeanSquaredError, CosineSimilarity, LogCoshError,
            BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Hinge,
            SquaredHinge, CategoricalHinge, KLDivergence, Poisson, PearsonCorrelation,
            ConcordanceCorrelation] + confusion_metrics.CLASSES + score_metrics.CLASSES
BY_NAME = {c.__name__: c for c in _CLASSES}
BY_NAME.update({keras_snake(c.__name__): c for c in _CLASSES})
BY_NAME.update({
    "bce": BinaryCrossentropy, "BCE": BinaryCrossentropy, "mse": MeanSquaredError,
    "MSE": MeanSquaredError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "rmse": RootMeanSquaredError,
})
BY_NAME.pop("accuracy")  # resolved per output by compile (binary, categorical or sparse)


def get(identifier):
    """A `Metric` object from a name, a config, a class, a `Metric` or a function."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            raise ValueError(
                "'accuracy' depends on the targets; compile resolves it per output. Use "
                "BinaryAccuracy, CategoricalAccuracy or SparseCategoricalAccuracy directly."
            )
        if identifier not in BY_NAME:
            raise L.unknown_name_error("metric", identifier, list(BY_NAME) + ["accuracy"])
        return BY_NAME[identifier]()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise L.unknown_name_error("metric", identifier["class_name"], BY_NAME)
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", None))
    raise TypeError(
        f"Cannot interpret {identifier!r} as a metric: pass a name such as 'accuracy' or 'mae', "
        "a plexus.metrics.Metric object, or a function fn(y_true, y_pred)."
    )


def serialize(metric):
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config, custom_objects=None):
    return get(config)
