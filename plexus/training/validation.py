"""Checks on what users pass to `fit`/`evaluate`/`predict` and the `*_on_batch` methods, made
before any step runs, and on what a loss returns.

Each entry point calls `check_arguments` with its counting arguments, `check_inputs` with `x`,
and `check_data` with the prepared data; a bad value is a `TypeError` or `ValueError` that
names the method, the argument, what it received and what it takes.
"""
import numbers

import torch

# Arguments that count something: (smallest value allowed, what the value means, whether None
# stands for a default).
_COUNTS = {
    "batch_size": (1, "samples per batch", True),
    "validation_batch_size": (1, "samples per validation batch", True),
    "epochs": (0, "the epoch to train up to; 0 trains nothing", False),
    "initial_epoch": (0, "the epoch to start from", False),
    "steps": (1, "batches to run", True),
    "steps_per_epoch": (1, "batches per epoch", True),
    "validation_steps": (1, "validation batches per epoch", True),
    "validation_freq": (1, "epochs between validations", False),
}


def check_arguments(method, **values):
    """Refuse counting arguments (`batch_size`, `epochs`, `steps`, ...) that are not whole
    numbers at least as large as they must be (None: the default, where there is one)."""
    for name, value in values.items():
        low, meaning, optional = _COUNTS[name]
        if value is None and optional:
            continue
        kind = "a positive integer" if low == 1 else "a non-negative integer"
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            whole = isinstance(value, float) and value.is_integer() and value >= low
            raise TypeError(
                f"{method}: {name} must be {kind} ({meaning}); received {value!r} of type "
                f"{type(value).__name__}." + (f" Pass {name}={int(value)}." if whole else "")
            )
        if value < low:
            raise ValueError(f"{method}: {name} must be {kind} ({meaning}); received {value}.")


def check_inputs(method, x):
    """`x` must be given: say so plainly instead of failing on `None` deep inside."""
    if x is None:
        raise ValueError(
            f"{method} needs input data, but x is None. Pass x as a NumPy array or torch tensor "
            "(a list or dict of them for several inputs), a generator or a DataLoader."
        )


def check_data(method, data, model=None, losses=None):
    """Prepared data must hold at least one sample (an empty epoch would report a loss of 0),
    and targets must fit the outputs (checked now for arrays, batch by batch for iterables)."""
    if getattr(data, "n", None) == 0:
        raise ValueError(
            f"{method} received no samples: the arrays have 0 rows (first dimension). Pass at "
            "least one sample."
        )
    if losses is None:
        return
    if hasattr(data, "ys"):
        check_targets(model, losses, data.ys)
    else:
        data.check_targets = lambda ys: check_targets(model, losses, ys)


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
    outputs = getattr(model, "outputs", None) if getattr(model, "_is_graph", False) else None
    if not outputs or ys is None:
        return
    names = list(model.output_names)
    for i, (loss, y) in enumerate(zip(losses, ys)):
        kind = _loss_kind(loss)
        if kind is None or y is None or i >= len(outputs):
            continue
        out = tuple(outputs[i].shape)
        got = tuple(y.shape)
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
