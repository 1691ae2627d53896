"""Scores accumulated per class: F-scores, the coefficient of determination (R2) and
intersection-over-union. Their state is a few per-class sums on the device, sized on the
first batch."""
import warnings

import torch

from plexus.training import losses as L
from plexus.training.metrics import Metric

_EPS = L.EPSILON


def _two_d(metric, y_true, y_pred):
    if y_pred.dim() != 2 or y_true.dim() != 2:
        raise ValueError(f"{type(metric).__name__} expects 2-D inputs of shape (batch_size, "
                         f"output_dim); received y_true.shape={tuple(y_true.shape)} and "
                         f"y_pred.shape={tuple(y_pred.shape)}.")


def _add(metric, values):
    """Add the stacked sums `values` to the metric's state."""
    metric._state = values if metric._state is None else metric._state + values


class FBetaScore(Metric):
    """F-beta score per class: `(1 + beta**2) * precision * recall / (beta**2 * precision +
    recall)`, from counts accumulated over batches of shape (batch_size, num_classes).

    Args:
        average: None (a score per class), `"micro"` (one score from counts pooled over
            classes), `"macro"` (mean of the class scores) or `"weighted"` (mean weighted by
            each class's number of true instances).
        beta: the weight of recall against precision (a float > 0).
        threshold: predictions above it are positive; None makes the highest prediction of
            each row positive.
    """

    _direction = "up"

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{type(self).__name__}: average must be None, 'micro', 'macro' "
                             f"or 'weighted'; received {average!r}.")
        if not isinstance(beta, float) or beta <= 0.0:
            raise ValueError(f"{type(self).__name__}: beta must be a Python float > 0; "
                             f"received {beta!r}.")
        if threshold is not None and (not isinstance(threshold, float)
                                      or not 0.0 < threshold <= 1.0):
            raise ValueError(f"{type(self).__name__}: threshold must be a Python float with "
                             f"0 < threshold <= 1, or None; received {threshold!r}.")
        self.average, self.beta, self.threshold = average, beta, threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = L._as_tensor(y_pred).detach().float()
        y_true = L._as_tensor(y_true, y_pred).float()
        _two_d(self, y_true, y_pred)
        if self.threshold is None:
            top = torch.amax(y_pred, dim=-1, keepdim=True)
            pred = ((y_pred >= top) & (torch.abs(y_pred) > 1e-9)).float()
        else:
            pred = (y_pred > self.threshold).float()
        parts = torch.stack([pred * y_true, pred * (1 - y_true), (1 - pred) * y_true, y_true])
        if sample_weight is not None:
            parts = parts * L._as_tensor(sample_weight, y_pred).float().reshape(1, -1, 1)
        _add(self, parts.sum(dim=(1, 2) if self.average == "micro" else 1))

    def result(self):
        if self._state is None:
            return torch.zeros(())
        tp, fp, fn, support = self._state
        precision = tp / (tp + fp + _EPS)
        recall = tp / (tp + fn + _EPS)
        b2 = self.beta ** 2
        score = (1 + b2) * precision * recall / (b2 * precision + recall + _EPS)
        if self.average == "weighted":
            return torch.sum(score * support / (torch.sum(support) + _EPS))
        return torch.mean(score) if self.average is not None else score

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score per class (`FBetaScore` with beta 1): the harmonic mean of precision and
    recall."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


class R2Score(Metric):
    """The coefficient of determination of each output column, `1 - SS_res / SS_tot`,
    aggregated over columns.

    Args:
        class_aggregation: `"uniform_average"` (mean over columns), `"variance_weighted_
            average"` (weighted by each column's variance) or None (one score per column).
        num_regressors: with more than 0, the adjusted R2 for that many regressors.
    """

    _direction = "up"

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError("R2Score: class_aggregation must be None, 'uniform_average' or "
                             f"'variance_weighted_average'; received {class_aggregation!r}.")
        if num_regressors < 0:
            raise ValueError(f"R2Score: num_regressors must be >= 0; received {num_regressors}.")
        self.class_aggregation, self.num_regressors = class_aggregation, num_regressors
        self._samples = 0  # number of values seen, kept on the host (shapes are known there)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = L._as_tensor(y_pred).detach().float()
        y_true = L._as_tensor(y_true, y_pred).float()
        y_true, y_pred = L.match_rank(y_true, y_pred)
        _two_d(self, y_true, y_pred)
        w = torch.ones((), device=y_pred.device) if sample_weight is None else \
            L._as_tensor(sample_weight, y_pred).float()
        if w.dim() == 1:
            w = w.unsqueeze(1)
        w = torch.broadcast_to(w, y_true.shape)
        weighted = y_true * w
        sums = torch.stack([weighted.sum(0), (y_true * weighted).sum(0),
                            (torch.square(y_true - y_pred) * w).sum(0), w.sum(0)])
        _add(self, sums)
        self._samples += y_true.numel()

    def reset_state(self):
        super().reset_state()
        self._samples = 0

    def result(self):
        if self._state is None:
            return torch.zeros(())
        total, squares, residual, count = self._state
        variation = squares - total * (total / count)
        raw = 1 - residual / variation
        raw = torch.where(torch.isinf(raw), torch.zeros_like(raw), raw)
        if self.class_aggregation == "uniform_average":
            score = torch.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = torch.sum(variation * raw) / torch.sum(variation)
        else:
            score = raw
        n, p = self._samples, self.num_regressors
        if p:
            if p >= n - 1:
                warnings.warn("R2Score: as many regressors as data points or more; returning "
                              "the plain R2 score instead of the adjusted one.", stacklevel=2)
            else:
                score = 1 - (1 - score) * (n - 1) / (n - p - 1)
        return score

    def get_config(self):
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


_INT_DTYPES = (None, "int", "int32", "int64")


class IoU(Metric):
    """Intersection over union, `tp / (tp + fp + fn)`, of the classes in
    `target_class_ids`, averaged over those that occur, from a confusion matrix accumulated
    over batches.

    Args:
        num_classes: the number of classes.
        target_class_ids: the classes to average over.
        ignore_class: a class id left out (e.g. a "void" label).
        sparse_y_true, sparse_y_pred: whether targets / predictions are class ids; if not,
            the argmax over `axis` is taken.
        dtype: the dtype of the counts; integer by default, as in Keras, which truncates
            fractional sample weights.
    """

    _direction = "up"

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(name=name, dtype="int32" if dtype in _INT_DTYPES else dtype)
        if max(target_class_ids) >= num_classes:
            raise ValueError(f"{type(self).__name__}: target class id {max(target_class_ids)} "
                             f"is out of range [0, {num_classes}).")
        self.num_classes, self.target_class_ids = num_classes, list(target_class_ids)
        self.ignore_class, self.axis = ignore_class, axis
        self.sparse_y_true, self.sparse_y_pred = sparse_y_true, sparse_y_pred

    def _classes(self, y_true, y_pred):
        if not self.sparse_y_true:
            y_true = torch.argmax(y_true, dim=self.axis)
        if not self.sparse_y_pred:
            y_pred = torch.argmax(y_pred, dim=self.axis)
        return y_true, y_pred

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = L._as_tensor(y_pred).detach()
        y_true = L._as_tensor(y_true, y_pred)
        y_true, y_pred = self._classes(y_true, y_pred)
        integer = self.dtype in _INT_DTYPES
        y_true, y_pred = y_true.reshape(-1).long(), y_pred.reshape(-1).long()
        if sample_weight is None:
            w = torch.ones(y_true.shape, device=y_true.device)
        else:
            w = L._as_tensor(sample_weight, y_pred)
            if integer and w.is_floating_point():
                warnings.warn(f"{type(self).__name__} counts in integers (dtype {self.dtype!r}) "
                              "and truncates fractional sample weights; pass dtype='float32' to "
                              "keep them.", stacklevel=2)
            w = torch.broadcast_to(w.float().reshape(-1), y_true.shape)
        if integer:
            w = torch.trunc(w)
        n = self.num_classes
        keep = (y_true >= 0) & (y_true < n) & (y_pred >= 0) & (y_pred < n)
        if self.ignore_class is not None:
            keep = keep & (y_true != self.ignore_class)
        cell = torch.where(keep, y_true * n + y_pred, torch.zeros_like(y_true))
        matrix = torch.zeros(n * n, device=y_true.device).index_add_(
            0, cell, torch.where(keep, w, torch.zeros_like(w)))
        _add(self, matrix.reshape(n, n))

    def result(self):
        if self._state is None:
            return torch.zeros(())
        cm = self._state
        tp = torch.diagonal(cm)
        denominator = cm.sum(0) + cm.sum(1) - tp
        ids = torch.as_tensor(self.target_class_ids, device=cm.device)
        tp, denominator = tp[ids], denominator[ids]
        valid = denominator > 1e-9
        iou = torch.where(valid, tp / (denominator + _EPS), torch.zeros_like(tp))
        return torch.sum(iou) / (valid.float().sum() + _EPS)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of a binary task: predictions at or above `threshold` are class 1.

    Args:
        target_class_ids: `[0]`, `[1]` or `[0, 1]` (the mean of both).
    """

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(2, target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = (L._as_tensor(y_pred).float() >= self.threshold).long()
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self):
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold,
                "name": self.name, "dtype": self.dtype}


class MeanIoU(IoU):
    """IoU averaged over all `num_classes` classes (those that occur)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=sparse_y_true,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["target_class_ids"]
        return config


class OneHotIoU(IoU):
    """IoU for one-hot targets (and, unless `sparse_y_pred`, score predictions): both are
    turned into class ids by argmax over `axis`."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """MeanIoU for one-hot targets (and, unless `sparse_y_pred`, score predictions)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config


CLASSES = [FBetaScore, F1Score, R2Score, IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU]
