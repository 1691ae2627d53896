"""Where the batches of a non-array `x` come from, epoch by epoch.

- **Indexed datasets** (`PyDataset`/`Sequence`, or any object with `__getitem__` and
  `on_epoch_end`): `dataset[0] ... dataset[n-1]` each epoch, read ahead by the dataset's
  workers, between `on_epoch_begin()` and `on_epoch_end()`. Without `__len__`,
  `steps_per_epoch` must say how many batches an epoch has (an error before training
  otherwise: reading until `IndexError` may never end).
- **torch datasets** (`torch.utils.data.Dataset`, map-style or iterable, which yield single
  samples): batched by a `DataLoader` of `batch_size` (shuffled in `fit` for map-style ones).
- **Re-iterables** (a `DataLoader`, a `plexus.utils` dataset, a list of batches): a fresh pass
  each epoch.
- **One-shot iterators** (generators): read where the previous epoch stopped. When several
  epochs (or validations) need a finite generator without `steps_per_epoch`, the first pass
  keeps its batches and later epochs replay them (as long as they take at most
  `REPLAY_BYTES`; beyond that a later epoch raises a clear error).
"""
import warnings

import torch

REPLAY_BYTES = 1 << 30


def is_index_source(x):
    """A dataset read by position: `PyDataset`, Keras-style `Sequence`, or a class with
    `__getitem__` but no `__iter__` (which Python would iterate until `IndexError`)."""
    from plexus.utils.py_dataset import PyDataset
    if isinstance(x, PyDataset):
        return True
    if isinstance(x, (list, tuple, dict, str, bytes)) or isinstance(x, torch.utils.data.Dataset):
        return False
    if hasattr(x, "__array__") or hasattr(x, "shape"):
        return False
    return hasattr(x, "__getitem__") and (hasattr(x, "on_epoch_end") or
                                         not hasattr(x, "__iter__"))


def is_torch_dataset(x):
    return isinstance(x, torch.utils.data.Dataset)


def _nbytes(batch):
    from plexus.graph import tree
    return sum(t.numel() * t.element_size() for t in tree.flatten(batch)
               if isinstance(t, torch.Tensor))


class BatchSource:
    """Raw batches of one epoch at a time (see the module docstring)."""

    def __init__(self, source, steps=None, replay=False, batch_size=None, shuffle=False):
        self.source, self.replay = source, replay
        self.steps = None if steps is None else int(steps)
        self._iterator, self._kept, self._complete = None, None, False
        if is_index_source(source):
            self.kind = "index"
            n = _length(source)
            if n is None and self.steps is None:
                raise ValueError(
                    f"{type(source).__name__} has no __len__, so plexus cannot tell how many "
                    "batches an epoch has (reading until IndexError may never end). Define "
                    "__len__ (the number of batches), or pass steps_per_epoch= (and "
                    "validation_steps= / steps=).")
            self.length = n if self.steps is None else (
                self.steps if n is None else min(n, self.steps))
        elif is_torch_dataset(source):
            self.kind = "reiterable"
            map_style = not isinstance(source, torch.utils.data.IterableDataset)
            self.dataset, self.shuffle = source, shuffle  # (a distribution re-batches it)
            self.source = torch.utils.data.DataLoader(
                source, batch_size=batch_size or 32, shuffle=bool(shuffle) and map_style)
            self.length = _length(self.source)
        else:
            self.kind = "once" if hasattr(source, "__next__") else "reiterable"
            self.length = _length(source)
        if self.steps is not None and self.kind != "index":
            self.length = self.steps if self.length is None else min(self.length, self.steps)

    def epoch(self):
        """The raw batches of the next epoch."""
        if self.kind == "index":
            return self._indexed()
        if self.kind == "reiterable":
            return self._limited(iter(self.source))
        return self._once()

    def _limited(self, it):
        count = 0
        while self.steps is None or count < self.steps:
            try:
                batch = next(it)
            except StopIteration:
                return
            count += 1
            yield batch

    def _indexed(self):
        from plexus.utils.py_dataset import iter_batches
        ds = self.source
        if hasattr(ds, "on_epoch_begin"):
            ds.on_epoch_begin()
        try:
            yield from iter_batches(ds, self.length)
        finally:
            if hasattr(ds, "on_epoch_end"):
                ds.on_epoch_end()

    def _once(self):
        if self._kept is not None and self._complete:
            yield from self._kept  # a later epoch of a finite generator: replay
            return
        if self._kept is not None:  # the first pass kept too much to replay
            raise ValueError(
                "The generator was read to its end in the first epoch, and its batches were "
                f"too large to keep for the next epochs (over {REPLAY_BYTES >> 20} MiB). A "
                "generator can be read only once: pass a re-iterable (a plexus.utils.PyDataset, "
                "a DataLoader) or an endless generator with steps_per_epoch.")
        if self._iterator is None:
            self._iterator = iter(self.source)
        keep = self.replay and self.steps is None
        kept, size, count = ([] if keep else None), 0, 0
        while self.steps is None or count < self.steps:
            try:
                batch = next(self._iterator)
            except StopIteration:
                if count == 0:
                    raise ValueError(
                        "The data generator is exhausted: it yielded no batch for this epoch. "
                        "Pass steps_per_epoch so each epoch reads a fixed number of batches "
                        "from an endless generator, or pass a re-iterable (a PyDataset or a "
                        "DataLoader).") from None
                break
            count += 1
            if kept is not None:
                size += _nbytes(batch)
                if size <= REPLAY_BYTES:
                    kept.append(batch)
                else:
                    kept = None
                    warnings.warn("The generator's batches exceed the memory kept for "
                                  "replaying it in later epochs; pass a re-iterable dataset.",
                                  stacklevel=2)
                    self._kept = []  # marks: a replay was needed but is not possible
            yield batch
        if kept is not None:
            self._kept, self._complete = kept, True


def _length(x):
    try:
        n = len(x)
    except (TypeError, NotImplementedError):
        return None
    return None if n is None else int(n)
