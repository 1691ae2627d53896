"""Metrics: stateful objects with `update_state`, `result` and `reset_state`.

State stays on the device of the data it sees, so updating a metric never waits for the device;
`result()` returns a 0-d tensor and only reading it as a number (`float(...)`) synchronizes.
"""
import torch

from plexus import config
from plexus.graph.tensor import standardize_dtype
from plexus.training import losses as L
from plexus.variables import Variable


class Metric:
    """Base class: accumulate state over batches with `update_state`, read it with `result`.

    A metric of your own keeps its state in variables made with `add_variable` (as in Keras 3):

        class TruePositives(plexus.metrics.Metric):
            def __init__(self, name="true_positives", **kwargs):
                super().__init__(name=name, **kwargs)
                self.count = self.add_variable(shape=(), initializer="zeros", name="count")

            def update_state(self, y_true, y_pred, sample_weight=None):
                self.count.assign_add(((y_pred > 0.5) & (y_true > 0.5)).sum())

            def result(self):
                return self.count

    The default `reset_state` sets every such variable to zero.

    Args:
        name: the metric's name (history keys are built from it).
        dtype: the dtype of the metric's variables (`plexus.config.floatx()` by default).
    """

    def __init__(self, name=None, dtype=None):
        self.name = name or L._snake(type(self).__name__)
        self._state = None
        self._dtype = getattr(dtype, "name", None) if hasattr(dtype, "compute_dtype") else dtype
        self._dtype = standardize_dtype(self._dtype)  # None: floatx()
        self._variables = []

    @property
    def dtype(self):
        return self.__dict__.get("_dtype") or config.floatx()

    def add_variable(self, shape, initializer, dtype=None, aggregation="sum", name=None):
        """Create a state variable (a non-trainable `plexus.Variable`) of this metric."""
        var = Variable(initializer, shape=shape, dtype=dtype or self.dtype, trainable=False,
                       aggregation=aggregation, name=name)
        var._spec.path = f"{self.name}/{var.name}"
        self.__dict__.setdefault("_variables", []).append(var)
        return var

    def add_weight(self, shape=(), initializer=None, dtype=None, name=None):
        """`add_variable` under its older name (zeros unless `initializer` is given)."""
        return self.add_variable(shape, initializer or "zeros", dtype=dtype, name=name)

    @property
    def variables(self):
        """The variables made with `add_variable`, then those of metrics held as attributes."""
        out = list(self.__dict__.get("_variables", ()))
        for value in vars(self).values():
            if isinstance(value, Metric) and value is not self:
                out.extend(value.variables)
        return out

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        """Forget the accumulated state (zero every variable made with `add_variable`)."""
        self._state = None
        for v in self.variables:
            v.assign(torch.zeros(v.shape, dtype=v.dtype))

    def reset_states(self):
        self.reset_state()

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self):
        return {"name": self.name}

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
        super().__init__(name=name or getattr(fn, "__name__", "metric"))
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = L._as_tensor(y_pred).detach()
        y_true = L._as_tensor(y_true, y_pred)
        y_true, y_pred = L.match_rank(y_true, y_pred)
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight)

    def get_config(self):
        return {"name": self.name, **self._fn_kwargs}


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


def _metric_class(cls_name, fn, default_name, arg_names=(), defaults=()):
    def __init__(self, *args, name=default_name, dtype=None, **kwargs):
        params = dict(zip(arg_names, defaults))
        params.update(zip(arg_names, args))
        for k, v in kwargs.items():
            if k not in arg_names:
                raise TypeError(f"{cls_name}: unexpected keyword argument {k!r}.")
            params[k] = v
        MeanMetricWrapper.__init__(self, fn, name=name, **params)
        for k, v in params.items():
            setattr(self, k, v)

    return type(cls_name, (MeanMetricWrapper,), {
        "__init__": __init__, "__module__": __name__,
        "__doc__": f"Running mean of `{fn.__name__}`: {fn.__doc__.splitlines()[0]}"})


BinaryAccuracy = _metric_class("BinaryAccuracy", binary_accuracy, "binary_accuracy",
                               ("threshold",), (0.5,))
CategoricalAccuracy = _metric_class("CategoricalAccuracy", categorical_accuracy,
                                    "categorical_accuracy")
SparseCategoricalAccuracy = _metric_class(
    "SparseCategoricalAccuracy", sparse_categorical_accuracy, "sparse_categorical_accuracy")
TopKCategoricalAccuracy = _metric_class(
    "TopKCategoricalAccuracy", top_k_categorical_accuracy, "top_k_categorical_accuracy",
    ("k",), (5,))
SparseTopKCategoricalAccuracy = _metric_class(
    "SparseTopKCategoricalAccuracy", sparse_top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy", ("k",), (5,))
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
KLDivergence = _metric_class("KLDivergence", L.kl_divergence, "kl_divergence")
Poisson = _metric_class("Poisson", L.poisson, "poisson")


class RootMeanSquaredError(Mean):
    """Square root of the running mean of squared errors."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = L._as_tensor(y_pred).detach()
        y_true, y_pred = L.match_rank(L._as_tensor(y_true, y_pred).to(y_pred.dtype), y_pred)
        super().update_state(torch.square(y_true - y_pred), sample_weight)

    def result(self):
        return torch.sqrt(super().result())


# ---------------------------------------------------------------------- confusion-based metrics
class _Confusion(Metric):
    """Counts of true/false positives/negatives at a set of thresholds (`pred > threshold`)."""

    def _counts(self, y_true, y_pred, sample_weight, thresholds):
        y_pred = L._as_tensor(y_pred).detach().float()
        y_true = L._as_tensor(y_true, y_pred).float()
        y_true, y_pred = L.match_rank(y_true, y_pred)
        pred = y_pred.reshape(-1, 1)
        pos = (y_true.reshape(-1, 1) > 0.5)
        w = torch.ones_like(pred)
        if sample_weight is not None:
            sw = L._as_tensor(sample_weight, y_pred).float()
            sw, _ = L.match_rank(sw, y_pred)
            w = torch.broadcast_to(sw, y_pred.shape).reshape(-1, 1)
        th = torch.as_tensor(thresholds, dtype=pred.dtype, device=pred.device).reshape(1, -1)
        above = pred > th
        tp = ((above & pos) * w).sum(0)
        fp = ((above & ~pos) * w).sum(0)
        fn = ((~above & pos) * w).sum(0)
        tn = ((~above & ~pos) * w).sum(0)
        counts = torch.stack([tp, fp, tn, fn])
        if self._state is None:
            self._state = counts
        else:
            self._state = self._state + counts


class AUC(_Confusion):
    """Area under the ROC (default) or PR curve, from counts at `num_thresholds` thresholds.

    Args:
        num_thresholds: number of thresholds evenly spread over [0, 1] (default 200).
        curve: `"ROC"` or `"PR"`.
        summation_method: `"interpolation"` (default), `"minoring"` or `"majoring"`.
        from_logits: apply a sigmoid to predictions first.
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        super().__init__(name=name or "auc")
        if curve.upper() not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR'; received {curve!r}.")
        self.curve, self.summation_method = curve.upper(), summation_method
        self.from_logits = from_logits
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
        else:
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
        eps = config.epsilon()
        self.thresholds = [0.0 - eps] + inner + [1.0 + eps]

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = L._as_tensor(y_pred)
        if self.from_logits:
            y_pred = torch.sigmoid(y_pred)
        self._counts(y_true, y_pred, sample_weight, self.thresholds)

    def result(self):
        if self._state is None:
            return torch.zeros(())
        tp, fp, tn, fn = self._state
        div = lambda a, b: torch.where(b > 0, a / torch.where(b > 0, b, torch.ones_like(b)),  # noqa
                                       torch.zeros_like(a))
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr(tp, fp, fn, div)
        recall = div(tp, tp + fn)
        if self.curve == "ROC":
            x, y = div(fp, fp + tn), recall
        else:
            x, y = recall, div(tp, tp + fp)
        if self.summation_method == "minoring":
            heights = torch.minimum(y[:-1], y[1:])
        elif self.summation_method == "majoring":
            heights = torch.maximum(y[:-1], y[1:])
        else:
            heights = (y[:-1] + y[1:]) / 2.0
        return torch.sum((x[:-1] - x[1:]) * heights)

    def _interpolate_pr(self, tp, fp, fn, div):
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = div(dtp, torch.clamp(dp, min=0))
        intercept = tp[1:] - slope * p[1:]
        ratio = torch.where((p[:-1] > 0) & (p[1:] > 0), div(p[:-1], torch.clamp(p[1:], min=0)),
                            torch.ones_like(p[1:]))
        return torch.sum(div(slope * (dtp + intercept * torch.log(ratio)),
                             torch.clamp(tp[1:] + fn[1:], min=0)))

    def get_config(self):
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "from_logits": self.from_logits}


class Precision(_Confusion):
    """Fraction of predicted positives (`pred > thresholds`, default 0.5) that are positive."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name or "precision")
        self.init_thresholds = thresholds
        self.class_id = class_id
        self.thresholds = [0.5] if thresholds is None else (
            list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds])

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.class_id is not None:
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
        self._counts(y_true, y_pred, sample_weight, self.thresholds)

    def _value(self, a, b):
        v = torch.where(b > 0, a / torch.where(b > 0, b, torch.ones_like(b)), torch.zeros_like(a))
        return v[0] if len(self.thresholds) == 1 else v

    def result(self):
        if self._state is None:
            return torch.zeros(())
        tp, fp, tn, fn = self._state
        return self._value(tp, tp + fp)

    def get_config(self):
        return {"name": self.name, "thresholds": self.init_thresholds, "class_id": self.class_id}


class Recall(Precision):
    """Fraction of positives that are predicted positive (`pred > thresholds`, default 0.5)."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(thresholds, top_k, class_id, name=name or "recall")

    def result(self):
        if self._state is None:
            return torch.zeros(())
        tp, fp, tn, fn = self._state
        return self._value(tp, tp + fn)


# ---------------------------------------------------------------------- lookup
accuracy = acc = None  # resolved per output by `get_metric` (binary, categorical or sparse)
mse = MSE = L.mean_squared_error
mae = MAE = L.mean_absolute_error
mape = MAPE = L.mean_absolute_percentage_error
msle = MSLE = L.mean_squared_logarithmic_error

_CLASSES = [Mean, Sum, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
            TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
            MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
            RootMeanSquaredError, BinaryCrossentropy, CategoricalCrossentropy,
            SparseCategoricalCrossentropy, Hinge, KLDivergence, Poisson, AUC, Precision, Recall]
BY_NAME = {c.__name__: c for c in _CLASSES}
BY_NAME.update({L._snake(c.__name__): c for c in _CLASSES})
BY_NAME.update({
    "auc": AUC, "mse": MeanSquaredError, "MSE": MeanSquaredError, "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError, "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError, "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError, "rmse": RootMeanSquaredError,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "k_l_divergence": KLDivergence, "kl_divergence": KLDivergence,
    "a_u_c": AUC,
})
BY_NAME.pop("a_u_c")
BY_NAME.pop("k_l_divergence")


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
