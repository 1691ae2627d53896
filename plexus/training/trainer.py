"""The loops behind `Model.compile/fit/evaluate/predict` and the `*_on_batch` methods.

Each loop turns the data into batches (`data.py`), asks the model for its step function
(`model.make_train_function()` & co., see `steps.py`) and calls it on every batch between the
callbacks' hooks. The model is used only through its methods: nothing here imports the model
classes.
"""
import contextlib
import warnings

import torch

from plexus import config
from plexus.distribution import data as DD
from plexus.distribution import runtime as DR
from plexus.graph import tree
from plexus.training import callbacks as C
from plexus.training import data as D
from plexus.training import optimizers as O
from plexus.training import steps as S
from plexus.training import threads as T
from plexus.training.arguments import (
    check_data, check_evaluate_args, check_fit_args, check_inputs, check_predict_args,
)
from plexus.training.compile import _check_metric_name, _resolve_loss
from plexus.optimizers.loss_scale_optimizer import LossScaleOptimizer

# The step-level helpers the model's default doors use.
batch_size_of = S.batch_size_of
untrainable_loss = S.untrainable_loss
apply_constraints = S.apply_constraints
compute_loss = S.compute_loss
update_compiled_metrics = S.update_compiled_metrics
metrics_result = S.metrics_result
model_metrics = S.model_metrics
metrics_names = S.metrics_names
compile_state = S.compile_state
make_step_function = S.make_step_function


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
    if isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, int) or \
            steps_per_execution < 1:
        raise ValueError(f"steps_per_execution must be an integer >= 1; received "
                         f"{steps_per_execution!r}.")
    jit_compile = jit_compile is True  # "auto" (Keras's default) means eager on torch
    if jit_compile and run_eagerly:
        import warnings
        warnings.warn("compile(run_eagerly=True) runs every step eagerly: jit_compile=True "
                      "is turned off.", stacklevel=3)
        jit_compile = False
    model._compile_state = S.new_compile_state(model, opt, loss, loss_weights, metrics,
                                               weighted_metrics, jit_compile)
    model.optimizer = opt
    model.loss = loss
    model.run_eagerly = bool(run_eagerly)
    model.jit_compile = jit_compile
    model.steps_per_execution = steps_per_execution
    model.train_function = model.test_function = model.predict_function = None
    model.compiled = True
    model.stop_training = False


# ---------------------------------------------------------------------- loops
def _verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2; received {verbose!r}.")
    return int(verbose)


def _data(model, fn, x, y, sample_weight, batch_size, shuffle, steps, class_weight=None,
          st=None, replay=False):
    with_targets = fn.flat and st is not None and st.needs_targets()
    return D.make_data(model, x, y, sample_weight, batch_size, shuffle, steps, class_weight,
                       with_targets, replay)


def _run_batches(fn, data, on_begin, on_end, n, stop=lambda: False, first=None, skip=0):
    """Call `fn` on every batch (`first(batch)` before the first one) but the first `skip`
    (done before an interruption); the callbacks' batch hooks run once per `n` batches (with
    the first and the last index of the group), as with Keras's `steps_per_execution`."""
    logs, step = None, -1
    for step, batch in enumerate(data.batches() if fn.flat else data.user_batches()):
        if step < skip:
            continue
        if first is not None:
            first(batch)
            first = None
        if step % n == 0:
            on_begin(step)
        logs = fn(batch)
        if (step + 1) % n == 0:
            on_end(step, logs)
            if stop():
                return logs, step
    if step >= 0 and (step + 1) % n:
        on_end(step, logs)
    return logs, step


def _epoch_logs(model, logs):
    """The logs of a finished epoch: the model's metric results when the step returned the
    same keys (the default steps do), else the last step's own logs (an overridden step).
    Under a distribution both are the values over every process."""
    DR.sync_metrics(model)
    result = S.pythonify(S.metrics_result(model))
    if logs is None or isinstance(logs, C.LazyLogs) or (
            isinstance(logs, dict) and set(logs) == set(result)):
        return result
    return DR.average_logs(S.pythonify(logs)) if isinstance(logs, dict) else result


def fit(model, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
        sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
        validation_batch_size=None, validation_freq=1):
    """Train `model` (see `Model.fit`); returns a `History`."""
    cap = config.max_epochs()
    if cap and cap < epochs:
        warnings.warn(f"Limiting epochs to {cap} (plexus.config.set_max_epochs).", stacklevel=3)
        epochs = cap
    steps_per_epoch = _capped_steps(steps_per_epoch)
    st = S.compile_state(model)
    check_fit_args(batch_size=batch_size, epochs=epochs, verbose=verbose,
                   validation_split=validation_split, initial_epoch=initial_epoch,
                   steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                   validation_freq=validation_freq, validation_batch_size=validation_batch_size)
    check_inputs("fit", x)
    DR.check_model(model, "fit")
    fn = model.make_train_function()
    several = epochs - initial_epoch > 1  # a one-shot generator must then be replayed
    data = _data(model, fn, x, y, sample_weight, batch_size, shuffle, steps_per_epoch,
                 class_weight, st, replay=several)
    check_data("fit", data, model, st if fn.flat else None)
    val = None
    if validation_data is not None:
        val = _validation(model, validation_data, validation_batch_size or batch_size,
                          validation_steps, replay=several)
        check_data("fit (validation_data)", val, model, st if fn.flat else None)
    elif validation_split:
        if not isinstance(data, D.ArrayData):
            raise ValueError("validation_split needs array data; with a generator or "
                             "DataLoader pass validation_data instead.")
        data, val = data.split(validation_split)
    data = DD.shard(data, "fit", batch_size)
    val = DD.shard(val, "validate", validation_batch_size or batch_size)
    cbs = C.CallbackList(DR.rank_callbacks(callbacks), model=model, add_history=True,
                         add_progbar=_verbose(verbose) != 0 and DR.is_chief(),
                         verbose=_verbose(verbose), epochs=epochs, steps=data.steps)
    stop = (lambda: model.stop_training) if not DR.active() or not cbs.stops_in_batches() \
        else (lambda: DR.any_rank(model.stop_training))
    st.check_finite = cbs.check_finite
    model.stop_training = False
    was_training = model.training
    model.train()
    logs = {}
    prepare = None
    if fn.prepare is not None:  # once per fit, on the first batch (its tensors build a model)
        prepare = lambda b: fn.prepare(b[0] if fn.flat else b)  # noqa: E731
    stack = contextlib.ExitStack()
    try:
        cbs.on_train_begin()
        # a callback may move the start (BackupAndRestore resuming an interrupted run)
        initial_epoch = model.__dict__.pop("_initial_epoch", None) or initial_epoch
        done = model.__dict__.pop("_initial_step", 0)  # batches of that epoch already done
        trained = False
        threads = stack.enter_context(T.scope(model, "train"))  # intra-op threads, restored
        step_fn = threads.wrap(fn)
        if prepare is not None and model.built:
            # as Keras builds its train function: before the first epoch begins (a model
            # that is not built yet builds on its first batch instead)
            fn.prepare(None)
            prepare = None
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            DD.set_epoch(data, epoch)
            cbs.on_epoch_begin(epoch)
            last, step = _run_batches(step_fn, data, cbs.on_train_batch_begin,
                                      cbs.on_train_batch_end, model.steps_per_execution,
                                      stop, prepare, done)
            done = 0
            if step >= 0:
                prepare = None
                trained = True
            logs = _epoch_logs(model, last)
            DR.broadcast_buffers(model)  # (moving statistics: rank 0's, on every process)
            if val is not None and _should_validate(epoch, validation_freq):
                model.train(False)
                cbs.on_test_begin()
                val_logs = _run_evaluation(model, val, cbs)
                cbs.on_test_end(val_logs)
                model.train()
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if DR.any_rank(model.stop_training):  # (every process stops together)
                model.stop_training = True
                break
        opt = getattr(model, "optimizer", None)
        if trained and getattr(opt, "built", False) and hasattr(opt, "finalize_variable_values"):
            opt.finalize_variable_values(opt._vars)  # (use_ema: the weights take the averages)
        stack.close()
        cbs.on_train_end(logs)
    finally:
        stack.close()
        model.train(was_training)
        DR.end_training(model)
    return model.history


def _capped_steps(steps):
    """`steps`, limited by `plexus.config.max_steps_per_epoch()` when that is set."""
    cap = config.max_steps_per_epoch()
    if cap and (not steps or cap < steps):
        warnings.warn(f"Limiting steps_per_epoch to {cap} (plexus.config."
                      "set_max_steps_per_epoch).", stacklevel=4)
        return cap
    return steps


def _should_validate(epoch, validation_freq):
    if isinstance(validation_freq, (list, tuple, set)):
        return epoch + 1 in validation_freq
    return (epoch + 1) % validation_freq == 0


def _validation(model, validation_data, batch_size, steps, replay=False):
    fn = model.make_test_function()
    st = S.compile_state(model)
    if D.is_iterable_source(validation_data):
        return _data(model, fn, validation_data, None, None, batch_size, False, steps, st=st,
                     replay=replay)
    if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
        raise ValueError(
            "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight), "
            "or a generator / DataLoader of such batches."
        )
    x, y, sw = (list(validation_data) + [None])[:3]
    return _data(model, fn, x, y, sw, batch_size, False, steps, st=st)


def _run_evaluation(model, data, cbs):
    fn = model.make_test_function()
    model.reset_metrics()
    if fn.prepare is not None:
        fn.prepare(None)
    noop = lambda *a: None  # noqa: E731
    with T.scope(model, "test") as threads:
        last, _ = _run_batches(threads.wrap(fn), data, cbs.on_test_batch_begin if cbs else noop,
                               cbs.on_test_batch_end if cbs else noop, model.steps_per_execution)
    return _epoch_logs(model, last)


def evaluate(model, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
             steps=None, callbacks=None, return_dict=False):
    """Loss and metrics on the data (see `Model.evaluate`)."""
    st = S.compile_state(model)
    check_evaluate_args(batch_size=batch_size, verbose=verbose, steps=steps)
    check_inputs("evaluate", x)
    DR.check_model(model, "evaluate")
    fn = model.make_test_function()
    data = _data(model, fn, x, y, sample_weight, batch_size, False, _capped_steps(steps),
                 st=st)
    check_data("evaluate", data, model, st if fn.flat else None)
    data = DD.shard(data, "evaluate", batch_size)
    cbs = C.CallbackList(DR.rank_callbacks(callbacks), model=model, add_history=False,
                         add_progbar=_verbose(verbose) != 0 and DR.is_chief(),
                         verbose=_verbose(verbose),
                         epochs=1, steps=data.steps, mode="test")
    was_training = model.training
    model.train(False)
    try:
        cbs.on_test_begin()
        logs = _run_evaluation(model, data, cbs)
        cbs.on_test_end(logs)
    finally:
        model.train(was_training)
    return _batch_result(st, logs, return_dict)


def predict(model, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
    """Predictions as NumPy arrays (see `Model.predict`)."""
    check_predict_args(batch_size=batch_size, verbose=verbose, steps=steps)
    check_inputs("predict", x)
    DR.check_model(model, "predict")
    fn = model.make_predict_function()
    if fn.flat and callbacks is None and steps is None and _verbose(verbose) == 0 \
            and not config.max_steps_per_epoch():
        out = _predict_one_batch(model, fn, x, batch_size)
        if out is not None:
            return out
    data = _data(model, fn, x, None, None, batch_size, False, _capped_steps(steps))
    check_data("predict", data)
    data = DD.shard(data, "predict", batch_size)
    cbs = C.CallbackList(DR.rank_callbacks(callbacks), model=model, add_history=False,
                         add_progbar=_verbose(verbose) != 0 and DR.is_chief(),
                         verbose=_verbose(verbose),
                         epochs=1, steps=data.steps, mode="predict")
    was_training = model.training
    model.train(False)
    chunks = []
    stack = contextlib.ExitStack()
    try:
        step_fn = stack.enter_context(T.scope(model, "predict")).wrap(fn)
        cbs.on_predict_begin()
        if fn.flat:
            batches = (b[0] for b in data.batches())
        else:
            batches = data.user_batches()
        n = model.steps_per_execution
        for step, batch in enumerate(batches):
            if step % n == 0:
                cbs.on_predict_batch_begin(step)
            chunks.append(step_fn((batch,)) if fn.flat else step_fn(batch))
            if (step + 1) % n == 0 or step + 1 == data.steps:
                out = model._pack_outputs(chunks[-1]) if fn.flat else chunks[-1]
                cbs.on_predict_batch_end(step, {"outputs": out})  # as the model returns them
        stack.close()
        cbs.on_predict_end()
    finally:
        stack.close()
        model.train(was_training)
    return _pack_predictions(model, fn, DD.gather_predictions(data, chunks))


def _predict_one_batch(model, fn, x, batch_size):
    """Silent `predict` of arrays that fit in one batch: one forward pass, no batching
    machinery (the latency of `predict` on a single sample). None when it does not apply."""
    if D.is_iterable_source(x) or not model.built:
        return None
    xs = model._standardize_inputs(x, D.model_device(model))
    flat = tree.flatten(xs)
    n = D.num_samples([(f"input {i}", t) for i, t in enumerate(flat)], "inputs") \
        if len(flat) > 1 else (int(flat[0].shape[0]) if flat and flat[0].ndim else 0)
    if not 0 < n <= (batch_size or 32):
        return None
    was_training = model.training
    model.train(False)
    try:
        with T.single(model, n):  # intra-op threads for this call, restored
            out = fn((xs,))
    finally:
        if was_training:  # (else every layer is in inference mode already)
            model.train(True)
    return _pack_predictions(model, fn, [out])


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


def _pack_predictions(model, fn, chunks):
    if not chunks:
        raise ValueError("predict received no data (zero samples).")
    if fn.flat:
        flat_chunks, pack = chunks, model._pack_outputs
    else:  # an overridden predict_step: its own structure
        flat_chunks = [tree.flatten(c) for c in chunks]
        pack = lambda values: tree.pack_like(chunks[0], values)  # noqa: E731
    outs = [_numpy(flat_chunks[0][i] if len(flat_chunks) == 1 else
                   torch.cat([c[i] for c in flat_chunks]))
            for i in range(len(flat_chunks[0]))]
    packed = pack(outs)
    if isinstance(packed, (list, tuple)) and len(packed) == 1:
        return packed[0]
    return list(packed) if isinstance(packed, tuple) else packed


# ---------------------------------------------------------------------- single batches
def _batch_result(st, logs, return_dict):
    if return_dict:
        return logs
    values = [logs[k] for k in st.ordered_names(logs)]
    return values[0] if len(values) == 1 else values


def _single_batch(method, model, fn, x, y, sample_weight, class_weight=None, st=None):
    check_inputs(method, x)
    data = _data(model, fn, x, y, sample_weight, None, False, None, class_weight, st)
    check_data(method, data, model, st if fn.flat else None)
    if isinstance(data, D.ArrayData):
        data.batch_size, data.steps = max(data.n, 1), 1
    return next(iter(data.batches() if fn.flat else data.user_batches()))


def train_on_batch(model, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
    """One training step on exactly this batch; returns its loss (and metrics)."""
    st = S.compile_state(model)
    fn = model.make_train_function()
    batch = _single_batch("train_on_batch", model, fn, x, y, sample_weight, class_weight, st)
    was_training = model.training
    model.train()
    try:
        model.reset_metrics()
        if fn.prepare is not None:
            fn.prepare(batch[0] if fn.flat else batch)
        logs = T.call(model, "train", fn, batch)  # intra-op threads for the step, restored
    finally:
        model.train(was_training)
    return _batch_result(st, _epoch_logs(model, logs), return_dict)


def test_on_batch(model, x, y=None, sample_weight=None, return_dict=False):
    """Loss (and metrics) on exactly this batch, without training."""
    st = S.compile_state(model)
    fn = model.make_test_function()
    batch = _single_batch("test_on_batch", model, fn, x, y, sample_weight, st=st)
    was_training = model.training
    model.train(False)
    try:
        model.reset_metrics()
        if fn.prepare is not None:
            fn.prepare(None)
        logs = T.call(model, "test", fn, batch)
    finally:
        model.train(was_training)
    return _batch_result(st, _epoch_logs(model, logs), return_dict)


def predict_on_batch(model, x):
    """Predictions for exactly this batch, as NumPy arrays."""
    fn = model.make_predict_function()
    batch = _single_batch("predict_on_batch", model, fn, x, None, None)
    was_training = model.training
    model.train(False)
    try:
        out = T.call(model, "predict", fn, (batch[0],) if fn.flat else batch)
    finally:
        model.train(was_training)
    return _pack_predictions(model, fn, [out])

