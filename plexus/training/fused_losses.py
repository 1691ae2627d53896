"""Fused rules: a loss and the model's final activation as one closed-form value and gradient.

Softmax followed by cross-entropy has the gradient `(p * sum(y) - y) / N` with respect to the
logits; sigmoid followed by binary cross-entropy `(p - y) / (N * units)`; mean squared error
`2 (z - y) / (N * units)` through whatever came before. A loss function that has such a rule
names it here (`RULES`); `LossFunctionWrapper._fused_rule` decides, from the loss's own
settings, whether it applies. The training engine (`plexus/training/backprop.py`) uses the rule
with the layers' closed-form rules (`plexus/layers/closed_form.py`); the loss function itself
(`plexus/training/losses.py`), run through autograd, is the definition of what the rule
computes, and tests/test_backprop.py compares the two.
"""
import torch
import torch.nn.functional as F

from plexus import activations as A
from plexus.training import losses as L


def _log_softmax_last(z):
    """log_softmax over the last axis (over the transposed view where
    `activations._short_last_axis`)."""
    if A._short_last_axis(z):
        return torch.log_softmax(z.t(), 0).t()
    return torch.log_softmax(z, -1)


class FusedRule:
    """`loss(z, y, w)` and `weighted(z, y, sw, w)` return `(unweighted loss, its gradient with
    respect to z times the loss weight w, the prediction)`; `(None, None, None)` when the batch
    needs the loss's own code (e.g. to explain a class id out of range). `targets` prepares
    the batch's targets or returns None (autograd then explains the mismatch)."""

    absorbs = None  # the final activation the rule computes itself (None: the layer's stays)

    def __init__(self, from_logits=False, smoothing=0.0):
        self.from_logits, self.smoothing = from_logits, smoothing
        if self.final is not None:
            self.absorbs = A.linear if from_logits else self.final

    final = None

    def targets(self, y, n, units):
        if y.dim() == 1 and units == 1:
            y = y.unsqueeze(-1)
        if y.dim() != 2 or y.shape[0] != n or (units is not None and y.shape[1] != units):
            return None
        if y.dtype != torch.float32:
            y = y.to(torch.float32)
        if self.smoothing:
            k = y.shape[-1] if isinstance(self, CategoricalRule) else 2
            y = y * (1.0 - self.smoothing) + self.smoothing / k
        return y

    def fits(self, z, y):
        return z.shape == y.shape


class CategoricalRule(FusedRule):
    final = staticmethod(A.softmax)

    def loss(self, z, y, w):
        n = z.shape[0]
        log_p = _log_softmax_last(z)
        p = log_p.exp()
        value = torch.mul(log_p, y).sum().mul_(-1.0 / n)
        # d/dz of -sum(y * log_softmax(z)) is p * sum(y) - y (targets need not sum to 1)
        grad = torch.addcmul(y, p, y.sum(-1, keepdim=True), value=-1).mul_(-w / n)
        return value, grad, (z if self.from_logits else p)

    def weighted(self, z, y, sw, w):
        n = z.shape[0]
        log_p = _log_softmax_last(z)
        p = log_p.exp()
        per = torch.mul(log_p, y).sum(-1).neg_()
        grad = torch.addcmul(y, p, y.sum(-1, keepdim=True), value=-1).neg_()
        return (*_weigh(per, grad, sw, w, n), (z if self.from_logits else p))


class SparseRule(FusedRule):
    final = staticmethod(A.softmax)

    def targets(self, y, n, units):
        if y.dim() == 2 and y.shape[-1] == 1:
            y = y.squeeze(-1)
        return y.long() if tuple(y.shape) == (n,) else None

    def fits(self, z, y):
        return True  # (an id out of range is caught by `gather`)

    @staticmethod
    def _probs(z, y):
        """`(p, idx, picked)`: softmax of `z`, the target ids as a column, and their log
        probabilities; None when an id is out of range."""
        log_p = _log_softmax_last(z)
        idx = y.unsqueeze(1)
        picked = _picked(log_p, idx)
        return None if picked is None else (log_p.exp(), idx, picked)

    def loss(self, z, y, w):
        n = z.shape[0]
        found = self._probs(z, y)
        if found is None:
            return None, None, None
        p, idx, picked = found
        value = picked.sum().mul_(-1.0 / n)
        grad = p.mul(w / n).scatter_add_(
            1, idx, torch.full((n, 1), -w / n, dtype=z.dtype, device=z.device))
        return value, grad, (z if self.from_logits else p)

    def weighted(self, z, y, sw, w):
        n = z.shape[0]
        found = self._probs(z, y)
        if found is None:
            return None, None, None
        p, idx, picked = found
        per = picked.squeeze(1).neg_()
        grad = p.clone().scatter_add_(
            1, idx, torch.full((n, 1), -1.0, dtype=z.dtype, device=z.device))
        return (*_weigh(per, grad, sw, w, n), (z if self.from_logits else p))


class BinaryRule(FusedRule):
    final = staticmethod(A.sigmoid)

    def loss(self, z, y, w):
        value = F.binary_cross_entropy_with_logits(z, y)
        p = torch.sigmoid(z)
        grad = torch.sub(p, y).mul_(w / max(z.numel(), 1))
        return value, grad, (z if self.from_logits else p)

    def weighted(self, z, y, sw, w):
        per = F.binary_cross_entropy_with_logits(z, y, reduction="none").mean(-1)
        p = torch.sigmoid(z)
        grad = torch.sub(p, y).div_(z.shape[-1])
        return (*_weigh(per, grad, sw, w, z.shape[0]), (z if self.from_logits else p))


class SquaredErrorRule(FusedRule):
    """Mean squared error on the final output (the final activation stays the layer's)."""

    def loss(self, z, y, w):
        diff = torch.sub(z, y)
        value = diff.square().mean()
        return value, diff.mul_(2 * w / max(z.numel(), 1)), z

    def weighted(self, z, y, sw, w):
        diff = torch.sub(z, y)
        per = diff.square().mean(-1)
        grad = diff.mul_(2.0 / z.shape[-1])
        return (*_weigh(per, grad, sw, w, z.shape[0]), z)


def _weigh(per, grad, sw, w, n):
    """`(value, gradient)` of Keras's `sum_over_batch_size` over per-sample losses `per` with
    sample weights `sw`; `grad` holds each sample's unweighted gradient (overwritten)."""
    return torch.dot(per, sw) / n, grad.mul_((sw * (w / n)).unsqueeze(1))


def _picked(log_p, idx):
    """`log_p` at the class ids `idx`, or None when an id is out of range."""
    try:
        return log_p.gather(1, idx)
    except (IndexError, RuntimeError):
        return None


RULES = {L.categorical_crossentropy: CategoricalRule,
         L.sparse_categorical_crossentropy: SparseRule,
         L.binary_crossentropy: BinaryRule,
         L.mean_squared_error: SquaredErrorRule}


def rule_for(fn, kwargs, reduction):
    """The fused rule of loss function `fn` called with `kwargs` and reduced by `reduction`,
    or None."""
    cls = RULES.get(fn)
    if cls is None:
        return None
    kw = dict(kwargs)
    from_logits = bool(kw.pop("from_logits", False))
    smoothing = float(kw.pop("label_smoothing", 0.0) or 0.0)
    if (reduction not in ("sum_over_batch_size", "mean") or kw.pop("axis", -1) != -1
            or kw.pop("ignore_class", None) is not None or kw):
        return None
    if cls is SquaredErrorRule:
        return cls()
    if cls is SparseRule and smoothing:
        return None
    return cls(from_logits, smoothing)
