"""The training, evaluation and prediction loops behind `Model.compile/fit/evaluate/predict`.

A training step: forward in training mode, weighted per-output losses plus weight penalties,
backward, optimizer update, weight constraints, then the running metrics (on the device; nothing
here waits for the device unless a callback or the progress display reads a number).
"""
import warnings

import torch

from plexus.graph import functional, tree
from plexus.training import backprop
from plexus.training import callbacks as C
from plexus.training import data as D
from plexus.training import optimizers as O
from plexus.training import validation as V
from plexus.training.compile import CompileState, _resolve_loss, _check_metric_name
from plexus.optimizers.loss_scale_optimizer import LossScaleOptimizer


# ---------------------------------------------------------------------- compile
def compile(model, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
            weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
            jit_compile=False, auto_scale_loss=True):
    """Configure `model` for training (see `Model.compile`)."""
    opt = O.get(optimizer)
    if auto_scale_loss and model.dtype_policy.name == "mixed_float16" and not isinstance(
            opt, LossScaleOptimizer):  # float16 gradients underflow without loss scaling
        opt = LossScaleOptimizer(opt, name="loss_scale_optimizer")
    for ident in tree.flatten(loss) if isinstance(loss, (list, tuple, dict)) else [loss]:
        if ident is not None:
            _resolve_loss(ident)  # unknown names fail here, not at the first batch
    for spec in (metrics, weighted_metrics):
        for ident in tree.flatten(spec) if isinstance(spec, (list, tuple, dict)) else [spec]:
            if ident is not None:
                _check_metric_name(ident)
    jit_compile = jit_compile is True  # "auto" (Keras's default) means eager on torch
    if jit_compile and not hasattr(torch, "compile"):
        raise ValueError("jit_compile=True needs torch.compile (torch >= 2.0).")
    args = (opt, loss, loss_weights, metrics, weighted_metrics, jit_compile)
    model._compile_args = args
    model._compile_state = None
    if getattr(model, "_is_graph", False):
        model._compile_state = CompileState(*args[:5], list(model.output_names), args[5])
    model.optimizer = opt
    model.loss = loss
    model.compiled = True
    model.stop_training = False


def _state(model, n_out=None):
    if not getattr(model, "compiled", False):
        raise RuntimeError(
            f"Model {model.name!r} must be compiled before training or evaluation: call "
            "model.compile(optimizer=..., loss=...) first."
        )
    if model._compile_state is None:
        names = ["output"] if n_out in (None, 1) else [f"output_{i}" for i in range(n_out)]
        a = model._compile_args
        model._compile_state = CompileState(a[0], a[1], a[2], a[3], a[4], names, a[5])
    return model._compile_state


# ---------------------------------------------------------------------- forward and steps
def forward(model, xs, training):
    """The model's outputs on the list of input tensors `xs`, as a flat list."""
    if getattr(model, "_is_graph", False) and type(model).call is _model_call():
        return functional.run_steps(model._steps, model._n_slots, xs, model._output_slots,
                                    training)
    out = model(xs[0], training=training)
    return tree.flatten(out)


_MODEL_CALL = []


def _model_call():
    if not _MODEL_CALL:
        from plexus.models.model import Model
        _MODEL_CALL.append(Model.call)
    return _MODEL_CALL[0]


def _penalties(model):
    """(param, regularizer, to_keras) and (param, constraint, to_keras, to_torch) lists."""
    regs, cons = [], []
    for layer, w in model._weight_entries():
        p = getattr(layer, w.attr)
        if w.regularizer is not None and p.requires_grad:
            regs.append((p, w.regularizer, w.to_keras))
        if w.constraint is not None and p.requires_grad:
            cons.append((p, w.constraint, w.to_keras, w.to_torch))
    return regs, cons


def _activity_losses(st):
    """`add_loss` / activity-regularizer values recorded by this model's layers in the last
    forward pass (none unless some layer recorded one)."""
    from plexus.layers import layer as layer_module
    holders = getattr(layer_module, "_LOSS_HOLDERS", None)
    if not holders:
        return ()
    mine = st.cache.get("module_ids", ())
    return [v for lay in list(holders) if id(lay) in mine for v in lay.__dict__.get("_losses", ())]


def _loss_fn(model, st, regs, xs, ys, sw):
    preds = forward(model, xs, True)
    total, values = st.loss(ys, preds, sw)
    for p, reg, to_keras in regs:
        penalty = reg(to_keras(p))
        total = penalty if total is None else total + penalty
    for extra in _activity_losses(st):
        total = extra if total is None else total + extra
    if total is None:
        raise ValueError(
            f"Model {model.name!r} has no loss to minimize: pass loss=... to compile(), or "
            "record losses with add_loss() in a layer's call()."
        )
    return total, values, preds


def _prepare_training(model, st, xs):
    """Build what the steps need once per fit: parameters, penalties, optimizer state."""
    if not model.built:  # a subclassed model creates its weights on the first batch it sees
        with torch.no_grad():
            forward(model, xs, training=False)
    params = list(model.trainable_weights)
    key = tuple(id(p) for p in params)
    if st.cache.get("params_key") != key:
        regs, cons = _penalties(model)
        st.cache.update(params_key=key, params=params, regs=regs, cons=cons,
                        module_ids={id(m) for m in model.modules()})
        if not st.optimizer.built or len(st.optimizer._vars) != len(params) or any(
                a is not b for a, b in zip(st.optimizer._vars, params)):
            st.optimizer.build(params)
    if st.cache.get("backprop_key") != key:
        st.cache["backprop"] = backprop.plan(model, st, st.cache["params"])
        st.cache["backprop_key"] = key
    if st.jit_compile and st.cache.get("jit_key") != key:
        st.cache["jit"] = _compiled_gradients(model, st, st.cache["params"])
        st.cache["jit_key"] = key


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
            "torch.compile cannot compile into one graph (recurrent kernels break it, and "
            "compiled fragments train slower than eager ones). It trains eagerly.",
            stacklevel=4)
        return None
    regs = st.cache["regs"]
    _model_call()  # (filled now: filling it while tracing would cost a recompile)
    config = torch._dynamo.config
    if not hasattr(config, "trace_autograd_ops"):
        compiled = torch.compile(lambda xs, ys, sw: _loss_fn(model, st, regs, xs, ys, sw))
        return lambda xs, ys, sw: (*compiled(xs, ys, sw), None)

    def gradients(xs, ys, sw):
        total, values, preds = _loss_fn(model, st, regs, xs, ys, sw)
        if not total.requires_grad:
            raise _untrainable_loss(model)
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


def _untrainable_loss(model):
    return ValueError(
        f"Model {model.name!r}: the loss does not depend on any trainable weight, so there is "
        "nothing to train. Check that the outputs given losses come from layers with trainable "
        "weights.")


def train_step(model, st, xs, ys, sw, check_finite=False):
    """One optimizer step on a batch. Returns False when the loss was not finite (and the
    update was skipped because `check_finite` asked for it)."""
    cache = st.cache
    params = cache["params"]
    fn = cache.get("jit") if params else None
    grads = None
    chain = cache.get("backprop") if ys is not None else None
    done = chain(xs, ys, sw) if chain is not None else None
    if done is not None:  # gradients computed in closed form, already in each `.grad`
        total, values, preds = done
    elif fn is not None:
        total, values, preds, grads = fn(xs, ys, sw)
    else:
        total, values, preds = _loss_fn(model, st, cache["regs"], xs, ys, sw)
    batch = _batch_size(xs)
    if check_finite and not bool(torch.isfinite(total)):
        st.loss_tracker.update_state(total.detach(), sample_weight=batch)
        return False
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
            raise _untrainable_loss(model)
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
    return True


@torch.no_grad()
def test_step(model, st, xs, ys, sw):
    preds = forward(model, xs, False)
    total, values = st.loss(ys, preds, sw)
    if "module_ids" not in st.cache:
        st.cache["module_ids"] = {id(m) for m in model.modules()}
    for p, reg, to_keras in st.cache.get("regs") or _penalties(model)[0]:
        penalty = reg(to_keras(p))
        total = penalty if total is None else total + penalty
    for extra in _activity_losses(st):
        total = extra if total is None else total + extra
    if total is None:
        total = torch.zeros((), device=D.model_device(model))
    batch = _batch_size(xs)
    st.loss_tracker.update_state(total, sample_weight=batch)
    st.loss.update(values, batch)
    if ys is not None:
        st.metrics.update(ys, preds, sw)


def _batch_size(xs):
    first = tree.flatten(xs)[0]
    return int(first.shape[0]) if hasattr(first, "shape") and len(first.shape) else 1


# ---------------------------------------------------------------------- data
def _n_outputs(model):
    return len(model.outputs) if getattr(model, "_is_graph", False) else None


def _ensure_built(model, device, x_sample):
    """Sequential models without an input shape build on the first data they see."""
    if getattr(model, "_is_graph", False) or x_sample is None:
        return
    with torch.no_grad():
        model(x_sample[:1] if hasattr(x_sample, "shape") else x_sample)


def _subclass_inputs(x, device):
    return [tree.map_structure(lambda v: D.to_tensor(v, device, what="x"), x)]


def make_data(model, x, y, sample_weight, batch_size, shuffle, steps, class_weight=None,
              with_targets=True):
    device = D.model_device(model)
    n_out = _n_outputs(model)
    if D.is_iterable_source(x):
        if y is not None:
            raise ValueError(
                "When x is a generator or a DataLoader, it must yield (x, y) batches itself; "
                "do not pass y separately."
            )
        return D.IterableData(x, model, n_out or 1, device, steps, with_targets)
    if x is None:
        raise ValueError("No input data: pass x (arrays, a dict, a generator or a DataLoader).")
    if not getattr(model, "_is_graph", False):
        first = tree.flatten(x)[0] if isinstance(x, (list, tuple, dict)) else x
        _ensure_built(model, device, D.to_tensor(first, device) if not isinstance(
            x, (list, tuple, dict)) else None)
    xs = D.prepare_inputs(model, x, device)
    if xs is None:
        xs = _subclass_inputs(x, device)
    n_out = _n_outputs(model) or 1
    ys = D.prepare_targets(model, y, n_out, device) if y is not None else None
    if with_targets and ys is None:
        raise ValueError(
            f"Model {model.name!r} needs targets: pass y (one array per output) to fit and "
            "evaluate."
        )
    sw = D.prepare_sample_weight(model, sample_weight, n_out, device)
    if class_weight is not None:
        if sw is not None:
            raise ValueError("Pass either class_weight or sample_weight to fit, not both.")
        if n_out != 1:
            raise ValueError(
                "class_weight works for models with one output. For several outputs, pass "
                "sample_weight as a dict keyed by output name."
            )
        sw = D.class_weight_to_sample_weight(ys[0], class_weight).to(device)
    return D.ArrayData(xs, ys, sw, batch_size if batch_size is not None else 32, shuffle,
                       steps)


def _needs_targets(st):
    return any(l is not None for l in st.loss.losses) or any(
        m for spec in st.metrics.specs for per_out in spec for m in per_out)


def _validation(model, validation_data, batch_size, steps):
    if D.is_iterable_source(validation_data):
        return make_data(model, validation_data, None, None, batch_size, False, steps)
    if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
        raise ValueError(
            "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight), "
            "or a generator / DataLoader of such batches."
        )
    x, y, sw = (list(validation_data) + [None])[:3]
    return make_data(model, x, y, sw, batch_size, False, steps)


# ---------------------------------------------------------------------- loops
def fit(model, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
        sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
        validation_batch_size=None, validation_freq=1):
    """Train `model` (see `Model.fit`); returns a `History`."""
    V.check_arguments("fit", batch_size=batch_size, epochs=epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                      validation_batch_size=validation_batch_size, validation_freq=validation_freq)
    V.check_inputs("fit", x)
    st = _state(model, _n_outputs(model))
    data = make_data(model, x, y, sample_weight, batch_size, shuffle, steps_per_epoch,
                     class_weight, with_targets=_needs_targets(st))
    V.check_data("fit", data, model, st.loss.losses)
    val = None
    if validation_data is not None:
        val = _validation(model, validation_data, validation_batch_size or batch_size,
                          validation_steps)
        V.check_data("fit (validation_data)", val, model, st.loss.losses)
    elif validation_split:
        if not isinstance(data, D.ArrayData):
            raise ValueError("validation_split needs array data; with a generator or "
                             "DataLoader pass validation_data instead.")
        data, val = data.split(validation_split)
    cbs = C.CallbackList(callbacks, model=model, add_history=True,
                         add_progbar=_verbose(verbose) != 0, verbose=_verbose(verbose),
                         epochs=epochs, steps=data.steps)
    model.stop_training = False
    was_training = model.training
    model.train()
    logs = {}
    prepared = False
    try:
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            st.reset()
            cbs.on_epoch_begin(epoch)
            for step, (xs, ys, sw) in enumerate(data.batches()):
                if not prepared:
                    _prepare_training(model, st, xs)
                    prepared = True
                cbs.on_train_batch_begin(step)
                train_step(model, st, xs, ys, sw, check_finite=cbs.check_finite)
                cbs.on_train_batch_end(step, C.LazyLogs(st.results))
                if model.stop_training:
                    break
            logs = st.results()
            if val is not None and (epoch + 1) % validation_freq == 0:
                model.train(False)
                cbs.on_test_begin()
                val_logs = _run_evaluation(model, st, val, cbs)
                cbs.on_test_end(val_logs)
                model.train()
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        cbs.on_train_end(logs)
    finally:
        model.train(was_training)
    return model.history


def _verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2; received {verbose!r}.")
    return int(verbose)


def _run_evaluation(model, st, data, cbs):
    st.reset()
    for step, (xs, ys, sw) in enumerate(data.batches()):
        if cbs is not None:
            cbs.on_test_batch_begin(step)
        test_step(model, st, xs, ys, sw)
        if cbs is not None:
            cbs.on_test_batch_end(step, C.LazyLogs(st.results))
    return st.results()


def evaluate(model, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
             steps=None, callbacks=None, return_dict=False):
    """Loss and metrics on the data (see `Model.evaluate`)."""
    V.check_arguments("evaluate", batch_size=batch_size, steps=steps)
    V.check_inputs("evaluate", x)
    st = _state(model, _n_outputs(model))
    data = make_data(model, x, y, sample_weight, batch_size, False, steps,
                     with_targets=_needs_targets(st))
    V.check_data("evaluate", data, model, st.loss.losses)
    cbs = C.CallbackList(callbacks, model=model, add_history=False,
                         add_progbar=_verbose(verbose) != 0, verbose=_verbose(verbose),
                         epochs=1, steps=data.steps, mode="test")
    was_training = model.training
    model.train(False)
    try:
        cbs.on_test_begin()
        logs = _run_evaluation(model, st, data, cbs)
        cbs.on_test_end(logs)
    finally:
        model.train(was_training)
    if return_dict:
        return logs
    values = [logs[k] for k in st.ordered_names(logs)]
    return values[0] if len(values) == 1 else values


@torch.no_grad()
def predict(model, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
    """Predictions as NumPy arrays (see `Model.predict`)."""
    V.check_arguments("predict", batch_size=batch_size, steps=steps)
    V.check_inputs("predict", x)
    if callbacks is None and steps is None and _verbose(verbose) == 0:
        out = _predict_one_batch(model, x, batch_size)
        if out is not None:
            return out
    data = make_data(model, x, None, None, batch_size, False, steps, with_targets=False)
    V.check_data("predict", data)
    cbs = C.CallbackList(callbacks, model=model, add_history=False,
                         add_progbar=_verbose(verbose) != 0, verbose=_verbose(verbose),
                         epochs=1, steps=data.steps, mode="predict")
    was_training = model.training
    model.train(False)
    chunks = []
    try:
        cbs.on_predict_begin()
        for step, (xs, _, _) in enumerate(data.batches()):
            cbs.on_predict_batch_begin(step)
            chunks.append(forward(model, xs, False))
            cbs.on_predict_batch_end(step, {})
        cbs.on_predict_end()
    finally:
        if was_training:
            model.train(True)
    return _pack_predictions(model, chunks)


def _predict_one_batch(model, x, batch_size):
    """Silent `predict` of arrays that fit in one batch: one forward pass, no batching
    machinery (the latency of `predict` on a single sample). None when it does not apply."""
    if not getattr(model, "_is_graph", False) or D.is_iterable_source(x):
        return None
    xs = D.prepare_inputs(model, x, D.model_device(model))
    n = D.num_samples([(f"input {i}", t) for i, t in enumerate(xs)], "inputs") \
        if len(xs) > 1 else (int(xs[0].shape[0]) if xs and xs[0].dim() else 0)
    if not 0 < n <= (batch_size or 32):
        return None
    was_training = model.training
    model.train(False)
    try:
        out = forward(model, xs, False)
    finally:
        if was_training:
            model.train(True)
    return _pack_predictions(model, [out])


def _numpy(t):
    """A tensor as a NumPy array; bfloat16 (which NumPy lacks) as ml_dtypes' bfloat16 when
    that package is installed (as Keras returns it), else as float32."""
    t = t.detach().cpu()
    if t.dtype != torch.bfloat16:
        return t.numpy()
    try:
        import ml_dtypes
    except ImportError:
        return t.float().numpy()
    return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)


def _pack_predictions(model, chunks):
    if not chunks:
        raise ValueError("predict received no data (zero samples).")
    outs = [_numpy(chunks[0][i] if len(chunks) == 1 else torch.cat([c[i] for c in chunks]))
            for i in range(len(chunks[0]))]
    if getattr(model, "_is_graph", False):
        packed = tree.pack_like(model._outputs_struct, outs)
        if isinstance(packed, (list, tuple)) and len(packed) == 1:
            return packed[0]
        return list(packed) if isinstance(packed, tuple) else packed
    return outs[0] if len(outs) == 1 else outs


# ---------------------------------------------------------------------- single batches
def _one_batch(model, method, st, x, y, sample_weight, class_weight=None):
    V.check_inputs(method, x)
    data = make_data(model, x, y, sample_weight, None, False, None, class_weight)
    V.check_data(method, data, model, st.loss.losses)
    xs, ys, sw = data.xs, data.ys, data.sw
    return xs, ys, sw


def _batch_result(st, logs, return_dict):
    if return_dict:
        return logs
    values = [logs[k] for k in st.ordered_names(logs)]
    return values[0] if len(values) == 1 else values


def train_on_batch(model, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
    """One training step on exactly this batch; returns its loss (and metrics)."""
    st = _state(model, _n_outputs(model))
    xs, ys, sw = _one_batch(model, "train_on_batch", st, x, y, sample_weight, class_weight)
    was_training = model.training
    model.train()
    try:
        st.reset()
        _prepare_training(model, st, xs)
        train_step(model, st, xs, ys, sw)
    finally:
        model.train(was_training)
    return _batch_result(st, st.results(), return_dict)


def test_on_batch(model, x, y=None, sample_weight=None, return_dict=False):
    """Loss (and metrics) on exactly this batch, without training."""
    st = _state(model, _n_outputs(model))
    xs, ys, sw = _one_batch(model, "test_on_batch", st, x, y, sample_weight)
    was_training = model.training
    model.train(False)
    try:
        st.reset()
        test_step(model, st, xs, ys, sw)
    finally:
        model.train(was_training)
    return _batch_result(st, st.results(), return_dict)


@torch.no_grad()
def predict_on_batch(model, x):
    """Predictions for exactly this batch, as NumPy arrays."""
    V.check_inputs("predict_on_batch", x)
    data = make_data(model, x, None, None, None, False, None, with_targets=False)
    V.check_data("predict_on_batch", data)
    was_training = model.training
    model.train(False)
    try:
        out = forward(model, data.xs, False)
    finally:
        model.train(was_training)
    return _pack_predictions(model, [out])


def metrics_names(model):
    st = getattr(model, "_compile_state", None)
    if st is None:
        return []
    return [name for name, _ in st.all_metrics()]
