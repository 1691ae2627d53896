"""The steps `fit`, `evaluate` and `predict` run on each batch.

A model's `train_step`, `test_step` and `predict_step` define them (`plexus/models/model.py`).
When a model overrides none of their doors (see `Model._runs_default_step`), the loops run the
same computation their faster way, here: inputs standardised once per call instead of per
batch, the graph run directly, weight penalties listed once per `fit`, metric values read
lazily, and for plain chains of layers that have closed-form rules the gradients `backprop.py`
strings together from those rules (re-planned, and so re-validated, at the start of every
`fit`). Autograd through the default `train_step` is the definition of correctness the faster
ways are tested against.
"""
import warnings

import torch

from plexus.distribution import runtime as distributed
from plexus.graph import tree
from plexus.layers.layer import published_losses
from plexus.training import backprop, halves
from plexus.training.callbacks import LazyLogs
from plexus.training.compile import CompileState
from plexus.training.jit_race import JitRace


# ---------------------------------------------------------------------- compile state
def compile_state(model):
    """The `CompileState` that `compile` made (RuntimeError when not compiled)."""
    st = model.__dict__.get("_compile_state")
    if st is None:
        raise RuntimeError(
            f"Model {model.name!r} must be compiled before training or evaluation: call "
            "model.compile(optimizer=..., loss=...) first.")
    return st


def new_compile_state(model, optimizer, loss, loss_weights, metrics, weighted_metrics,
                      jit_compile):
    return CompileState(optimizer, loss, loss_weights, metrics, weighted_metrics,
                        model._output_names_for_data(), jit_compile)


def _bound(model, st, n_out):
    return st.bound(n_out, model._output_names_for_data())


def batch_size_of(x):
    """The number of samples in a batch `x` (its first array's first dimension)."""
    if type(x) is list and x and type(x[0]) is torch.Tensor and x[0].dim():
        return x[0].shape[0]  # (the loops' flat batches)
    first = next((t for t in tree.flatten(x) if t is not None), None)
    return int(first.shape[0]) if hasattr(first, "shape") and len(first.shape) else 1


def untrainable_loss(model):
    return ValueError(
        f"Model {model.name!r}: the loss does not depend on any trainable weight, so there is "
        "nothing to train. Check that the outputs given losses come from layers with trainable "
        "weights.")


def no_loss(model):
    return ValueError(
        f"Model {model.name!r} has no loss to minimize: pass loss=... to compile(), or record "
        "losses with add_loss() in a layer's call().")


# ---------------------------------------------------------------------- the default doors
def _flat_batch(model, st, y, y_pred, sample_weight):
    """(targets, predictions, sample weights) as flat lists in output order."""
    preds = tree.flatten(y_pred)
    _bound(model, st, len(preds))
    if y is None:
        return None, preds, None
    from plexus.training import data as D
    device = preds[0].device if preds and isinstance(preds[0], torch.Tensor) else None
    ys = D.prepare_targets(model, y, len(preds), device)
    sw = D.prepare_sample_weight(model, sample_weight, len(preds), device)
    return ys, preds, sw


def compute_loss(model, y, y_pred, sample_weight):
    """`Model.compute_loss`'s default: compiled losses plus `sum(model.losses)`."""
    st = compile_state(model)
    ys, preds, sw = _flat_batch(model, st, y, y_pred, sample_weight)
    total = None
    if any(l is not None for l in st.loss.losses):
        if ys is None:
            raise ValueError(
                f"Model {model.name!r} has a compiled loss but received no targets (y).")
        total, values = st.loss(ys, preds, sw)
        st.loss.update(values, batch_size_of(preds))
    for extra in model.losses:
        total = extra if total is None else total + extra
    if total is None:
        raise no_loss(model)
    return total


def update_compiled_metrics(model, y, y_pred, sample_weight):
    st = model.__dict__.get("_compile_state")
    if st is None:
        return
    ys, preds, sw = _flat_batch(model, st, y, y_pred, sample_weight)
    if ys is not None:
        st.metrics.update(ys, preds, sw)


def named_metrics(model):
    """(name, metric) pairs: the compiled ones under their history names, then the metrics
    tracked as attributes (or, when `metrics` is overridden, its list by `name`)."""
    if model._metrics_overridden():
        return [(m.name, m) for m in model.metrics]
    st = model.__dict__.get("_compile_state")
    out = st.all_metrics() if st is not None else []
    known = {id(m) for _, m in out}
    return out + [(m.name, m) for m in model._tracked_metrics() if id(m) not in known]


def model_metrics(model):
    st = model.__dict__.get("_compile_state")
    out = st.metric_objects() if st is not None else []
    known = {id(m) for m in out}
    return out + [m for m in model._tracked_metrics() if id(m) not in known]


def metrics_result(model):
    out = {}
    for name, m in named_metrics(model):
        value = m.result()
        if isinstance(value, dict):
            out.update(value)
        else:
            out[name] = value
    return out


def metrics_names(model):
    return [name for name, _ in named_metrics(model)]


def _flat_logs(logs):
    out = {}
    for k, v in logs.items():
        if isinstance(v, dict):
            out.update(_flat_logs(v))  # a metric whose result is a dict (compile_metrics)
        else:
            out[k] = v
    return out


def pythonify(logs):
    """Logs as a flat dict, keys sorted, tensors read in one device sync: Python floats, or
    NumPy arrays for metrics with one value per class (`F1Score(average=None)`)."""
    logs = _flat_logs(logs)
    keys = [k for k, v in logs.items() if isinstance(v, torch.Tensor) and v.numel()]
    if keys:
        vals = [logs[k].detach().float() for k in keys]
        dev = vals[0].device
        flat = torch.cat([v.reshape(-1).to(dev) for v in vals]).cpu().numpy()
        start = 0
        for k, v in zip(keys, vals):
            logs[k] = float(flat[start]) if v.numel() == 1 else \
                flat[start:start + v.numel()].reshape(v.shape).copy()
            start += v.numel()
    return {k: logs[k] for k in sorted(logs)}


def apply_constraints(model):
    """Project the weights that have constraints (after an optimizer update)."""
    with torch.no_grad():
        for p, con, to_keras, to_torch in penalties(model)[1]:
            p.copy_(to_torch(con(to_keras(p))))


def penalties(model):
    """(param, regularizer, to_keras) and (param, constraint, to_keras, to_torch) lists."""
    regs, cons = [], []
    for layer, w in model._weight_entries():
        p = getattr(layer, w.attr)
        if w.regularizer is not None and p.requires_grad:
            regs.append((p, w.regularizer, w.to_keras))
        if w.constraint is not None and p.requires_grad:
            cons.append((p, w.constraint, w.to_keras, w.to_torch))
    return regs, cons


# ---------------------------------------------------------------------- step functions
class StepFunction:
    """What a loop calls on each batch (`model.train_function` & co.). `flat` says which
    batches it takes: `(xs, ys, sw)` from `batches()`, or the user's structure from
    `user_batches()` (an overridden step)."""

    __slots__ = ("run", "flat", "prepare")

    def __init__(self, run, flat, prepare=None):
        self.run, self.flat, self.prepare = run, flat, prepare

    def __call__(self, batch):
        return self.run(batch)


def make_step_function(model, kind):
    """The function the `kind` loop ("train", "test", "predict") calls on each batch."""
    if model._runs_default_step(kind):
        if kind == "predict":
            return StepFunction(lambda b: _predict_flat(model, b[0]), True)
        st = compile_state(model)
        if kind == "train":
            return StepFunction(lambda b: fast_train_step(model, st, *b), True,
                                lambda xs: prepare_training(model, st, xs))
        return StepFunction(lambda b: fast_test_step(model, st, *b), True,
                            lambda xs: _prepare_testing(st, model))
    door = getattr(model, f"{kind}_step")
    if kind == "train":
        if model.jit_compile and not model.run_eagerly:
            door = torch.compile(door)  # as Keras on torch: the whole step, compiled
        return StepFunction(door, False, lambda xs: _prepare_door(model))

    def run(data):
        with torch.no_grad():
            return door(data)
    return StepFunction(run, False)


@torch.no_grad()
def _predict_flat(model, xs):
    return model._forward_flat(xs, False)


def _prepare_door(model):
    """Before an overridden (or eager) `train_step`: weights built and the optimizer built
    for them, as the default step needs."""
    st = model.__dict__.get("_compile_state")
    if model.built:
        distributed.prepare_model(model)
    if st is not None and st.optimizer is not None and model.built:
        _build_optimizer(model, st, list(model.trainable_weights))


def _build_optimizer(model, st, params):
    opt = st.optimizer
    if not opt.built or len(opt._vars) != len(params) or any(
            a is not b for a, b in zip(opt._vars, params)):
        opt.bind_model(model)  # (what some rules need: each weight's Keras layout and path)
        opt.build(params)


def prepare_training(model, st, xs):
    """Once per `fit` (and per `train_on_batch`): weights built, penalties listed, optimizer
    built, and the faster ways (closed form, compiled gradients) planned anew, so that every
    change made between two fits (hooks, regularizers, dtypes, ...) is seen."""
    if not model.built:  # a subclassed model creates its weights on the first batch it sees
        with torch.no_grad():
            model._forward_flat(xs, False)
    distributed.prepare_model(model)  # (under a distribution: sharded, same weights everywhere)
    params = list(model.trainable_weights)
    if st.loss is None and model._output_names_for_data():
        _bound(model, st, 0)
    regs, cons = penalties(model)
    st.cache.update(params=params, regs=regs, cons=cons,
                    module_ids={id(m) for m in model.modules()})
    _build_optimizer(model, st, params)
    fast = distributed.allows_fast_paths(model)
    st.cache["backprop"] = backprop.plan(model, st, params) if fast else None
    # the step by halves, for the thread policy to race (plexus/training/halves.py), planned
    # anew like the closed form: an activity regularizer or a dtype set since is seen
    st.cache["halves"] = halves.plan(model, params, lambda ys, preds, sw: _whole_loss(
        model, st, ys, preds, sw)) if st.cache["backprop"] is None and not regs and \
        not st.jit_compile and not distributed.active() else None
    key = tuple(id(p) for p in params)
    if not fast:
        st.cache["jit"] = st.cache["jit_key"] = None
    elif st.jit_compile:  # (the eager side of the race takes `backprop` when it is planned)
        if st.cache.get("jit_key") != key:
            compiled = _compiled_gradients(model, st, params)
            st.cache["jit"] = compiled and JitRace(
                compiled, params[0].device if params else None,
                lambda xs, ys, sw: (*_loss_fn(model, st, st.cache["regs"], xs, ys, sw), None),
                model.name)
            st.cache["jit_key"] = key
        elif st.cache.get("jit") is not None:
            st.cache["jit"].pause()


def _prepare_testing(st, model):
    st.cache["test_regs"] = penalties(model)[0]
    st.cache["module_ids"] = {id(m) for m in model.modules()}


def _activity_losses(st):
    """`add_loss` / activity-regularizer values this model's layers published in the last
    forward pass (none unless some layer recorded one)."""
    return published_losses(st.cache.get("module_ids", ()))


def _loss_fn(model, st, regs, xs, ys, sw):
    preds = model._forward_flat(xs, True)
    total, values = _bound(model, st, len(preds)).loss(ys, preds, sw)
    for p, reg, to_keras in regs:
        penalty = reg(to_keras(p))
        total = penalty if total is None else total + penalty
    for extra in _activity_losses(st):
        total = extra if total is None else total + extra
    if total is None:
        raise no_loss(model)
    return total, values, preds


def _whole_loss(model, st, ys, preds, sw):
    """The compiled loss of a whole batch from its predictions (the step by halves)."""
    total, values = _bound(model, st, len(preds)).loss(ys, preds, sw)
    if total is None:
        raise no_loss(model)
    if not total.requires_grad:
        raise untrainable_loss(model)
    return total, values, st.optimizer.scale_loss(total)


def _compiled_gradients(model, st, params):
    """`jit_compile=True`: forward, losses and gradients as one `torch.compile`d function.

    Where torch's compiler can trace `torch.autograd.grad` (`trace_autograd_ops`), the
    backward pass joins the forward one in a single graph: no autograd bookkeeping per
    operation, fused kernels. The optimizer update stays outside (it is a handful of kernels on
    packed weights). Older torch compiles forward and losses only and runs `backward()`."""
    slow = sorted({type(m).__name__ for m in model.modules()
                   if not getattr(m, "_jit_compiles", True)})
    if slow:
        warnings.warn(
            f"jit_compile=True: model {model.name!r} has {', '.join(slow)} layers, which "
            "train slower compiled than eager (a compiled recurrent kernel computes its "
            "forward pass twice, a cell loop is unrolled over every step). It trains eagerly.",
            stacklevel=4)
        return None
    regs = st.cache["regs"]
    config = torch._dynamo.config
    if not hasattr(config, "trace_autograd_ops"):
        compiled = torch.compile(lambda xs, ys, sw: _loss_fn(model, st, regs, xs, ys, sw))
        return lambda xs, ys, sw: (*compiled(xs, ys, sw), None)

    def gradients(xs, ys, sw):
        total, values, preds = _loss_fn(model, st, regs, xs, ys, sw)
        if not total.requires_grad:
            raise untrainable_loss(model)
        grads = torch.autograd.grad(st.optimizer.scale_loss(total), params, allow_unused=True)
        return (total.detach(), [None if v is None else v.detach() for v in values],
                [p.detach() for p in preds], grads)

    compiled = torch.compile(gradients)

    def run(xs, ys, sw):
        before = config.trace_autograd_ops  # (only read when a call traces; cheap to set)
        config.trace_autograd_ops = True
        try:
            return compiled(xs, ys, sw)
        finally:
            config.trace_autograd_ops = before
    return run


def fast_train_step(model, st, xs, ys, sw):
    """The default `train_step` on a batch of standardised tensors. Returns lazy logs; when
    `st.check_finite` asks for it, a non-finite loss skips the update (logs then hold it)."""
    cache = st.cache
    params = cache["params"]
    fn = cache.get("jit") if params else None
    grads = None
    chain = cache.get("backprop") if ys is not None else None
    if fn is not None:  # jit_compile=True: this step's path, compiled or eager
        fn = fn.begin()
        if fn is not None:
            chain = None  # the compiled side of the race
    if chain is None and fn is None and ys is not None and cache.get("halves") is not None \
            and halves.active():
        chain = cache["halves"]  # two threads, a batch half each (the thread policy's choice)
    done = chain(xs, ys, sw) if chain is not None else None
    if done is not None:  # gradients computed in closed form, already in each `.grad`
        total, values, preds = done
    elif fn is not None:
        total, values, preds, grads = fn(xs, ys, sw)
    else:
        total, values, preds = _loss_fn(model, st, cache["regs"], xs, ys, sw)
    batch = batch_size_of(xs)
    if st.check_finite and not distributed.all_finite(total):  # (on every process)
        st.loss_tracker.update_state(total.detach(), sample_weight=batch)
        return LazyLogs(lambda: pythonify(metrics_result(model)))
    if not params:
        # e.g. `model.trainable = False` after compile: the loss is computed, nothing trains
        warnings.warn(f"Model {model.name!r} has no trainable weights: this step updates "
                      "nothing.", stacklevel=4)
    elif done is not None:
        st.optimizer.step()
    elif grads is not None:
        for p, g in zip(params, grads):
            p.grad = g
        st.optimizer.step()
    else:
        if not total.requires_grad:
            raise untrainable_loss(model)
        for p in params:
            p.grad = None
        st.optimizer.scale_loss(total).backward()
        st.optimizer.step()
    if cache["cons"]:
        with torch.no_grad():
            for p, con, to_keras, to_torch in cache["cons"]:
                p.copy_(to_torch(con(to_keras(p))))
    st.loss_tracker.update_state(total.detach(), sample_weight=batch)
    st.loss.update(values, batch)
    if ys is not None:
        st.metrics.update(ys, preds, sw)
    return LazyLogs(lambda: pythonify(metrics_result(model)))


@torch.no_grad()
def fast_test_step(model, st, xs, ys, sw):
    """The default `test_step` on a batch of standardised tensors; returns lazy logs."""
    preds = model._forward_flat(xs, False)
    total, values = _bound(model, st, len(preds)).loss(ys, preds, sw)
    if "test_regs" not in st.cache:
        _prepare_testing(st, model)
    for p, reg, to_keras in st.cache["test_regs"]:
        penalty = reg(to_keras(p))
        total = penalty if total is None else total + penalty
    for extra in _activity_losses(st):
        total = extra if total is None else total + extra
    if total is None:
        total = torch.zeros((), device=preds[0].device if preds else None)
    batch = batch_size_of(xs)
    st.loss_tracker.update_state(total, sample_weight=batch)
    st.loss.update(values, batch)
    if ys is not None:
        st.metrics.update(ys, preds, sw)
    return LazyLogs(lambda: pythonify(metrics_result(model)))
