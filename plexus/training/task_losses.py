"""Losses for particular tasks: imbalanced classes (focal cross-entropies), noisy labels
(generalized cross-entropy), segmentation (Dice, Tversky), metric learning (Circle) and
sequence labelling (CTC). Each is a function returning one value per sample and a `Loss`
class around it, as in `plexus.training.losses`.
"""
import warnings

import torch
import torch.nn.functional as F

from plexus.training.losses import EPSILON, _as_tensor, _loss_class, with_loss_mask


def _axis_arg(axis, fn):
    if isinstance(axis, bool):
        raise ValueError(f"{fn}: axis must be an integer; received {axis!r}.")


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25,
                              gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary cross-entropy scaled by `(1 - p_t) ** gamma`, which down-weights examples the
    model already gets right; mean over `axis`.

    Args:
        apply_class_balancing: also weight class 1 by `alpha` and class 0 by `1 - alpha`.
        alpha: the weight of class 1 when balancing (0.25).
        gamma: the focusing exponent (2.0; 0 gives binary cross-entropy).
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: squeeze labels towards 0.5 by this fraction.
    """
    _axis_arg(axis, "binary_focal_crossentropy")
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred).to(y_pred.dtype)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = torch.sigmoid(y_pred)
    clipped = torch.clamp(y_pred, EPSILON, 1.0 - EPSILON)
    bce = -(y_true * torch.log(clipped) + (1 - y_true) * torch.log(1 - clipped))
    p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    focal = torch.pow(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1 - y_true) * (1 - alpha)) * focal
    return torch.mean(focal, dim=axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                   label_smoothing=0.0, axis=-1):
    """Categorical cross-entropy with each class's term scaled by `alpha * (1 - p) ** gamma`.

    Args:
        alpha: a weight for every class, or one per class (0.25).
        gamma: the focusing exponent (2.0; 0 gives `alpha` times cross-entropy).
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: mix the one-hot targets with the uniform distribution.
    """
    _axis_arg(axis, "categorical_focal_crossentropy")
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred).to(y_pred.dtype)
    if y_pred.shape[-1] == 1:
        warnings.warn(
            "categorical_focal_crossentropy expects predictions of shape (batch_size, "
            f"num_classes) with more than one class; received {tuple(y_pred.shape)}. With two "
            "classes, use binary_focal_crossentropy.", SyntaxWarning, stacklevel=2)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    if from_logits:
        y_pred = torch.softmax(y_pred, dim=axis)
    probs = y_pred / torch.sum(y_pred, dim=axis, keepdim=True)
    probs = torch.clamp(probs, EPSILON, 1.0 - EPSILON)
    alpha = torch.as_tensor(alpha, dtype=probs.dtype, device=probs.device)
    weight = torch.pow(1.0 - probs, gamma) * alpha
    return torch.sum(weight * (-y_true * torch.log(probs)), dim=axis)


def categorical_generalized_cross_entropy(y_true, y_pred, q):
    """`(1 - p ** q) / q`, `p` the predicted probability of the true class (integer ids):
    near cross-entropy as `q` goes to 0, near mean absolute error as it goes to 1."""
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred)
    if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    p = torch.gather(y_pred, -1, y_true.long().unsqueeze(-1)).squeeze(-1)
    return (1 - torch.pow(p, q)) / q


def _dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


def dice(y_true, y_pred, axis=None):
    """`1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred))`, summed over `axis` (all
    axes by default, giving one value for the batch)."""
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred).to(y_pred.dtype)
    dims = _dims(axis, y_pred.dim())
    inter = torch.sum(y_true * y_pred, dim=dims)
    return 1 - 2.0 * inter / (torch.sum(y_true, dim=dims) + torch.sum(y_pred, dim=dims) + EPSILON)


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """`1 - TP / (TP + alpha * FP + beta * FN)` over `axis` (all axes by default); with
    `alpha = beta = 0.5` this is the Dice loss."""
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred).to(y_pred.dtype)
    dims = _dims(axis, y_pred.dim())
    tp = torch.sum(y_true * y_pred, dim=dims)
    fp = torch.sum((1 - y_pred) * y_true, dim=dims)
    fn = torch.sum(y_pred * (1 - y_true), dim=dims)
    return 1 - tp / (tp + alpha * fp + beta * fn + EPSILON)


def circle(y_true, y_pred, ref_labels=None, ref_embeddings=None, remove_diagonal=True,
           gamma=80, margin=0.4):
    """Circle loss on L2-normalized embeddings `y_pred` with integer labels `y_true`: pulls
    same-label pairs together and pushes others apart, each pair weighted by how far it is
    from its optimum. Samples whose loss is 0 do not count in the mean.

    Args:
        ref_labels, ref_embeddings: the pairs' other side (default: the batch itself).
        remove_diagonal: leave each sample's pair with itself out of the positives.
        gamma: the scale (80).
        margin: the relaxation (0.4).
    """
    y_pred = _as_tensor(y_pred)
    labels = _as_tensor(y_true, y_pred).long().reshape(-1, 1)
    refs = y_pred if ref_embeddings is None else _as_tensor(ref_embeddings, y_pred)
    ref_labels = labels if ref_labels is None else \
        _as_tensor(ref_labels, y_pred).long().reshape(-1, 1)
    dist = torch.clamp(1 - y_pred @ refs.T, min=0.0)
    positive = labels == ref_labels.T
    negative = ~positive
    if remove_diagonal:
        positive = positive & ~torch.eye(*positive.shape, dtype=torch.bool, device=dist.device)
    pos_weights = torch.clamp((margin + dist) * positive, min=0.0)
    neg_weights = torch.clamp((1 + margin - dist) * negative, min=0.0)
    pos = -gamma * pos_weights * (margin - dist)
    neg = gamma * neg_weights * (1 - margin - dist)
    minus_inf = torch.tensor(float("-inf"), dtype=dist.dtype, device=dist.device)
    p_loss = torch.logsumexp(torch.where(positive, pos, minus_inf), dim=1)
    n_loss = torch.logsumexp(torch.where(negative, neg, minus_inf), dim=1)
    out = F.softplus(p_loss + n_loss)
    return with_loss_mask(out, out > 0)


def ctc(y_true, y_pred):
    """Connectionist temporal classification loss of logits `y_pred` (batch, time, classes)
    for integer label sequences `y_true` (batch, max_length), class 0 being the blank that
    also pads the labels."""
    y_pred = _as_tensor(y_pred)
    y_true = _as_tensor(y_true, y_pred)
    if y_true.dim() != 2:
        raise ValueError("ctc: targets must have shape (batch_size, max_length) and hold "
                         f"integer labels; received shape {tuple(y_true.shape)}.")
    if y_pred.dim() != 3:
        raise ValueError("ctc: predictions must be logits of shape (batch_size, max_length, "
                         f"num_classes); received shape {tuple(y_pred.shape)}.")
    y_true = y_true.long()
    batch, steps = y_pred.shape[:2]
    log_probs = F.log_softmax(y_pred.float().transpose(0, 1), dim=-1)
    input_lengths = torch.full((batch,), steps, dtype=torch.long, device=y_pred.device)
    target_lengths = torch.sum(y_true != 0, dim=-1)
    return F.ctc_loss(log_probs, y_true, input_lengths, target_lengths, blank=0,
                      reduction="none")


BinaryFocalCrossentropy = _loss_class(
    "BinaryFocalCrossentropy", binary_focal_crossentropy, "binary_focal_crossentropy",
    ("apply_class_balancing", "alpha", "gamma", "from_logits", "label_smoothing", "axis"),
    (False, 0.25, 2.0, False, 0.0, -1))
CategoricalFocalCrossentropy = _loss_class(
    "CategoricalFocalCrossentropy", categorical_focal_crossentropy,
    "categorical_focal_crossentropy", ("alpha", "gamma", "from_logits", "label_smoothing", "axis"),
    (0.25, 2.0, False, 0.0, -1))
Dice = _loss_class("Dice", dice, "dice", ("axis",), (None,))
Tversky = _loss_class("Tversky", tversky, "tversky", ("alpha", "beta", "axis"), (0.5, 0.5, None))
Circle = _loss_class("Circle", circle, "circle", ("gamma", "margin", "remove_diagonal"),
                     (80.0, 0.4, True))
CTC = _loss_class("CTC", ctc, "ctc")
_GCE = _loss_class("CategoricalGeneralizedCrossEntropy", categorical_generalized_cross_entropy,
                   "categorical_generalized_cross_entropy", ("q",), (0.5,))


class CategoricalGeneralizedCrossEntropy(_GCE):
    __doc__ = _GCE.__doc__

    def __init__(self, q=0.5, reduction="sum_over_batch_size",
                 name="categorical_generalized_cross_entropy", dtype=None):
        if not 0 < q < 1:
            raise ValueError(f"CategoricalGeneralizedCrossEntropy: q must be in the interval "
                             f"(0, 1); received {q!r}.")
        super().__init__(q, reduction=reduction, name=name, dtype=dtype)


FUNCTIONS = [binary_focal_crossentropy, categorical_focal_crossentropy,
             categorical_generalized_cross_entropy, dice, tversky, circle, ctc]
CLASSES = [BinaryFocalCrossentropy, CategoricalFocalCrossentropy,
           CategoricalGeneralizedCrossEntropy, Dice, Tversky, Circle, CTC]
