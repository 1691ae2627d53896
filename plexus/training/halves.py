"""A training step on two threads, each on half of the batch ("halves", one of the counts the
thread policy may choose for `fit`).

Why: torch's intra-op threads are an OpenMP team whose threads spin at the end of every
parallel region until the whole team is done. When another process takes a core, one of them
is descheduled and its partner spins for it: two threads then train slower than one (see
`threads.py`). Two halves of the batch, each computed start to end by its own thread on one
intra-op thread, meet only twice per step (after the forward passes, to compute the loss on
the whole batch, and after the backward passes), so a descheduled thread delays its partner
twice per step instead of at every operation, and the share of the second core the machine
leaves is used. On an idle machine torch's own threads are usually faster (the loss, the
embedding tables' gradients and the optimizer run on one thread here), so the tuner races
all three counts and keeps the fastest.

What the step computes is the default train step's result, to float rounding:

- each thread runs the model's graph on its half (`run_steps`), with gradients;
- the predictions of the two halves are joined and the compiled loss is computed on the
  whole batch, as the default step does, in the calling thread; its gradient with respect to
  the predictions is split back into halves;
- each thread backpropagates its half to the weights; a weight's gradient is the sum of the
  two halves' (first half first: deterministic);
- an Embedding table is not backpropagated per half (that would build two dense gradients of
  the whole table): each half's lookup is a leaf, and the table's gradient is built once from
  the gradients of both halves' looked-up rows, as torch builds it for the whole batch.

It applies only where splitting the batch cannot change the result: a functional model made
of plexus's own per-sample layers (`_PER_SAMPLE`: no batch statistics, no random draws, no
masks), float32 weights on the CPU, no penalties or added losses, no torch hooks (on the layers
or on the weights: a weight's gradient hook must see the whole batch's gradient, once), no
distribution or process group; anything else trains as before.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

HALVES = "halves"  # the thread policy's name for this way of running the steps

_state = threading.local()
_pool = None
_pool_lock = threading.Lock()

# plexus's own layers whose output for a sample depends on that sample alone (the batch axis
# is never reduced, shuffled or drawn at random)
_PER_SAMPLE_NAMES = (
    "InputLayer", "Dense", "Embedding", "Activation", "ReLU", "LeakyReLU", "Conv1D", "Conv2D",
    "Conv3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalMaxPooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "Flatten", "Reshape", "Add", "Subtract", "Multiply", "Average",
    "Maximum", "Minimum", "Concatenate", "LayerNormalization", "ZeroPadding1D",
    "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D")
_PER_SAMPLE = None


def active():
    """Whether `fit`'s steps run by halves in this thread (set by the thread policy)."""
    return getattr(_state, "on", False)


def set_active(flag):
    """Turn running by halves on or off in this thread; returns what it was."""
    before = getattr(_state, "on", False)
    _state.on = bool(flag)
    return before


def _per_sample():
    global _PER_SAMPLE
    if _PER_SAMPLE is None:
        from plexus import layers
        _PER_SAMPLE = frozenset(getattr(layers, n) for n in _PER_SAMPLE_NAMES
                                if hasattr(layers, n))
    return _PER_SAMPLE


def eligible(model):
    """Whether `model`'s training steps may run by halves (see the module's docstring)."""
    from plexus.layers.layer import any_hooks
    from plexus.models.functional import Functional
    if not isinstance(model, Functional) or not model._plain_call() or \
            getattr(model, "_steps", None) is None or model._steps.uses_masks:
        return False
    safe = _per_sample()
    layers = [step.layer for step in model._steps]
    for step in model._steps:
        layer = step.layer
        if type(layer) not in safe or getattr(layer, "activity_regularizer", None) is not None \
                or layer.compute_dtype != "float32":
            return False
        if getattr(layer, "mask_zero", False) or _couples_batch(step):
            return False
    if any_hooks(layers):
        return False
    owners = {}
    for layer in layers:
        for p in layer.parameters():
            if owners.setdefault(id(p), id(layer)) != id(layer):
                return False  # a weight shared by two layers
            if p.dtype != torch.float32 or p.device.type != "cpu":
                return False
    return True


def _couples_batch(step):
    """Whether a layer's `axis` (Concatenate, LayerNormalization) names the batch axis."""
    axis = getattr(step.layer, "axis", None)
    if axis is None:
        return False
    ins = step.node.input_tensors
    rank = len(ins[0].shape) if ins else None
    for a in (axis if isinstance(axis, (list, tuple)) else (axis,)):
        if a == 0 or (rank is not None and a == -rank):
            return True
    return False


def plan(model, params, loss):
    """The step by halves for `model`, or None where it does not apply. `loss(ys, preds, sw)`
    gives the compiled loss of the whole batch as `(total, values, scaled)`: `scaled` is what
    the gradients are taken of (the optimizer's loss scaling applied)."""
    from plexus.training import backprop
    if not params or not eligible(model) or backprop._tensor_hooks(params) or \
            backprop._process_group():
        return None  # (a weight's own gradient hook must see the whole batch's gradient once)
    return Step(model, params, loss)


def _worker():
    """The pool thread that computes the second half (made anew in a forked child, where the
    parent's thread does not exist)."""
    global _pool
    pid = os.getpid()
    if _pool is None or _pool[0] != pid:
        with _pool_lock:
            if _pool is None or _pool[0] != pid:
                _pool = (pid, ThreadPoolExecutor(1, thread_name_prefix="plexus-halves"))
    return _pool[1]


class _Half:
    __slots__ = ("preds", "lookups")

    def __init__(self):
        self.preds, self.lookups = None, []  # lookups: (layer, ids, looked-up rows as a leaf)


class Step:
    """`step(xs, ys, sw)`: gradients in each weight's `.grad`; returns `(total, values, preds)`
    as the default step's loss computation does, or None (the default step then runs on the
    whole batch) for a batch of one sample or when a hook has been added since the plan."""

    def __init__(self, model, params, loss):
        from plexus.graph import functional
        from plexus.layers.core import Embedding
        from plexus.layers.layer import any_hooks
        from plexus.training.backprop import _tensor_hooks
        self.model, self.loss = model, loss
        self._any_hooks, self._tensor_hooks = any_hooks, _tensor_hooks
        self.watched = [step.layer for step in model._steps] + [model]
        self._run_steps = functional.run_steps
        self.tables = {}  # id(table) -> its Embedding layer, for the tables that train
        trainable = {id(p) for p in params}
        for step in model._steps:
            layer = step.layer
            if type(layer) is Embedding and id(layer.embeddings) in trainable:
                self.tables[id(layer.embeddings)] = layer
        self.wrt = [p for p in params if id(p) not in self.tables]
        self.params = params

    # -- one half, in either thread
    def _forward(self, xs, worker):
        if worker and torch.get_num_threads() != 1:  # (each thread keeps its own count)
            torch.set_num_threads(1)
        half, tables = _Half(), self.tables

        def apply(step, args, kwargs):
            layer = step.layer
            if id(getattr(layer, "embeddings", None)) in tables:
                rows = layer._lookup(args[0], layer.embeddings.detach()).requires_grad_()
                half.lookups.append((layer, args[0], rows))
                return rows
            if step.pass_training:
                kwargs = {**kwargs, "training": True}
            return layer._call_impl(*args, **kwargs)

        with torch.enable_grad():
            m = self.model
            half.preds = self._run_steps(m._steps, m._n_slots, xs, m._output_slots, True,
                                         apply=apply)
        return half

    def _backward(self, half, grads, worker):
        if worker and torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        outs = [p for p, g in zip(half.preds, grads) if g is not None]
        gs = [g for g in grads if g is not None]
        wrt = self.wrt + [rows for _, _, rows in half.lookups]
        return torch.autograd.grad(outs, wrt, gs, allow_unused=True)

    def _both(self, fn, first, second):
        later = _worker().submit(fn, *second, True)
        try:
            a = fn(*first, False)
        finally:
            b = later.result()
        return a, b

    # -- the step
    def __call__(self, xs, ys, sw):
        n = xs[0].shape[0] if xs else 0
        if n < 2 or self._any_hooks(self.watched) or self._tensor_hooks(self.params):
            return None  # (a hook added since the plan, e.g. by a callback: the whole batch)
        h = n // 2
        a, b = self._both(self._forward, ([x[:h] for x in xs],), ([x[h:] for x in xs],))
        preds = [torch.cat([p, q]) for p, q in zip(a.preds, b.preds)]
        leaves = [p.detach().requires_grad_(p.is_floating_point()) for p in preds]
        total, values, scaled = self.loss(ys, leaves, sw)
        wanted = [t for t in leaves if t.requires_grad]
        got = iter(torch.autograd.grad(scaled, wanted, allow_unused=True) if wanted else ())
        grads = [next(got) if t.requires_grad else None for t in leaves]
        ga, gb = self._both(self._backward,
                            (a, [None if g is None else g[:h] for g in grads]),
                            (b, [None if g is None else g[h:] for g in grads]))
        k = len(self.wrt)
        for p, u, v in zip(self.wrt, ga[:k], gb[:k]):
            p.grad = u if v is None else v if u is None else u + v
        for table_id, layer in self.tables.items():
            rows, ids = [], []
            for half, g in ((a, ga[k:]), (b, gb[k:])):
                for (lay, i, _), d in zip(half.lookups, g):
                    if lay is layer and d is not None:
                        rows.append(d.reshape(-1, d.shape[-1]))
                        ids.append(i.reshape(-1).long())
            table = layer.embeddings
            table.grad = torch.ops.aten.embedding_dense_backward(
                torch.cat(rows), torch.cat(ids), table.shape[0], -1, False) if rows else None
        return total, values, [t.detach() for t in leaves]
