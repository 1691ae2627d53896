"""One process of the distributed tests (tests/test_distribution.py launches two, as torchrun
would: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in the environment).

Each scenario records what it saw in `<out>/rank<r>.pkl`; errors are recorded, not raised, so
that the test can check that every rank reported them.
"""
import os
import pickle
import sys
import traceback

import numpy as np

N_TRAIN, N_PRED, BATCH = 64, 70, 16


def data(n=N_TRAIN, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 6)).astype("float32")
    b = rng.normal(size=(n, 3)).astype("float32")
    y1 = (a[:, :2] @ np.array([[1.0], [-2.0]], "float32") + b[:, :1]).astype("float32")
    y2 = (a[:, 0] + b[:, 1] > 0).astype("int64")
    return {"a": a, "b": b}, {"reg": y1, "cls": y2}


def build(keras, accumulate=None, synchronized=True, loss_scale=False):
    """A two-input, two-output model with (synchronized) BatchNormalization, its weights set
    from a fixed NumPy generator."""
    L = keras.layers
    a, b = keras.Input((6,), name="a"), keras.Input((3,), name="b")
    h = L.Concatenate()([L.Dense(8, activation="relu")(a), L.Dense(4)(b)])
    h = L.BatchNormalization(synchronized=synchronized)(h)
    h = L.Dense(8, activation="tanh")(h)
    model = keras.Model([a, b], [L.Dense(1, name="reg")(h),
                                 L.Dense(2, activation="softmax", name="cls")(h)])
    rng = np.random.default_rng(42)
    model.set_weights([rng.normal(scale=0.4, size=w.shape).astype("float32") if w.ndim > 1
                       else rng.uniform(0.5, 1.5, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    opt = keras.optimizers.SGD(0.05, momentum=0.9, gradient_accumulation_steps=accumulate)
    if loss_scale:  # (what mixed_float16 training wraps the optimizer in)
        opt = keras.optimizers.LossScaleOptimizer(opt)
    model.compile(optimizer=opt, loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
                  metrics={"reg": ["mae"], "cls": ["accuracy"]})
    return model


def build_mlp(keras):
    """Dense layers for ModelParallel, weights from a fixed NumPy generator."""
    L = keras.layers
    a = keras.Input((6,), name="a")
    h = L.Dense(16, activation="relu", name="dense_in")(a)
    h = L.Dense(6, activation="tanh", name="dense_mid")(h)
    model = keras.Model(a, L.Dense(1, name="head")(h))
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(scale=0.4, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def batches(keras, x, y, size):
    """A PyDataset of `size`-sample batches of the two-input, two-output data."""
    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return len(y["reg"]) // size

        def __getitem__(self, i):
            s = slice(i * size, (i + 1) * size)
            return {k: v[s] for k, v in x.items()}, {k: v[s] for k, v in y.items()}
    return Batches()


def attempt(out, key, fn):
    try:
        out[key] = ("ok", fn())
    except Exception as e:  # noqa: BLE001  (recorded for the test to check)
        out[key] = ("error", f"{type(e).__name__}: {e}")


def main(folder):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
    import plexus as keras
    from plexus import distribution as D

    rank = int(os.environ["RANK"])
    out = {}
    x, y = data()

    # A model made before set_distribution (and trained alone: a warning says so).
    early = build(keras)
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        early.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    out["alone_warning"] = [str(w.message) for w in caught if "no distribution" in
                            str(w.message)]
    attempt(out, "mesh_mismatch", lambda: D.DataParallel(devices=["cpu:0", "cpu:1", "cpu:2"]))
    data_parallel = D.DataParallel()
    D.set_distribution(data_parallel)
    out["devices"] = D.list_devices()
    attempt(out, "built_before", lambda: early.fit(x, y, batch_size=BATCH, verbose=0))

    # fit, evaluate, predict: to compare with one process.
    from plexus.distribution import runtime
    model = build(keras)
    overlapped = runtime.overlapped_reductions
    sizes = runtime.Overlap.FIRST_BUCKET_BYTES, runtime.Overlap.BUCKET_BYTES
    runtime.Overlap.FIRST_BUCKET_BYTES = runtime.Overlap.BUCKET_BYTES = 200  # many buckets
    hist = model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    runtime.Overlap.FIRST_BUCKET_BYTES, runtime.Overlap.BUCKET_BYTES = sizes
    out["buckets"] = len(model._gradient_overlap.buckets)
    out["overlapped"] = runtime.overlapped_reductions - overlapped  # during backward: 8
    out["weights"] = model.get_weights()
    out["history"] = hist.history
    out["evaluate"] = model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    xp, _ = data(N_PRED, seed=1)
    out["predict"] = model.predict(xp, batch_size=BATCH, verbose=0)

    acc = build(keras, accumulate=2)
    before = runtime.gradient_reductions
    acc.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    out["reductions_accumulating"] = runtime.gradient_reductions - before  # 4 steps, 2 updates
    out["accumulated"] = acc.get_weights()

    scaled = build(keras, loss_scale=True)
    scaled.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    out["loss_scaled"] = scaled.get_weights()

    shuffled = build(keras, synchronized=False)
    shuffled.fit(x, y, batch_size=BATCH, epochs=2, shuffle=True, verbose=0)
    out["shuffled"] = shuffled.get_weights()

    # Checkpoints: rank 0 writes, every rank can read.
    path = os.path.join(folder, "dp.keras")
    model.save(path)
    model.save_weights(os.path.join(folder, "dp.weights.h5"))
    out["exists_after_save"] = os.path.exists(path)

    # Other sources: a PyDataset (each rank reads every other item), a torch dataset (fit
    # batches it with a DistributedSampler), a DataLoader with its own DistributedSampler.
    import torch.utils.data as tud
    ds_model = build(keras)
    ds_model.fit(batches(keras, x, y, BATCH // 2), epochs=2, shuffle=False, verbose=0)
    out["pydataset"] = ds_model.get_weights()
    out["pydataset_predict"] = ds_model.predict(batches(keras, xp, {"reg": xp["a"][:, :1],
                                                                    "cls": xp["b"][:, 0]},
                                                        BATCH // 2), verbose=0)
    order = ["a", "b"]
    tensors = tud.TensorDataset(*[torch.from_numpy(x[k]) for k in order],
                                torch.from_numpy(y["reg"]), torch.from_numpy(y["cls"]))

    class Pairs(tud.Dataset):
        def __len__(self):
            return len(tensors)

        def __getitem__(self, i):
            a, b, r, c = tensors[i]
            return (a, b), (r, c)
    td_model = build(keras)
    td_model.fit(Pairs(), batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    out["torch_dataset"] = td_model.get_weights()
    sampler = tud.distributed.DistributedSampler(Pairs(), shuffle=True, seed=3)
    dl_model = build(keras)
    dl_model.fit(tud.DataLoader(Pairs(), batch_size=BATCH // 2, sampler=sampler), epochs=3,
                 verbose=0)
    out["sampler_epoch"] = sampler.epoch
    out["dataloader"] = dl_model.get_weights()
    class Reiterable:  # batches (x, y), read afresh each epoch: rank r trains on r, r + 2, ...
        def __len__(self):
            return N_TRAIN // (BATCH // 2)

        def __iter__(self):
            for i in range(0, N_TRAIN, BATCH // 2):
                yield ({k: v[i:i + BATCH // 2] for k, v in x.items()},
                       {k: v[i:i + BATCH // 2] for k, v in y.items()})
    listed = build(keras)
    listed.fit(Reiterable(), epochs=2, verbose=0)
    out["listed"] = listed.get_weights()

    # Callbacks: files written by rank 0; a stop asked on rank 0 alone stops both ranks.
    class StopOnRank0(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if rank == 0 and batch == 1:
                self.model.stop_training = True
    cb_model = build(keras)
    log = os.path.join(folder, f"log_rank{rank}.csv")
    hist = cb_model.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0,
                        callbacks=[StopOnRank0(), keras.callbacks.CSVLogger(log),
                                   keras.callbacks.ModelCheckpoint(
                                       os.path.join(folder, "ckpt.weights.h5"),
                                       save_weights_only=True),
                                   keras.callbacks.BackupAndRestore(
                                       os.path.join(folder, "backup"),
                                       delete_checkpoint=False)])
    out["stopped_epochs"] = len(hist.history["loss"])
    out["stopped_iterations"] = int(cb_model.optimizer.iterations)
    out["csv_written"] = os.path.exists(log)

    # A train_step of one's own: its optimizer.apply is averaged too.
    class Custom(keras.Model):
        def train_step(self, data):
            inputs, targets = data
            out_ = self(inputs, training=True)
            loss = self.compute_loss(inputs, targets, out_)
            grads = torch.autograd.grad(loss, list(self.trainable_weights))
            self.optimizer.apply(grads, self.trainable_weights)
            return {"loss": loss.detach()}
    base = build(keras)
    custom = Custom(base.inputs, base.outputs)
    custom.set_weights(base.get_weights())
    custom.compile(optimizer=keras.optimizers.SGD(0.05), loss=["mse",
                                                               "sparse_categorical_crossentropy"])
    custom_hist = custom.fit([x["a"], x["b"]], [y["reg"], y["cls"]], batch_size=BATCH,
                             epochs=1, shuffle=False, verbose=0)
    out["custom"] = custom.get_weights()

    class OwnPredict(keras.Model):
        def predict_step(self, data):
            reg, cls = self(data, training=False)
            return {"twice": 2 * reg, "cls": cls}
    own = OwnPredict(base.inputs, base.outputs)
    out["own_predict"] = own.predict(xp, batch_size=BATCH, verbose=0)
    out["own_predict_reference"] = base.predict(xp, batch_size=BATCH, verbose=0)
    out["custom_loss"] = custom_hist.history["loss"]

    # A metric of one's own, its state in add_variable variables: summed over the ranks.
    class Seen(keras.metrics.Metric):
        def __init__(self, name="seen", **kwargs):
            super().__init__(name=name, **kwargs)
            self.count = self.add_variable((), "zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.count.assign_add(float(y_true.shape[0]))

        def result(self):
            return self.count.value * 1.0
    counted = build_mlp(keras)
    counted.compile(optimizer="sgd", loss="mse", metrics=[Seen()])
    out["seen"] = counted.fit(x["a"], y["reg"], batch_size=BATCH, epochs=2,
                              verbose=0).history["seen"]

    # A chain of Dense layers: its gradients come in closed form (no autograd), averaged too.
    chain = build_mlp(keras)
    chain.fit(x["a"], y["reg"], batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    out["chain"] = chain.get_weights()
    out["chain_closed_form"] = chain._compile_state.cache.get("backprop") is not None

    # ModelParallel: the Dense layers named "dense..." sharded by FSDP.
    mesh = D.DeviceMesh((1, 2), ["batch", "model"])
    layout_map = D.LayoutMap(mesh)
    layout_map["dense.*/kernel"] = (None, "model")
    D.set_distribution(D.ModelParallel(layout_map=layout_map, batch_dim_name="batch"))
    mp = build_mlp(keras)
    mp.fit(x["a"], y["reg"], batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    out["mp_local_shapes"] = [tuple(getattr(w, "_local_tensor", w).shape)
                              for w in mp.trainable_weights]
    out["mp_kinds"] = sorted({type(w).__name__ for w in mp.trainable_weights})
    out["mp_weights"] = mp.get_weights()  # gathered (every rank asks together)
    mp.save(os.path.join(folder, "mp.keras"))
    out["mp_evaluate"] = mp.evaluate(x["a"], y["reg"], batch_size=BATCH, verbose=0)
    out["mp_predict"] = mp.predict(xp["a"][:69], batch_size=BATCH, verbose=0)  # uneven
    out["mp_config_classes"] = sorted({layer["class_name"] for layer in
                                       mp.get_config()["layers"]})
    fresh = build_mlp(keras)
    mp.set_weights(fresh.get_weights())  # into the shards
    out["mp_set"] = [np.array_equal(a, b) for a, b in zip(mp.get_weights(),
                                                          fresh.get_weights())]
    mp.load_weights(os.path.join(folder, "mp.keras"))
    out["mp_reloaded"] = mp.get_weights()
    D.set_distribution(data_parallel)

    # A checkpoint a single process wrote: loaded on every rank, trained further.
    first = keras.saving.load_model(os.path.join(folder, "single.keras"))
    out["from_single"] = first.predict(xp, batch_size=BATCH, verbose=0)
    first.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    out["from_single_trained"] = first.get_weights()

    # Bad input.
    attempt(out, "indivisible", lambda: model.fit(x, y, batch_size=15, verbose=0))
    xs, ys = data(N_TRAIN - 4 * rank)
    attempt(out, "disagree", lambda: model.fit(xs, ys, batch_size=BATCH, verbose=0))

    # A process that stops: the other gets an error naming its rank, not a hang.
    if rank == 1:
        with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump(out, f)
        os._exit(0)
    attempt(out, "peer_gone", lambda: model.fit(x, y, batch_size=BATCH, verbose=0, epochs=3))
    with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as f:
        pickle.dump(out, f)
    # With its peer gone, the process group's gloo threads may abort the interpreter's
    # teardown now and then ("terminate called without an active exception", exit -6): the
    # results are written, so leave without it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception:
        traceback.print_exc()
        sys.exit(1)
