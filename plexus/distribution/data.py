"""Each process's share of the data under a distribution.

`batch_size` is the global batch: each of the `W` processes takes `batch_size / W` samples per
step.

- Arrays: the samples are dealt out as torch's `DistributedSampler` deals them (rank `r` takes
  positions `r, r + W, r + 2W, ...` of the epoch's order). In `fit` the order is the same
  permutation a `DistributedSampler(seed=seed)` draws after `set_epoch(epoch)` (or the natural
  order with `shuffle=False`), padded by repeating its first samples so that every process
  runs the same number of steps; step `k` of the processes together then covers the samples
  of step `k` of a single process with the same global batch. `evaluate` and `predict` do not
  pad (no sample counts twice) and `predict` puts the predictions back in order.
- `PyDataset`s: rank `r` reads items `r, r + W, ...` (one step consumes `W` items; in `fit`
  the item list is padded like the samples above).
- torch datasets: batched by a `DataLoader` with a `DistributedSampler`.
- A `DataLoader` of yours with a `DistributedSampler`: used as it is; the sampler's epoch is
  set every epoch.
- Other re-iterables with a length (a `DataLoader` without a `DistributedSampler`, with a
  warning; `plexus.utils` datasets): rank `r` takes batches `r, r + W, ...` (padded in `fit`).
- Generators and iterables without a length: each process reads its own; they must yield the
  same number of batches (`steps_per_epoch` makes sure).
"""
import math
import warnings

import numpy as np
import torch

from plexus.distribution import runtime as R
from plexus.graph import tree


def shard(data, mode, batch_size=None):
    """`data` (an `ArrayData` or `IterableData`) cut to this process's share; `mode` is
    `"fit"`, `"evaluate"` or `"predict"`."""
    if data is None or not R.active():
        return data
    from plexus.training import data as D
    dist = R.current()
    if isinstance(data, D.ArrayData):
        if batch_size is None:  # the default 32: the nearest multiple of the ranks below it
            n = R.world_size()
            whole = data.steps == math.ceil(data.n / data.batch_size)  # (no steps_per_epoch cap)
            data.batch_size = max(n, data.batch_size // n * n)
            if whole:  # every sample still, in batches of the new size
                data.steps = math.ceil(data.n / data.batch_size)
        local = R.check_batch_size(data.batch_size,
                                   "validation_batch_size" if mode == "validate" else
                                   "batch_size")
        if not dist.auto_shard_dataset:  # the arrays already are this process's share
            capped = data.steps < math.ceil(data.n / data.batch_size)  # (steps_per_epoch)
            data.batch_size = local
            data.steps = min(data.steps, math.ceil(data.n / local)) if capped else \
                math.ceil(data.n / local)
            if _pads(mode):
                R.agree("the number of batches per epoch", data.steps,
                        "With auto_shard_dataset=False give every process as many samples.")
            return data
        R.agree("the number of samples", data.n,
                "With auto_shard_dataset=True every process passes the same (whole) arrays.")
        return ShardedArrays(data, local, pad=_pads(mode))
    if isinstance(data, D.IterableData):
        _shard_iterable(data, mode, dist.auto_shard_dataset, batch_size)
        if _pads(mode):  # (collective steps: fit, and every loop under ModelParallel)
            if data.steps is None:
                raise ValueError(
                    f"Rank {R.rank()}: under a distribution every process must run the same "
                    "number of steps, and this data does not say how many batches it has. Pass "
                    "steps_per_epoch= (and validation_steps=) to fit, steps= to evaluate and "
                    "predict, or data with a length.")
            R.agree("the number of batches per epoch", data.steps,
                    "Give every process as many batches (or pass steps_per_epoch=).")
    return data


def _pads(mode):
    """Whether every rank gets as many samples (the last ones repeated): in `fit` (its steps
    are collective), and under `ModelParallel` in every loop (FSDP gathers the weights at every
    forward pass, so every rank must run as many batches)."""
    return mode == "fit" or R.model_parallel()


def set_epoch(data, epoch):
    """Tell the samplers which epoch starts (their shuffling depends on it)."""
    if data is None:
        return
    if isinstance(data, ShardedArrays):
        data.epoch = epoch
        return
    source = getattr(data, "source", None)
    loader = getattr(source, "source", None)
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, torch.utils.data.distributed.DistributedSampler):
        sampler.set_epoch(epoch)


# ---------------------------------------------------------------------- arrays
def sampler_indices(n, world, rank, shuffle, seed, epoch, pad):
    """The sample positions `rank` reads in `epoch`: those a `DistributedSampler(n samples,
    num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)` yields after
    `set_epoch(epoch)` (without its padding when `pad` is False)."""
    if shuffle:
        g = torch.Generator()
        g.manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    if not pad:
        return order[rank::world]
    total = math.ceil(n / world) * world
    if total > n:
        extra = total - n
        reps = math.ceil(extra / n)
        order = torch.cat([order] + [order] * reps)[:total] if reps > 1 else \
            torch.cat([order, order[:extra]])
    return order[rank:total:world]


def _shared_seed():
    """A seed drawn from rank 0's torch generator (so `set_random_seed` decides it), the same
    on every process."""
    mine = int(torch.randint(0, 2 ** 31 - 1, ()).item())
    return R.gather_objects("agreeing on the shuffling seed", mine)[0]


class ShardedArrays:
    """This process's share of an `ArrayData` (see the module docstring)."""

    def __init__(self, base, local_batch, pad):
        self.base, self.pad = base, pad
        self.batch_size = local_batch
        self.world, self.rank = R.world_size(), R.rank()
        self.n = base.n
        self.shuffle = bool(base.shuffle) and base.shuffle != "batch"  # (as ArrayData reads it)
        self.seed = _shared_seed() if self.shuffle else 0
        self.epoch = 0
        self.structure = base.structure
        count = len(range(self.rank, math.ceil(self.n / self.world) * self.world if pad
                          else self.n, self.world))
        self.steps = min(base.steps, math.ceil(count / local_batch)) if count else 0
        self._fixed = None

    def _local(self):
        if not self.shuffle and self._fixed is not None:
            return self._fixed
        idx = sampler_indices(self.n, self.world, self.rank, self.shuffle, self.seed,
                              self.epoch, self.pad)
        first = [v for v in tree.flatten(self.base.xs) if isinstance(v, torch.Tensor)]
        idx = idx.to(first[0].device if first else "cpu")
        b = self.base
        local = (b._take(b.xs, idx), b._take(b.ys, idx), b._take(b.sw, idx))
        if not self.shuffle:
            self._fixed = local
        return local

    def batches(self):
        xs, ys, sw = self._local()
        take, bs = self.base._take, self.batch_size
        for step in range(self.steps):
            part = slice(step * bs, (step + 1) * bs)
            yield take(xs, part), take(ys, part), take(sw, part)

    def user_batches(self):
        for xs, ys, sw in self.batches():
            yield self.structure.pack(xs, ys, sw)

    def order(self):
        return ("padded" if self.pad else "samples"), self.n


# ---------------------------------------------------------------------- other sources
class _IndexShard:
    """Items `rank, rank + W, ...` of an indexed dataset (a `PyDataset`), as a dataset."""

    def __init__(self, dataset, world, rank, pad):
        self.dataset, self.world, self.rank = dataset, world, rank
        n = len(dataset)
        total = math.ceil(n / world) * world if pad else n
        self.items = [i % n for i in range(rank, total, world)]
        for attr in ("workers", "use_multiprocessing", "max_queue_size"):
            if hasattr(dataset, attr):
                setattr(self, attr, getattr(dataset, attr))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.dataset[self.items[i]]

    def on_epoch_begin(self):
        if hasattr(self.dataset, "on_epoch_begin"):
            self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        if hasattr(self.dataset, "on_epoch_end"):
            self.dataset.on_epoch_end()


def _shard_iterable(data, mode, auto, batch_size):
    src = data.source
    world, rank = R.world_size(), R.rank()
    data.order = lambda: ("ranks", None)
    if not auto:
        return
    if src.kind == "index":
        n = len(src.source) if _has_len(src.source) else None
        if n is None:
            return
        R.agree("the number of batches of the dataset", n)
        shard_ = _IndexShard(src.source, world, rank, pad=_pads(mode))
        src.source = shard_
        src.length = len(shard_) if src.steps is None else min(len(shard_), src.steps)
        data.steps = src.length
        data.order = lambda: ("items", n)
        return
    dataset = getattr(src, "dataset", None)  # a torch dataset `BatchSource` batched itself
    loader = src.source
    if dataset is not None and not isinstance(dataset, torch.utils.data.IterableDataset):
        n = R.world_size()
        local = R.check_batch_size(batch_size) if batch_size else max(1, 32 // n)
        shuffle = mode == "fit" and bool(getattr(src, "shuffle", False))
        sampler = torch.utils.data.distributed.DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=shuffle,
            seed=_shared_seed() if shuffle else 0, drop_last=False)
        src.source = torch.utils.data.DataLoader(dataset, batch_size=local, sampler=sampler)
        src.length = len(src.source) if src.steps is None else min(len(src.source), src.steps)
        data.steps = src.length
        if not shuffle:
            data.order = lambda: ("padded", len(dataset))
        return
    if isinstance(loader, torch.utils.data.DataLoader):
        sampler = loader.sampler
        if isinstance(sampler, torch.utils.data.distributed.DistributedSampler):
            if sampler.num_replicas != world:
                raise ValueError(
                    f"Rank {rank}: the DataLoader's DistributedSampler has num_replicas="
                    f"{sampler.num_replicas}, but the run has {world} processes.")
            if not sampler.shuffle and not sampler.drop_last:
                data.order = lambda: ("padded", len(sampler.dataset))
            return
        if mode == "fit":
            warnings.warn(
                f"Rank {rank}: the DataLoader has no DistributedSampler, so every process "
                "loads every batch and trains on its share of them (every W-th). Give it "
                "sampler=torch.utils.data.distributed.DistributedSampler(dataset) to load only "
                "this process's samples, or pass the dataset itself and let fit split it.",
                stacklevel=4)
    n = len(src.source) if _has_len(src.source) else None
    if src.kind == "reiterable" and n:
        R.agree("the number of batches of the data", n)
        strided = _Strided(src.source, n, world, rank, pad=_pads(mode))
        src.source = strided
        src.length = len(strided) if src.steps is None else min(len(strided), src.steps)
        data.steps = src.length
        data.order = lambda: ("items", n)


class _Strided:
    """Batches `rank, rank + W, ...` of a re-iterable source of `n` batches (a `DataLoader`
    without a `DistributedSampler`, a `plexus.utils` dataset, a list of batches); padded with
    its first batches when every rank must run as many."""

    def __init__(self, source, n, world, rank, pad):
        self.source, self.n, self.world, self.rank = source, n, world, rank
        self.total = math.ceil(n / world) * world if pad else n

    def __len__(self):
        return len(range(self.rank, self.total, self.world))

    def __iter__(self):
        head = []  # the first batches, kept for the padding
        i = -1
        for i, batch in enumerate(self.source):
            if i < self.total - self.n:
                head.append(batch)
            if i % self.world == self.rank:
                yield batch
        for j in range(i + 1, self.total):
            if j % self.world == self.rank and head:
                yield head[(j - self.n) % len(head)]


def _has_len(x):
    try:
        len(x)
    except (TypeError, NotImplementedError):
        return False
    return True


# ---------------------------------------------------------------------- predictions
def gather_predictions(data, chunks):
    """Every process's predictions (`chunks`, one per batch), on every process, in the order
    of the data: one chunk per leaf structure, ready for `_pack_predictions`."""
    if not R.active():
        return chunks
    kind, n = data.order() if hasattr(data, "order") else ("ranks", None)
    structure = chunks[0] if chunks else None
    flats = [[_host(t) for t in tree.flatten(c)] for c in chunks]
    everyone = R.gather_objects("gathering the predictions", (structure is not None and
                                                               _skeleton(chunks[0]), flats))
    skeleton = next((s for s, _ in everyone if s is not False), None)
    if skeleton is None:
        raise ValueError("predict received no data (zero samples) on any process.")
    world = len(everyone)
    if kind == "items":  # batch k of rank r is item k * world + r
        ordered = []
        for k in range(max(len(f) for _, f in everyone)):
            for r in range(world):
                if k < len(everyone[r][1]) and (n is None or k * world + r < n):
                    ordered.append(everyone[r][1][k])  # (items past n: padding)
        leaves = [np.concatenate([b[i] for b in ordered]) for i in range(len(ordered[0]))]
    else:
        per_rank = [[np.concatenate([b[i] for b in f]) if f else None
                     for i in range(len(skeleton))] for _, f in everyone]
        leaves = []
        for i in range(len(skeleton)):
            parts = [p[i] for p in per_rank if p[i] is not None]
            if kind in ("samples", "padded"):
                total = sum(len(p) for p in parts) if kind == "samples" else n
                out = np.empty((total,) + parts[0].shape[1:], dtype=parts[0].dtype)
                for r, p in enumerate(per_rank):
                    if p[i] is None:
                        continue
                    rows = np.arange(r, r + world * len(p[i]), world)
                    keep = rows < total
                    out[rows[keep]] = p[i][keep]
                leaves.append(out)
            else:
                leaves.append(np.concatenate(parts))
    values = [torch.from_numpy(np.ascontiguousarray(v)) for v in leaves]
    return [tree.pack_like(skeleton, values) if not isinstance(skeleton, list) else values]


def _skeleton(chunk):
    """The structure of a chunk with placeholder leaves (picklable)."""
    flat = tree.flatten(chunk)
    return tree.pack_like(chunk, list(range(len(flat)))) if not isinstance(chunk, list) \
        else list(range(len(flat)))


def _host(t):
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
    return np.asarray(t)
