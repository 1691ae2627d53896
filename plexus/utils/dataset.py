"""`Dataset`: the streaming datasets `plexus.utils`'s loaders return.

A dataset is a number of samples, a function that loads the samples at some indices as one
batch (decoding files, slicing arrays), and how to walk them: batch size, shuffling (a new
order each epoch, reproducible from `seed`), transformations (`map`), a limit (`take`), and how
many background threads load upcoming batches (`prefetch`). Each `iter()` is one epoch, so
`fit`, `evaluate` and `predict` take a dataset directly, and `len()` is its number of batches.

Batches are tuples `(x, y)` (or `x`) of torch tensors; text batches are NumPy arrays of `str`.
The methods follow `tf.data` (`map`, `take`, `prefetch`, `cache`, `batch`, `unbatch`,
`shuffle`) so `keras.io` pipelines run; each returns a new dataset.
"""
import collections
import concurrent.futures
import copy
import math
import os

import numpy as np
import torch

AUTOTUNE = -1


def _default_workers():
    return max(1, min(4, (os.cpu_count() or 1)))


class TextArray(np.ndarray):
    """A NumPy array of strings with `.numpy()` (what `tf.Tensor` batches offer), so
    `for texts, labels in ds: texts.numpy()[0]` works as in the Keras guides."""

    def numpy(self):
        return np.asarray(self)


def text_array(values):
    return np.asarray(values).view(TextArray)


def _unbatch_one(batch, i):
    if isinstance(batch, tuple):
        return tuple(_unbatch_one(b, i) for b in batch)
    if isinstance(batch, dict):
        return {k: _unbatch_one(v, i) for k, v in batch.items()}
    return batch[i]


def _batch_size_of(batch):
    while isinstance(batch, (tuple, list)):
        batch = batch[0]
    if isinstance(batch, dict):
        return _batch_size_of(next(iter(batch.values())))
    return len(batch)


class Dataset:
    """Batches of samples loaded on demand (see the module docstring).

    Args:
        num_samples: how many samples there are.
        load: `load(indices) -> batch`, the samples at `indices` (a NumPy int array) as one
            batch (a tuple of arrays/tensors, or one).
        batch_size: samples per batch; None yields samples one at a time.
        shuffle: draw a new order every epoch.
        seed: makes the orders reproducible.
    """

    def __init__(self, num_samples, load, batch_size=None, shuffle=False, seed=None):
        self.num_samples = int(num_samples)
        self._load = load
        self.batch_size = batch_size
        self._shuffle = shuffle
        self._seed = seed if seed is not None else int(np.random.randint(1 << 30))
        self._epoch = 0
        self._maps = []
        self._limit = None
        self._workers = 0
        self._cache = None
        self.class_names = None
        self.file_paths = None

    # ------------------------------------------------------------------ building
    def _copy(self, **changes):
        new = copy.copy(self)
        new._maps = list(self._maps)
        new.__dict__.update(changes)
        return new

    def map(self, fn, num_parallel_calls=None, deterministic=None):
        """A dataset whose batches are `fn(*batch)` (tuples unpacked, as `tf.data`)."""
        if not callable(fn):
            raise TypeError(f"Dataset.map needs a function; received {fn!r}.")
        new = self._copy(_cache=None)
        new._maps.append(fn)
        return new

    def take(self, count):
        """The first `count` batches of each epoch."""
        return self._copy(_limit=int(count) if count is not None and count >= 0 else None)

    def prefetch(self, buffer_size=AUTOTUNE):
        """Load upcoming batches in background threads (`AUTOTUNE`: a few per CPU core)."""
        workers = _default_workers() if buffer_size in (AUTOTUNE, None) else max(1, int(
            buffer_size))
        return self._copy(_workers=min(workers, _default_workers()))

    def cache(self, filename=""):
        """Keep loaded batches in memory after the first epoch (in-memory only)."""
        if filename:
            raise NotImplementedError("Dataset.cache(filename) is not supported; plexus "
                                      "caches in memory only (call cache() without a name).")
        return self._copy(_cache={})

    def batch(self, batch_size, drop_remainder=False):
        """Group samples into batches of `batch_size`."""
        if self.batch_size is not None:
            raise NotImplementedError("This dataset is batched already; call unbatch() first.")
        if drop_remainder:
            raise NotImplementedError("Dataset.batch(drop_remainder=True) is not supported.")
        return self._copy(batch_size=int(batch_size), _cache=None)

    def unbatch(self):
        """Yield samples one at a time."""
        if self._maps:
            raise NotImplementedError("unbatch() after map() is not supported; unbatch first.")
        return self._copy(batch_size=None, _cache=None)

    def shuffle(self, buffer_size=None, seed=None, reshuffle_each_iteration=True):
        """Draw a new order of the samples every epoch."""
        return self._copy(_shuffle=True, _seed=self._seed if seed is None else seed)

    def repeat(self, count=None):
        raise NotImplementedError(
            "Dataset.repeat() is not supported: each iteration is one epoch already. Pass "
            "epochs= to fit (and steps_per_epoch= for a fixed number of batches).")

    # ------------------------------------------------------------------ reading
    def cardinality(self):
        n = self.num_samples if self.batch_size is None else math.ceil(
            self.num_samples / self.batch_size)
        return n if self._limit is None else min(n, self._limit)

    def __len__(self):
        return self.cardinality()

    def _order(self):
        if not self._shuffle:
            return np.arange(self.num_samples)
        rng = np.random.RandomState((self._seed + 7919 * self._epoch) % (2 ** 32))
        self._epoch += 1
        return rng.permutation(self.num_samples)

    def _chunks(self):
        order = self._order()
        size = self.batch_size or 1
        chunks = [order[i:i + size] for i in range(0, self.num_samples, size)]
        return chunks[:self._limit] if self._limit is not None else chunks

    def _produce(self, indices):
        batch = self._load(indices)
        for fn in self._maps:
            batch = fn(*batch) if isinstance(batch, tuple) else fn(batch)
        return batch

    def _batches(self):
        chunks = self._chunks()
        if self._cache is not None and not self._shuffle:
            for i, idx in enumerate(chunks):
                if i not in self._cache:
                    self._cache[i] = self._produce(idx)
                yield self._cache[i]
            return
        if self._workers <= 0:
            for idx in chunks:
                yield self._produce(idx)
            return
        with concurrent.futures.ThreadPoolExecutor(self._workers) as pool:
            pending = collections.deque()
            it = iter(chunks)
            for idx in it:
                pending.append(pool.submit(self._produce, idx))
                if len(pending) > 2 * self._workers:
                    break
            for idx in it:
                yield pending.popleft().result()
                pending.append(pool.submit(self._produce, idx))
            while pending:
                yield pending.popleft().result()

    def __iter__(self):
        if self.batch_size is not None:
            return self._batches()
        return (_unbatch_one(b, 0) for b in self._batches())

    def as_numpy_iterator(self):
        """The batches with tensors as NumPy arrays."""
        to_np = lambda v: v.numpy() if isinstance(v, torch.Tensor) else v  # noqa: E731
        for b in self:
            yield tuple(to_np(v) for v in b) if isinstance(b, tuple) else to_np(b)

    def __repr__(self):
        return (f"<plexus Dataset: {self.num_samples} samples, batch_size={self.batch_size}, "
                f"{len(self)} {'batches' if self.batch_size else 'samples'}>")


def from_arrays(arrays, batch_size=None, shuffle=False, seed=None):
    """A dataset over in-memory arrays (a tuple of them, or one), sliced along axis 0."""
    single = not isinstance(arrays, tuple)
    arrays = (arrays,) if single else arrays
    arrays = tuple(a if isinstance(a, torch.Tensor) else np.asarray(a) for a in arrays)
    n = len(arrays[0])
    for a in arrays:
        if len(a) != n:
            raise ValueError(f"All arrays must have the same number of samples; received "
                             f"{[len(x) for x in arrays]}.")

    def load(indices):
        out = []
        for a in arrays:
            if isinstance(a, torch.Tensor):
                out.append(a[torch.from_numpy(indices)])
            elif a.dtype.kind in "USO":
                out.append(text_array(a[indices]))
            else:
                out.append(torch.from_numpy(np.ascontiguousarray(a[indices])))
        return out[0] if single else tuple(out)
    return Dataset(n, load, batch_size, shuffle, seed)
