"""Checks of what users pass to `fit`, `evaluate`, `predict` and the `*_on_batch` methods, made
before any step runs, and of what a loss returns: a mistake fails here with a message that
names the method, the argument (or the output and the loss) and what it received.

The loops call `check_fit_args` & co. first, `check_inputs` on `x`, and `check_data` on the
prepared batches (samples present; targets that fit the outputs of built-in losses).
"""
import numbers

import torch

# Arguments that count something: (smallest value allowed, what the value means).
_COUNTS = {
    "batch_size": (1, "samples per batch"),
    "validation_batch_size": (1, "samples per validation batch"),
    "epochs": (0, "the epoch to train up to; 0 trains nothing"),
    "initial_epoch": (0, "the epoch to start from"),
    "steps": (1, "batches to run"),
    "steps_per_epoch": (1, "batches per epoch"),
    "validation_steps": (1, "validation batches per epoch"),
    "validation_freq": (1, "epochs between validations"),
}


def _count(method, name, value, optional=True):
    """A whole number at least `_COUNTS[name][0]` (None allowed when `optional`)."""
    if value is None and optional:
        return
    low, meaning = _COUNTS[name]
    kind = "a positive integer" if low == 1 else "a non-negative integer"
    expected = f"{method}: {name} must be {kind} ({meaning})"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{expected}; received {value!r} of type {type(value).__name__}.")
    if not isinstance(value, numbers.Integral):
        whole = float(value).is_integer() and value >= low
        raise ValueError(f"{expected}; received {value!r}." +
                         (f" Pass {name}={int(value)}." if whole else ""))
    if value < low:
        raise ValueError(f"{expected}; received {value}.")


def _verbose(method, value):
    if value != "auto" and value not in (0, 1, 2, True, False):
        raise ValueError(f"{method}: verbose must be 'auto', 0, 1 or 2; received {value!r}.")


def check_fit_args(batch_size=None, epochs=1, verbose="auto", validation_split=0.0,
                   initial_epoch=0, steps_per_epoch=None, validation_steps=None,
                   validation_freq=1, validation_batch_size=None):
    """TypeError / ValueError for a `fit` argument of the wrong kind or range."""
    for name, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch),
                        ("validation_steps", validation_steps),
                        ("validation_batch_size", validation_batch_size)):
        _count("fit", name, value)
    _count("fit", "epochs", epochs, optional=False)
    _count("fit", "initial_epoch", initial_epoch, optional=False)
    _verbose("fit", verbose)
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real) \
            or not 0 <= validation_split < 1:
        raise ValueError(f"fit: validation_split must be a number in [0, 1) (the fraction of "
                         f"samples kept for validation); received {validation_split!r}.")
    if isinstance(validation_freq, (list, tuple, set)):  # Keras 2: the epochs to validate
        for v in validation_freq:
            _count("fit", "validation_freq", v, optional=False)
    else:
        _count("fit", "validation_freq", validation_freq, optional=False)


def check_evaluate_args(batch_size=None, verbose="auto", steps=None, method="evaluate"):
    """TypeError / ValueError for an `evaluate` (or `predict`) argument."""
    _count(method, "batch_size", batch_size)
    _count(method, "steps", steps)
    _verbose(method, verbose)


def check_predict_args(batch_size=None, verbose="auto", steps=None):
    """TypeError / ValueError for a `predict` argument."""
    check_evaluate_args(batch_size, verbose, steps, method="predict")


def check_inputs(method, x):
    """`x` must be given: say so plainly instead of failing on `None` deep inside."""
    if x is None:
        raise ValueError(
            f"{method} needs input data, but x is None. Pass x as a NumPy array or torch tensor "
            "(a list or dict of them for several inputs), a generator or a DataLoader."
        )


def check_data(method, data, model=None, st=None):
    """Prepared data must hold at least one sample (an empty epoch would report a loss of 0),
    and, with the compile state `st` of a default step, targets must fit the outputs (checked
    now for arrays, batch by batch for generators)."""
    if getattr(data, "n", None) == 0:
        raise ValueError(
            f"{method} received no samples: the arrays have 0 rows (first dimension). Pass at "
            "least one sample."
        )
    losses = getattr(getattr(st, "loss", None), "losses", None)
    if not losses:
        return
    if hasattr(data, "ys"):
        check_targets(model, losses, data.ys)
    else:
        data.check_targets = lambda ys: check_targets(model, losses, ys)


# ---------------------------------------------------------------------- what losses return
class LossResultTypeError(TypeError):
    """A loss returned something other than a floating-point tensor."""


class LossResultShapeError(ValueError):
    """A loss returned values whose first axis is not the batch."""


def check_loss_values(values, loss, batch):
    """What a loss's `call` returned must be a floating-point tensor holding one number or one
    value per sample (`batch` of them along the first axis; None: not checked)."""
    if not isinstance(values, torch.Tensor):
        raise LossResultTypeError(
            f"the loss {loss!r} returned {_describe(values)}; a loss must return a tensor (one "
            "value per sample, or one number) computed from y_true and y_pred with torch or "
            "plexus.ops."
        )
    if not (values.is_floating_point() or values.is_complex()):
        raise LossResultTypeError(
            f"the loss {loss!r} returned a tensor of dtype {values.dtype}; losses must be "
            "floating-point (gradients flow only through those).")
    if values.dim() and batch is not None and values.shape[0] != batch and values.numel() != 1:
        raise LossResultShapeError(
            f"the loss {loss!r} returned shape {tuple(values.shape)} for a batch of {batch} "
            f"samples; a loss returns one value per sample (first axis {batch}) or one number."
        )


def for_output(error, output):
    """The same error, its message naming the model output the loss was computed for."""
    return type(error)(f"Output {output!r}: {error}")


def _describe(value):
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} elements"
    return f"a {type(value).__name__} ({str(value)[:40]!r})"


# ---------------------------------------------------------------------- targets vs outputs
def check_targets(model, losses, ys):
    """Targets must fit the outputs their built-in losses compare them with: the same shape
    (a trailing axis of 1 aside), or one class id per sample for sparse cross-entropy."""
    names = model._output_names_for_data() if model is not None else None
    outputs = getattr(model, "outputs", None) if names else None
    if not outputs or ys is None:
        return
    for i, (loss, y) in enumerate(zip(losses, ys)):
        kind = _loss_kind(loss)
        if kind is None or y is None or i >= len(outputs):
            continue
        out, got = tuple(outputs[i].shape), tuple(y.shape)
        expected = _expected_target(kind, out, got)
        if expected is not None:
            hint = (" (one class id per sample)" if kind == "sparse" else
                    "; for class ids use sparse_categorical_crossentropy" if
                    kind == "categorical" and len(got) == len(out) - 1 else "")
            raise ValueError(
                f"Target for output {names[i]!r} has shape {got}, but the output has shape "
                f"{_fmt(out)} and its loss {getattr(loss, 'name', '')!r} expects targets of "
                f"shape {_fmt(expected)}{hint}."
            )


def _loss_kind(loss):
    """'sparse', 'categorical', 'same' (other built-in losses: values compared one to one) or
    None (a loss of the user's, whose conventions are its own)."""
    from plexus.training import losses as L
    fn = getattr(loss, "fn", None)
    if fn is None or fn not in L._FUNCTIONS or getattr(loss, "axis", -1) not in (-1, None):
        return None
    if fn is L.sparse_categorical_crossentropy:
        return "sparse"
    return "categorical" if fn is L.categorical_crossentropy else "same"


def _fits(expected, got):
    return len(expected) == len(got) and all(
        e is None or e == g for e, g in zip(expected[1:], got[1:]))


def _expected_target(kind, out, got):
    """None when `got` fits output shape `out` for a loss of `kind`, else the shape expected."""
    if kind == "sparse":
        base = out[:-1]
        return None if _fits(base, got) or _fits(base + (1,), got) else base
    if _fits(out, got):
        return None
    if out and out[-1] == 1 and _fits(out[:-1], got):  # (batch,) targets for (batch, 1)
        return None
    if got and got[-1] == 1 and _fits(out, got[:-1]):  # (batch, 1) targets for (batch,)
        return None
    return out


def _fmt(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"
