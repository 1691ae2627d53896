"""Metrics built on confusion counts at thresholds: true/false positives/negatives, precision,
recall, AUC, and sensitivity/specificity/precision/recall at a fixed value of another.

A prediction counts as positive at a threshold when it is above it; a target is positive when
it is not 0. Counts live on the device (`(4, thresholds)` or `(4, thresholds, labels)` for
tp, fp, tn, fn) and only `result()` combines them.
"""
import torch

from plexus.training import losses as L
from plexus.training.metrics import Metric

NEG_INF = -1e10


def _evenly_spread(thresholds):
    """Whether `thresholds` are `i / (n - 1)` for i in 0..n-1 (then counts come from one
    histogram instead of a comparison per threshold)."""
    n = len(thresholds)
    return n >= 3 and all(abs(t - i / (n - 1)) <= 1e-7 + 1e-5 * abs(t)
                          for i, t in enumerate(thresholds))


def _prepare(y_true, y_pred, sample_weight, class_id, top_k):
    y_pred = L._as_tensor(y_pred).detach().float()
    y_true = L._as_tensor(y_true, y_pred).float()
    y_pred, y_true = L.match_rank(y_pred, y_true)
    w = None
    if sample_weight is not None:
        w = L._as_tensor(sample_weight, y_pred).float()
        if w.dim() < y_true.dim():
            w = w.reshape(tuple(w.shape) + (1,) * (y_true.dim() - w.dim()))
        w = torch.broadcast_to(w, y_pred.shape)
    if top_k is not None:
        kept = torch.zeros_like(y_pred, dtype=torch.bool)
        kept.scatter_(-1, torch.topk(y_pred, top_k, dim=-1).indices, True)
        y_pred = torch.where(kept, y_pred, torch.full_like(y_pred, NEG_INF))
    if class_id is not None:
        if y_pred.dim() == 1:
            raise ValueError("With class_id, predictions must have shape (num_samples, "
                             f"num_classes); received shape {tuple(y_pred.shape)}.")
        y_true, y_pred = y_true[..., class_id], y_pred[..., class_id]
        w = None if w is None else w[..., class_id]
    return y_true, y_pred, w


def confusion_counts(y_true, y_pred, thresholds, sample_weight=None, class_id=None,
                     top_k=None, multi_label=False, label_weights=None, evenly=False):
    """`(4, T)` weighted counts [tp, fp, tn, fn] at each of the T `thresholds` (`(4, T, L)`
    per label with `multi_label`). `evenly`: the thresholds are spread evenly over [0, 1],
    perhaps with the ends moved just outside it."""
    y_true, y_pred, w = _prepare(y_true, y_pred, sample_weight, class_id, top_k)
    pos = (y_true != 0).float()
    weight = torch.ones_like(y_pred) if w is None else w
    if label_weights is not None and not multi_label:
        weight = weight * torch.as_tensor(label_weights, dtype=weight.dtype,
                                          device=weight.device)
    if multi_label:
        y_pred, pos, weight = (t.reshape(-1, t.shape[-1]) for t in (y_pred, pos, weight))
    else:
        y_pred, pos, weight = (t.reshape(-1, 1) for t in (y_pred, pos, weight))
    true_w, false_w = pos * weight, (1 - pos) * weight
    if evenly:
        tp, fp = _counts_by_bucket(y_pred, true_w, false_w, len(thresholds), thresholds[0] < 0)
    else:
        th = torch.as_tensor(thresholds, dtype=y_pred.dtype, device=y_pred.device)
        above = (y_pred.unsqueeze(0) > th.reshape(-1, 1, 1)).float()  # (T, N, labels)
        tp, fp = (above * true_w).sum(1), (above * false_w).sum(1)
    fn = true_w.sum(0) - tp
    tn = false_w.sum(0) - fp
    out = torch.stack([tp, fp, tn, fn])
    return out if multi_label else out[..., 0]


def _counts_by_bucket(y_pred, true_w, false_w, n, with_epsilon):
    """tp and fp `(n, labels)` for evenly spread thresholds from one weighted histogram of
    the predictions per label (as Keras buckets them: `ceil(p * (n - 1))`)."""
    labels = y_pred.shape[1]
    idx = torch.ceil(torch.clamp(y_pred, 0.0, 1.0) * (n - 1)).long()
    if with_epsilon:  # the first threshold is just below 0, so a prediction of 0 is above it
        idx = torch.clamp(idx, min=1)
    flat = (idx + torch.arange(labels, device=idx.device) * (n + 1)).reshape(-1)
    hist_t = torch.zeros(labels * (n + 1), device=y_pred.device).index_add_(
        0, flat, true_w.reshape(-1)).reshape(labels, n + 1)
    hist_f = torch.zeros(labels * (n + 1), device=y_pred.device).index_add_(
        0, flat, false_w.reshape(-1)).reshape(labels, n + 1)
    # above threshold i <=> bucket index >= i + 1: a reversed cumulative sum, shifted by one
    tp = torch.flip(torch.cumsum(torch.flip(hist_t, [1]), 1), [1])[:, 1:]
    fp = torch.flip(torch.cumsum(torch.flip(hist_f, [1]), 1), [1])[:, 1:]
    return tp.T, fp.T


def _divide(a, b):
    """`a / b`, 0 where `b` is 0."""
    return torch.where(b != 0, a / torch.where(b != 0, b, torch.ones_like(b)), torch.zeros_like(a))


def _check_thresholds(thresholds, default):
    if thresholds is None:
        return [default]
    values = list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds]
    bad = [t for t in values if t is None or not 0 <= t <= 1]
    if bad:
        raise ValueError(f"Threshold values must be in [0, 1]; received {bad}.")
    return [float(t) for t in values]


class _Counts(Metric):
    """Accumulates `confusion_counts` in `self._state`."""

    thresholds = (0.5,)
    class_id = top_k = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts = confusion_counts(y_true, y_pred, self.thresholds, sample_weight,
                                  self.class_id, self.top_k,
                                  evenly=_evenly_spread(self.thresholds))
        self._state = counts if self._state is None else self._state + counts

    def _counts(self):
        if self._state is None:
            return torch.zeros(4, len(self.thresholds))
        return self._state

    def _one(self, values):
        return values[0] if len(self.thresholds) == 1 else values


class _ConditionCount(_Counts):
    _row = 0

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _check_thresholds(thresholds, 0.5)

    def result(self):
        return self._one(self._counts()[self._row].clone())

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConditionCount):
    """The (weighted) number of positives predicted above `thresholds` (default 0.5)."""
    _row = 0


class FalsePositives(_ConditionCount):
    """The (weighted) number of negatives predicted above `thresholds` (default 0.5)."""
    _row = 1


class TrueNegatives(_ConditionCount):
    """The (weighted) number of negatives predicted at or below `thresholds` (default 0.5)."""
    _row = 2


class FalseNegatives(_ConditionCount):
    """The (weighted) number of positives predicted at or below `thresholds` (default 0.5)."""
    _row = 3


class Precision(_Counts):
    """Fraction of predicted positives (`pred > thresholds`, default 0.5) that are positive.

    Args:
        thresholds: a threshold or a list (one result per threshold).
        top_k: count only each sample's `top_k` highest predictions as predicted positive.
        class_id: compute the metric for this class (last axis) only.
    """

    _direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        self.thresholds = _check_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)

    def result(self):
        tp, fp, tn, fn = self._counts()
        return self._one(_divide(tp, tp + fp))

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Recall(Precision):
    """Fraction of positives predicted positive (`pred > thresholds`, default 0.5)."""

    def result(self):
        tp, fp, tn, fn = self._counts()
        return self._one(_divide(tp, tp + fn))


class _AtFixedValue(_Counts):
    """The best value of one rate among the thresholds where another rate reaches `value`
    (`num_thresholds` thresholds spread over [0, 1])."""

    _direction = "up"

    _fixed = "value"

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if not 0 <= value <= 1:
            raise ValueError(f"{type(self).__name__}: {self._fixed} must be in [0, 1]; "
                             f"received {value!r}.")
        if num_thresholds <= 0:
            raise ValueError(f"{type(self).__name__}: num_thresholds must be an integer > 0; "
                             f"received {num_thresholds!r}.")
        super().__init__(name=name, dtype=dtype)
        setattr(self, self._fixed, value)
        self.value, self.num_thresholds, self.class_id = value, num_thresholds, class_id
        self.thresholds = [0.5] if num_thresholds == 1 else \
            [i / (num_thresholds - 1) for i in range(num_thresholds)]

    def _rates(self):
        tp, fp, tn, fn = self._counts()
        return {"sensitivity": _divide(tp, tp + fn), "specificity": _divide(tn, tn + fp),
                "precision": _divide(tp, tp + fp)}

    def result(self):
        rates = self._rates()
        rates["recall"] = rates["sensitivity"]
        constrained, dependent = rates[self._fixed], rates[self._sought]
        feasible = constrained >= self.value
        return torch.clamp(torch.max(torch.where(feasible, dependent, torch.zeros_like(dependent))),
                           min=0.0)

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id,
                "num_thresholds": self.num_thresholds, self._fixed: self.value}


class SensitivityAtSpecificity(_AtFixedValue):
    """The best sensitivity (recall, `tp / (tp + fn)`) at a threshold whose specificity
    (`tn / (tn + fp)`) is at least `specificity`."""

    _fixed, _sought = "specificity", "sensitivity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)


class SpecificityAtSensitivity(_AtFixedValue):
    """The best specificity at a threshold whose sensitivity is at least `sensitivity`."""

    _fixed, _sought = "sensitivity", "specificity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)


class PrecisionAtRecall(_AtFixedValue):
    """The best precision at a threshold whose recall is at least `recall`."""

    _fixed, _sought = "recall", "precision"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)


class RecallAtPrecision(_AtFixedValue):
    """The best recall at a threshold whose precision is at least `precision` (0 when no
    threshold reaches it)."""

    _fixed, _sought = "precision", "recall"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(_Counts):
    """Area under the ROC (default), PR or PR-gain curve, from counts at `num_thresholds`
    thresholds over [0, 1].

    Args:
        num_thresholds: number of thresholds (200), or give `thresholds` (inside (0, 1)).
        curve: `"ROC"`, `"PR"` or `"PRGAIN"`.
        summation_method: `"interpolation"` (default), `"minoring"` or `"majoring"`.
        multi_label: treat each column of the predictions as its own label, compute an AUC
            per label and average them (weighted by `label_weights`); otherwise all values
            are pooled into one curve.
        num_labels: the number of labels with `multi_label` (else known on the first batch).
        label_weights: one weight per label (per column when pooled).
        from_logits: apply a sigmoid to predictions first.
    """

    _direction = "up"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        super().__init__(name=name or "auc", dtype=dtype)
        if not isinstance(curve, str) or curve.lower() not in _CURVES:
            raise ValueError(f"AUC: curve must be 'ROC', 'PR' or 'PRGAIN'; received {curve!r}.")
        if not isinstance(summation_method, str) or summation_method.lower() not in _SUMMATIONS:
            raise ValueError("AUC: summation_method must be 'interpolation', 'majoring' or "
                             f"'minoring'; received {summation_method!r}.")
        if num_labels and not multi_label:
            raise ValueError("AUC: num_labels is needed only when multi_label is True.")
        self.curve, self.summation_method = _CURVES[curve.lower()], summation_method.lower()
        self.multi_label, self.num_labels, self.from_logits = multi_label, num_labels, from_logits
        self.label_weights = None if label_weights is None else \
            [float(v) for v in label_weights]
        self._given_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
            self._evenly = _evenly_spread([0.0] + inner + [1.0])
        else:
            if num_thresholds <= 1:
                raise ValueError(f"AUC: num_thresholds must be an integer > 1; received "
                                 f"{num_thresholds!r}.")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
            self._evenly = True
        self.thresholds = [0.0 - L.EPSILON] + inner + [1.0 + L.EPSILON]

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = L._as_tensor(y_pred)
        if self.from_logits:
            y_pred = torch.sigmoid(y_pred)
        counts = confusion_counts(
            y_true, y_pred, self.thresholds, sample_weight, multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
            evenly=self._evenly)
        self._state = counts if self._state is None else self._state + counts

    def _counts(self):
        if self._state is not None:
            return self._state
        shape = (4, self.num_thresholds) + ((self.num_labels or 1,) if self.multi_label else ())
        return torch.zeros(shape)

    def result(self):
        tp, fp, tn, fn = self._counts()
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._per_label(self._interpolated_pr(tp, fp, fn))
        recall = _divide(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide(tp, tp + fp)
        else:
            x, y = self._gains(tp, fp, tn, fn)
        if self.summation_method == "minoring":
            heights = torch.minimum(y[:-1], y[1:])
        elif self.summation_method == "majoring":
            heights = torch.maximum(y[:-1], y[1:])
        else:
            heights = (y[:-1] + y[1:]) / 2.0
        return self._per_label((x[:-1] - x[1:]) * heights)

    @staticmethod
    def _gains(tp, fp, tn, fn):
        scale = _divide(tp + fn, tn + fp)
        recall_gain = torch.where(tp == 0, torch.zeros_like(tp), 1.0 - scale * _divide(fn, tp))
        precision_gain = torch.where(tp == 0, torch.ones_like(tp),
                                     1.0 - scale * _divide(fp, tp))
        return torch.clamp(recall_gain, min=0.0), precision_gain

    @staticmethod
    def _interpolated_pr(tp, fp, fn):
        """Davis & Goadrich's interpolation between thresholds: precision varies along the
        segment as `tp / p` with tp and p = tp + fp linear in it."""
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide(dtp, torch.clamp(dp, min=0))
        intercept = tp[1:] - slope * p[1:]
        ratio = torch.where((p[:-1] > 0) & (p[1:] > 0), _divide(p[:-1], torch.clamp(p[1:], min=0)),
                            torch.ones_like(p[1:]))
        return _divide(slope * (dtp + intercept * torch.log(ratio)),
                       torch.clamp(tp[1:] + fn[1:], min=0))

    def _per_label(self, terms):
        if not self.multi_label:
            return torch.sum(terms)
        by_label = torch.sum(terms, dim=0)
        if self.label_weights is None:
            return torch.mean(by_label)
        w = torch.as_tensor(self.label_weights, dtype=by_label.dtype, device=by_label.device)
        return _divide(torch.sum(by_label * w), torch.sum(w))

    def get_config(self):
        config = {**super().get_config(), "num_thresholds": self.num_thresholds,
                  "curve": self.curve, "summation_method": self.summation_method,
                  "multi_label": self.multi_label, "num_labels": self.num_labels,
                  "label_weights": self.label_weights, "from_logits": self.from_logits}
        if self._given_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


CLASSES = [TruePositives, FalsePositives, TrueNegatives, FalseNegatives, Precision, Recall,
           SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall,
           RecallAtPrecision, AUC]
