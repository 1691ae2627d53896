"""What preprocessing layers share: reading `adapt()` data, string inputs, seeded randomness.

Preprocessing layers work both inside a model and on data outside one (`layer(batch)`), on
NumPy arrays, torch tensors and, for the text layers, arrays or lists of `str`/`bytes` (torch has
no string tensors, so strings stay NumPy arrays until a layer turns them into numbers).
"""
import itertools

import numpy as np
import torch

from plexus.graph.tensor import KerasTensor
from plexus.layers.layer import Layer


def as_array(x):
    """A batch as a NumPy array or a torch tensor (lists become arrays)."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return x
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    if hasattr(x, "__array__"):
        return np.asarray(x)
    return x


def numpy_of(x):
    """A batch as a NumPy array (tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _first(batch):
    """The inputs of a batch that is `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`."""
    if isinstance(batch, tuple) and batch and not isinstance(batch[0], (str, bytes)):
        return batch[0]
    return batch


def adapt_batches(data, layer, steps=None, lists_are_data=False):
    """The batches of inputs `adapt(data)` reads, each a NumPy array or a torch tensor.

    `data` may be an array or tensor (one batch), an iterable of batches (a generator, a
    `PyDataset`, a `DataLoader`, a directory dataset), each batch `x` or `(x, y, ...)`. A list is
    an iterable of batches, except for layers that take a list of values as data
    (`lists_are_data`: the lookup and text layers take `["a", "b"]`). Empty data is a
    `ValueError` naming the layer.
    """
    name = f"{type(layer).__name__} layer {layer.name!r}"
    if isinstance(data, KerasTensor):
        raise TypeError(f"{name}: adapt() needs real data (a NumPy array, a tensor or an "
                        "iterable of batches), not a symbolic tensor.")
    if isinstance(data, (np.ndarray, torch.Tensor, str, bytes)) or (
            lists_are_data and isinstance(data, (list, tuple))):
        arr = as_array([data] if isinstance(data, (str, bytes)) else data)
        if arr.ndim and arr.shape[0] == 0 or getattr(arr, "size", 1) == 0:
            raise ValueError(f"{name}: adapt() received empty data (shape {tuple(arr.shape)}); "
                             "pass at least one sample.")
        return iter([arr])
    if isinstance(data, dict):
        raise TypeError(f"{name}: adapt() takes one array or an iterable of batches of one "
                        "input; received a dict. Adapt on the one feature this layer reads.")
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and hasattr(data, "on_epoch_end"):
        batches = (data[i] for i in range(len(data)))  # a PyDataset / Sequence
    elif hasattr(data, "__iter__"):
        batches = iter(data)
    else:
        raise TypeError(
            f"{name}: adapt() takes a NumPy array, a torch tensor, or an iterable of batches "
            f"(a generator, a list of arrays, a PyDataset, a DataLoader); received "
            f"{type(data).__name__}.")
    if steps is not None:
        batches = itertools.islice(batches, int(steps))
    first = next(batches, None)
    if first is None:
        raise ValueError(f"{name}: adapt() received an empty iterable (no batches); pass at "
                         "least one batch.")
    return (as_array(_first(b)) for b in itertools.chain([first], batches))


class DataLayer(Layer):
    """A layer that may take data outside a model: lists and NumPy arrays, strings where the
    layer says so (`_accepts_strings`), any numeric dtype (converted by the layer itself)."""

    _accepts_strings = False

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, (list, tuple)) and inputs and not isinstance(
                inputs[0], (KerasTensor, torch.Tensor, np.ndarray, dict)):
            inputs = np.asarray(inputs)
        elif isinstance(inputs, (str, bytes)):
            inputs = np.asarray([inputs])
        return super().__call__(inputs, *args, **kwargs)  # (which refuses text if it must)


class SeedState:
    """The random stream of one layer: a torch generator seeded from `seed`, or, without a
    seed, from torch's global generator when first used (so `plexus.utils.set_random_seed`
    makes unseeded layers reproducible too). Moves to the device of the data it makes noise
    for, continuing its stream."""

    def __init__(self, seed=None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(f"`seed` must be an integer or None; received seed={seed!r}.")
        self.seed = None if seed is None else int(seed)
        self._gens = {}

    def generator(self, device="cpu"):
        device = torch.device(device)
        key = str(device)
        gen = self._gens.get(key)
        if gen is None:
            gen = torch.Generator(device=device)
            base = self.seed if self.seed is not None else int(
                torch.randint(0, 2 ** 62, (), dtype=torch.int64))
            gen.manual_seed(base + len(self._gens))
            self._gens[key] = gen
        return gen

    def uniform(self, shape, low=0.0, high=1.0, device="cpu", dtype=torch.float32):
        out = torch.rand(shape, generator=self.generator(device), device=device, dtype=dtype)
        return out * (high - low) + low if (low, high) != (0.0, 1.0) else out

    def normal(self, shape, mean=0.0, stddev=1.0, device="cpu", dtype=torch.float32):
        out = torch.randn(shape, generator=self.generator(device), device=device, dtype=dtype)
        return out * stddev + mean

    def randint(self, shape, low, high, device="cpu"):
        return torch.randint(low, high, shape, generator=self.generator(device), device=device)

    def __getstate__(self):  # generators do not pickle; a copy restarts from the seed
        return {"seed": self.seed, "_gens": {}}
