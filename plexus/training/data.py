"""Turning what users pass to `fit`/`evaluate`/`predict` into batches of tensors.

Arrays (NumPy, torch, lists, dicts by name) become tensors on the model's device once per call,
through the model's own standardisation (the one `model(x)` uses); batches are then slices of
those tensors (when shuffling, slices of a shuffled copy of a few megabytes of samples at a
time). Generators, iterables and `torch.utils.data.DataLoader`s are read batch by batch.

A source serves batches two ways: `batches()` yields `(xs, ys, sw)` (input tensors in the
model's order, targets in output order, sample weights), what the default steps run on;
`user_batches()` yields what Keras gives an overridden `train_step`: `(x, y)`,
`(x, y, sample_weight)` or `x`, in the structure the user passed.
"""
import math

import numpy as np
import torch

from plexus.graph import tree
from plexus.graph.inputs import flatten_named, is_array, to_tensor


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


def unpack_x_y_sample_weight(data):
    """`(x, y, sample_weight)` from a batch `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`
    (missing parts are None). Use it in an overridden `train_step`:

        x, y, sample_weight = plexus.utils.unpack_x_y_sample_weight(data)
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data[0], data[1], data[2]
    raise ValueError(
        f"A data batch must be x, (x,), (x, y) or (x, y, sample_weight); received a "
        f"{type(data).__name__} of {len(data)} elements.")


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """The batch `train_step` receives: `x` alone (or `(x,)` when `x` is a list or tuple),
    `(x, y)`, or `(x, y, sample_weight)`."""
    if y is None:
        return (x,) if isinstance(x, (list, tuple)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def _names(model, n_out):
    return model._output_names_for_data() or (
        ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)])


def _sole_target_output(model, n_out):
    """The index of the only output that takes targets (the others have neither a compiled
    loss nor compiled metrics), else None."""
    st = model.__dict__.get("_compile_state")
    if st is None or st.loss is None or getattr(st.metrics, "names", None) is None:
        return None
    used = [i for i in range(n_out) if st.loss.losses[i] is not None
            or st.metrics.specs[0][i] or st.metrics.specs[1][i]]
    return used[0] if len(used) == 1 else None


def prepare_targets(model, y, n_out, device):
    if y is None:
        return None
    names = _names(model, n_out)
    if n_out > 1 and is_array(y):
        only = _sole_target_output(model, n_out)
        if only is not None:
            # As in Keras: a single array of targets for the one output that has a loss (the
            # others, compiled with loss None, read no targets: a per-sample placeholder).
            t = to_tensor(y, device, what=f"target {names[only]!r}")
            return [t if i == only else t.new_zeros(t.shape[:1]) for i in range(n_out)]
    flat = flatten_named(y, names, "target", model.name, "output")
    return [to_tensor(v, device, what=f"target {names[i]!r}") for i, v in enumerate(flat)]


def prepare_sample_weight(model, sample_weight, n_out, device):
    """Sample weights: one array for every output, or one per output (list or dict)."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, (dict, list, tuple)) and not (
            isinstance(sample_weight, (list, tuple)) and sample_weight
            and not is_array(sample_weight[0])):
        flat = flatten_named(sample_weight, _names(model, n_out), "sample_weight", model.name,
                             "output")
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
    sizes = {name: int(t.shape[0]) for name, t in tensors if t is not None and t.ndim > 0}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(
            f"All {what} must have the same number of samples (first dimension); received "
            f"{detail}. Make every array the same length."
        )
    return next(iter(sizes.values()), 0)


class Structure:
    """How the user structured `x`, `y` and `sample_weight` (one array, a list, a dict by
    name), to rebuild that structure around batch slices for an overridden step."""

    def __init__(self, model, x, y, sample_weight):
        self.x = _layout(x, _input_names(model))
        self.y = _layout(y, model._output_names_for_data())
        self.sw = _layout(sample_weight, model._output_names_for_data())

    def pack(self, xs, ys, sw):
        x = self.x(xs)
        y = None if ys is None else self.y(ys)
        sw = None if sw is None else (self.sw(sw) if isinstance(sw, list) else sw)
        return pack_x_y_sample_weight(x, y, sw)


def _input_names(model):
    try:
        return model.input_names
    except (AttributeError, ValueError):
        return None


def _layout(value, names):
    """A function rebuilding `value`'s structure from a flat list in model order."""
    if isinstance(value, dict) and names:
        return lambda flat: dict(zip(names, flat))
    if isinstance(value, (list, tuple)) and names and len(names) > 1:
        return list
    return lambda flat: flat[0]


def make_data(model, x, y, sample_weight, batch_size, shuffle, steps, class_weight=None,
              with_targets=True, replay=False):
    """The batches of one call of fit/evaluate/predict: `ArrayData` or `IterableData`
    (`replay`: several passes will be asked of it, see `sources.BatchSource`)."""
    device = model_device(model)
    if is_iterable_source(x):
        if y is not None:
            raise ValueError(
                "When x is a generator or a dataset, it must yield (x, y) batches itself; "
                "do not pass y separately.")
        return IterableData(x, model, device, steps, with_targets, replay, batch_size,
                            shuffle, class_weight)
    if x is None:
        raise ValueError("No input data: pass x (arrays, a dict, a generator or a DataLoader).")
    xs = model._standardize_inputs(x, device)
    n_out = len(model._output_names_for_data() or ()) or 1
    ys = prepare_targets(model, y, n_out, device)
    if with_targets and ys is None:
        raise ValueError(
            f"Model {model.name!r} needs targets: pass y (one array per output) to fit and "
            "evaluate.")
    sw = prepare_sample_weight(model, sample_weight, n_out, device)
    if class_weight is not None:
        if sw is not None:
            raise ValueError("Pass either class_weight or sample_weight to fit, not both.")
        if n_out != 1 or ys is None:
            raise ValueError(
                "class_weight works for models with one output and targets. For several "
                "outputs, pass sample_weight as a dict keyed by output name.")
        sw = class_weight_to_sample_weight(ys[0], class_weight).to(device)
    return ArrayData(xs, ys, sw, batch_size if batch_size is not None else 32, shuffle, steps,
                     Structure(model, x, y, sample_weight))


class ArrayData:
    """Tensors already on the device, served as batches of `batch_size`. `xs` is a list of
    tensors (a functional model's inputs) or of nested structures of them (a subclassed
    model's own input structure)."""

    def __init__(self, xs, ys, sw, batch_size, shuffle=False, steps=None, structure=None):
        self.xs, self.ys, self.sw = xs, ys, sw
        self.structure = structure
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
            if type(t) is list and all(type(v) is torch.Tensor and v.dim() for v in t):
                # the common case (a functional model's inputs, targets): narrow views
                start, stop = idx.start or 0, idx.stop
                return [v.narrow(0, start, min(stop, v.shape[0]) - start)
                        if idx.step is None and stop is not None and 0 <= start <= v.shape[0]
                        and stop >= start else v[idx] for v in t]
            return tree.map_structure(lambda v: None if v is None else v[idx], t)
        return tree.map_structure(lambda v: None if v is None else _gather(v, idx), t)

    def batches(self):
        bs, n = self.batch_size, self.n
        if not self.shuffle or self.shuffle == "batch":
            for step in range(self.steps):
                idx = slice(step * bs, min((step + 1) * bs, n))
                yield (self._take(self.xs, idx), self._take(self.ys, idx),
                       self._take(self.sw, idx))
            return
        first = [v for v in tree.flatten(self.xs) if isinstance(v, torch.Tensor)]
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

    def user_batches(self):
        for xs, ys, sw in self.batches():
            yield self.structure.pack(xs, ys, sw)

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
                          self.batch_size, self.shuffle, None, self.structure),
                ArrayData(cut(self.xs, tail), cut(self.ys, tail), cut(self.sw, tail),
                          self.batch_size, False, None, self.structure))


SHUFFLE_CHUNK_BYTES = 1 << 22


def _gather(v, idx):
    """Rows `idx` of a tensor, or of a NumPy array (string inputs)."""
    if isinstance(v, np.ndarray):
        return v[idx.cpu().numpy()]
    return v.index_select(0, idx)


class IterableData:
    """Batches read from a generator, a `PyDataset`, a torch dataset or `DataLoader`, or any
    iterable of batches (see `sources.BatchSource`), converted as they come."""

    def __init__(self, source, model, device, steps=None, with_targets=True, replay=False,
                 batch_size=None, shuffle=False, class_weight=None):
        from plexus.training.sources import BatchSource
        self.model, self.device = model, device
        self.with_targets, self.class_weight = with_targets, class_weight
        self.source = BatchSource(source, steps, replay, batch_size, shuffle)
        self.check_targets = None  # called on each batch's targets (arguments.check_data)
        self.steps = self.source.length

    def convert(self, batch):
        x, y, sw = unpack_x_y_sample_weight(batch)
        model = self.model
        xs = model._standardize_inputs(x, self.device)
        n_out = len(model._output_names_for_data() or ()) or 1
        ys = prepare_targets(model, y, n_out, self.device) if y is not None else None
        if ys is not None and self.check_targets is not None:
            self.check_targets(ys)
        if self.with_targets and ys is None:
            raise ValueError(
                f"Model {model.name!r} needs targets: the data must yield (x, y) or "
                "(x, y, sample_weight) batches.")
        sw = prepare_sample_weight(model, sw, n_out, self.device)
        if self.class_weight is not None and ys is not None:
            if sw is not None or n_out != 1:
                raise ValueError(
                    "class_weight works for models with one output whose batches carry no "
                    "sample weights; yield sample weights in the batches instead.")
            sw = class_weight_to_sample_weight(ys[0], self.class_weight).to(self.device)
        return xs, ys, sw

    def _raw(self):
        return self.source.epoch()

    def batches(self):
        for batch in self._raw():
            yield self.convert(batch)

    def user_batches(self):
        device = self.device

        def tensor(v):
            return v if v is None or isinstance(v, str) else to_tensor(v, device, what="data")
        for batch in self._raw():
            if isinstance(batch, list):  # (a DataLoader collates tuples into lists)
                batch = tuple(batch)
            yield tree.map_structure(tensor, batch)


def is_iterable_source(x):
    """Whether `x` is a generator, a dataset (PyDataset, torch dataset, DataLoader, a
    `plexus.utils` dataset) or an iterable of batches, rather than array data."""
    if x is None or is_array(x) or isinstance(x, (list, tuple, dict, str)):
        return False
    from plexus.training.sources import is_index_source
    return hasattr(x, "__iter__") or hasattr(x, "__next__") or is_index_source(x) or \
        isinstance(x, torch.utils.data.Dataset)
