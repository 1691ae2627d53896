"""Turning what users pass to `fit`/`evaluate`/`predict` into batches of tensors.

Arrays (NumPy, torch, lists, dicts by name) become tensors on the model's device once per call;
batches are then slices of those tensors (when shuffling, slices of a shuffled copy of a few
megabytes of samples at a time). Generators, iterables and `torch.utils.data.DataLoader`s are
read batch by batch.
"""
import math

import numpy as np
import torch

from plexus.graph import tree
from plexus.graph.tensor import KerasTensor


def model_device(model):
    for layer in getattr(model, "_graph_layers", ()):  # quick look at the layers' own weights
        for p in layer._parameters.values():
            if p is not None:
                return p.device
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _is_array(x):
    return isinstance(x, (np.ndarray, torch.Tensor)) or (
        hasattr(x, "__array__") and not isinstance(x, (list, tuple, dict, str)))


def to_tensor(x, device, dtype=None, int_ok=True, what="data"):
    """One array-like to a tensor on `device` (float64 becomes float32)."""
    if isinstance(x, KerasTensor):
        raise TypeError(
            f"{what} is a symbolic tensor (from plexus.Input or a layer). fit/evaluate/predict "
            "need real data: NumPy arrays or torch tensors."
        )
    if not isinstance(x, torch.Tensor):
        try:
            arr = np.asarray(x)
        except Exception as e:  # noqa: BLE001 - report what could not be read
            raise TypeError(f"Could not read {what} as an array: {e}") from e
        if arr.dtype == object:
            raise TypeError(
                f"{what} could not be turned into a numeric array (it has dtype object: ragged "
                "lists or mixed types). Pad sequences to one length and pass a NumPy array."
            )
        x = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype is not None and x.dtype != dtype and not (int_ok and not x.is_floating_point()
                                                          and x.dtype != torch.bool):
        x = x.to(dtype)
    elif x.dtype == torch.float64:
        x = x.float()
    elif x.dtype == torch.bool:
        x = x.float()
    if x.device != device:
        x = x.to(device, non_blocking=x.is_pinned())
    return x


def flat_inputs(model, x):
    """User inputs (one array, a list, a dict by input name) as a list in the model's order."""
    if not getattr(model, "_is_graph", False):
        return None  # subclassed model: the structure is the user's
    names = model.input_names
    if isinstance(x, dict):
        missing = [k for k in names if k not in x]
        if missing:
            raise ValueError(
                f"The input dict is missing {', '.join(repr(k) for k in missing)}. Model "
                f"{model.name!r} expects inputs named {names}; received keys {list(x)}."
            )
        return [x[k] for k in names]
    if isinstance(x, (list, tuple)) and (len(names) > 1 or (x and _is_array(x[0]))):
        if len(x) != len(names):
            raise ValueError(
                f"Model {model.name!r} expects {len(names)} input(s) ({', '.join(names)}), but "
                f"received a list of {len(x)} arrays. Pass one array per input in that order, "
                "or a dict keyed by input name."
            )
        return list(x)
    if len(names) != 1:
        raise ValueError(
            f"Model {model.name!r} expects {len(names)} inputs ({', '.join(names)}), but "
            "received a single array. Pass a list in that order or a dict keyed by input name."
        )
    return [x]


def output_names(model):
    return list(model.output_names) if getattr(model, "_is_graph", False) else None


def flat_targets(model, y, n_out, what="y"):
    """Targets (one array, a list, a dict by output name) as a list in output order."""
    if y is None:
        return None
    names = output_names(model) or [f"output_{i}" for i in range(n_out)]
    if isinstance(y, dict):
        missing = [k for k in names if k not in y]
        if missing:
            raise ValueError(
                f"The {what} dict is missing {', '.join(repr(k) for k in missing)}. Model "
                f"{model.name!r} has outputs named {names}; received keys {list(y)}."
            )
        return [y[k] for k in names]
    if isinstance(y, (list, tuple)) and (n_out > 1 or (y and _is_array(y[0]))):
        if len(y) != n_out:
            raise ValueError(
                f"Model {model.name!r} has {n_out} output(s) ({', '.join(names)}), but {what} "
                f"is a list of {len(y)} arrays. Pass one target array per output, in that "
                "order, or a dict keyed by output name."
            )
        return list(y)
    if n_out != 1:
        raise ValueError(
            f"Model {model.name!r} has {n_out} outputs ({', '.join(names)}), but {what} is a "
            "single array. Pass a list with one target array per output, or a dict keyed by "
            "output name."
        )
    return [y]


def prepare_inputs(model, x, device):
    """Inputs as a list of tensors in input order, cast and shape-checked once."""
    flat = flat_inputs(model, x)
    if flat is None:
        return None
    out = []
    names = model.input_names
    for i, v in enumerate(flat):
        dtype, int_ok = model._input_casts[i]
        t = to_tensor(v, device, dtype, int_ok, what=f"input {names[i]!r}")
        model._check_input_shape(i, tuple(t.shape))
        out.append(t)
    return out


def prepare_targets(model, y, n_out, device):
    flat = flat_targets(model, y, n_out)
    if flat is None:
        return None
    names = output_names(model) or [f"output_{i}" for i in range(n_out)]
    return [to_tensor(v, device, what=f"target {names[i]!r}") for i, v in enumerate(flat)]


def prepare_sample_weight(model, sample_weight, n_out, device):
    """Sample weights: one array for every output, or one per output (list or dict)."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, (dict, list, tuple)) and not (
            isinstance(sample_weight, (list, tuple)) and sample_weight
            and not _is_array(sample_weight[0])):
        flat = flat_targets(model, sample_weight, n_out, what="sample_weight")
        return [None if v is None else to_tensor(v, device, torch.float32, False,
                                                   "sample_weight") for v in flat]
    return to_tensor(sample_weight, device, torch.float32, False, "sample_weight")


def class_weight_to_sample_weight(y, class_weight):
    """Per-sample weights from `{class_id: weight}` and targets (ids or one-hot)."""
    y = y.detach().cpu().numpy()
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else np.squeeze(y, axis=-1)
    ids = np.round(y).astype("int64").reshape(-1)
    weights = np.array([float(class_weight.get(int(i), 1.0)) for i in ids], dtype="float32")
    return torch.from_numpy(weights)


def num_samples(tensors, what):
    """The common number of samples of `tensors` (named), or a ValueError listing them."""
    sizes = {name: int(t.shape[0]) for name, t in tensors if t is not None and t.dim() > 0}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(
            f"All {what} must have the same number of samples (first dimension); received "
            f"{detail}. Make every array the same length."
        )
    return next(iter(sizes.values()), 0)


SHUFFLE_CHUNK_BYTES = 1 << 22


class ArrayData:
    """Tensors already on the device, served as batches of `batch_size`. `xs` is a list of
    tensors (a functional model's inputs) or of nested structures of them (a subclassed
    model's own input structure)."""

    def __init__(self, xs, ys, sw, batch_size, shuffle=False, steps=None):
        self.xs, self.ys, self.sw = xs, ys, sw
        named = [(f"input {i}", t) for i, t in enumerate(tree.flatten(xs))]
        named += [(f"target {i}", t) for i, t in enumerate(ys or [])]
        if isinstance(sw, list):
            named += [(f"sample_weight {i}", t) for i, t in enumerate(sw)]
        elif sw is not None:
            named.append(("sample_weight", sw))
        self.n = num_samples(named, "inputs, targets and sample weights")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        n_batches = math.ceil(self.n / self.batch_size) if self.n else 0
        self.steps = n_batches if steps is None else min(int(steps), n_batches)
        self.row_bytes = sum(t[:1].numel() * t.element_size() for _, t in named
                             if isinstance(t, torch.Tensor))

    def _take(self, t, idx):
        if t is None:
            return None
        if isinstance(idx, slice):
            return tree.map_structure(lambda v: None if v is None else v[idx], t)
        return tree.map_structure(lambda v: None if v is None else v.index_select(0, idx), t)

    def batches(self):
        bs, n = self.batch_size, self.n
        if not self.shuffle or self.shuffle == "batch":
            for step in range(self.steps):
                idx = slice(step * bs, min((step + 1) * bs, n))
                yield (self._take(self.xs, idx), self._take(self.ys, idx),
                       self._take(self.sw, idx))
            return
        first = tree.flatten(self.xs)
        order = torch.randperm(n).to(first[0].device if first else "cpu")
        # Shuffled samples are gathered a chunk of batches at a time (one index_select per
        # tensor per chunk, not per batch); each batch is then a slice of the chunk.
        per_chunk = max(1, min(self.steps, SHUFFLE_CHUNK_BYTES // max(1, bs * self.row_bytes)))
        for c0 in range(0, self.steps, per_chunk):
            c1 = min(self.steps, c0 + per_chunk)
            idx = order[c0 * bs:min(c1 * bs, n)]
            xs, ys, sw = (self._take(self.xs, idx), self._take(self.ys, idx),
                          self._take(self.sw, idx))
            for step in range(c1 - c0):
                part = slice(step * bs, (step + 1) * bs)
                yield self._take(xs, part), self._take(ys, part), self._take(sw, part)

    def split(self, validation_split):
        """(train, validation) by taking the last fraction of samples, before any shuffling."""
        if not 0 < validation_split < 1:
            raise ValueError(f"validation_split must be between 0 and 1; received "
                             f"{validation_split}.")
        at = int(math.floor(self.n * (1.0 - validation_split)))
        if at == 0 or at == self.n:
            raise ValueError(
                f"validation_split={validation_split} leaves no samples for "
                f"{'training' if at == 0 else 'validation'} with {self.n} samples."
            )
        head, tail = slice(0, at), slice(at, self.n)
        cut = self._take
        return (ArrayData(cut(self.xs, head), cut(self.ys, head), cut(self.sw, head),
                          self.batch_size, self.shuffle),
                ArrayData(cut(self.xs, tail), cut(self.ys, tail), cut(self.sw, tail),
                          self.batch_size, False))


def unpack(batch):
    """`(x, y, sample_weight)` from a batch that is `x`, `(x,)`, `(x, y)` or `(x, y, sw)`."""
    if isinstance(batch, (list, tuple)):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
        raise ValueError(
            f"A data batch must be x, (x,), (x, y) or (x, y, sample_weight); received a "
            f"{type(batch).__name__} of {len(batch)} elements."
        )
    return batch, None, None


class IterableData:
    """Batches read from a generator, an iterable or a `DataLoader`, converted as they come."""

    def __init__(self, source, model, n_out, device, steps=None, with_targets=True):
        self.source, self.model, self.n_out, self.device = source, model, n_out, device
        self.with_targets = with_targets
        self.steps = steps
        self.check_targets = None  # called on each batch's targets (training/validation.py)
        if steps is None:
            try:
                self.steps = len(source)
            except TypeError:
                self.steps = None
        self._iterator = None

    def convert(self, batch):
        x, y, sw = unpack(batch)
        xs = prepare_inputs(self.model, x, self.device)
        if xs is None:
            xs = [x]
        ys = prepare_targets(self.model, y, self.n_out, self.device) if y is not None else None
        if ys is not None and self.check_targets is not None:
            self.check_targets(ys)
        sw = prepare_sample_weight(self.model, sw, self.n_out, self.device)
        return xs, ys, sw

    def batches(self):
        is_reiterable = iter(self.source) is not self.source
        if is_reiterable or self._iterator is None:
            self._iterator = iter(self.source)
        count = 0
        while self.steps is None or count < self.steps:
            try:
                batch = next(self._iterator)
            except StopIteration:
                if count == 0 and not is_reiterable:
                    raise ValueError(
                        "The data generator is exhausted: it yielded no batch for this epoch. "
                        "Pass steps_per_epoch so each epoch reads a fixed number of batches "
                        "from an endless generator, or pass a re-iterable (a DataLoader)."
                    ) from None
                return
            count += 1
            yield self.convert(batch)


def is_iterable_source(x):
    """Whether `x` is a generator / DataLoader / iterable of batches rather than array data."""
    if x is None or _is_array(x) or isinstance(x, (list, tuple, dict, str)):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__")
