"""plexus.distribution: fit/evaluate/predict on two gloo processes on the CPU, launched as
torchrun launches them, checked against one process with the same global batch."""
import os
import pickle
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import plexus as keras
from plexus import distribution as D

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _distributed_worker as W  # noqa: E402


def launch(script, folder, world=2, timeout=180):
    """Start `world` processes of `script` with torchrun's environment; their return codes and
    outputs."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    procs = []
    for r in range(world):
        env = dict(os.environ, RANK=str(r), WORLD_SIZE=str(world), LOCAL_RANK=str(r),
                   LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1",
                   PLEXUS_DISTRIBUTED_TIMEOUT="60", CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen([sys.executable, script, str(folder)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [p.returncode for p in procs], outs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    x, y = W.data()
    first = W.build(keras)  # a checkpoint written by one process, for the ranks to load
    first.fit(x, y, batch_size=W.BATCH, epochs=1, verbose=0)
    first.save(folder / "single.keras")
    for _ in range(2):  # (a port taken between choosing it and binding it: once more)
        codes, outs = launch(os.path.join(HERE, "_distributed_worker.py"), folder)
        if codes == [0, 0] or "address already in use" not in "".join(outs).lower():
            break
    assert codes == [0, 0], "\n".join(outs)
    ranks = []
    for r in range(2):
        with open(folder / f"rank{r}.pkl", "rb") as f:
            ranks.append(pickle.load(f))
    return folder, ranks


@pytest.fixture(scope="module")
def single():
    """The same training in this one process (no distribution)."""
    assert D.distribution() is None
    x, y = W.data()
    model = W.build(keras)
    hist = model.fit(x, y, batch_size=W.BATCH, epochs=2, shuffle=False, verbose=0)
    scaled = W.build(keras, loss_scale=True)
    with warnings.catch_warnings():  # (float32 here: a loss-scaled optimizer alone)
        warnings.filterwarnings("ignore", "Training with float16")
        scaled.fit(x, y, batch_size=W.BATCH, epochs=1, shuffle=False, verbose=0)
    acc = W.build(keras, accumulate=2)
    acc.fit(x, y, batch_size=W.BATCH, epochs=1, shuffle=False, verbose=0)
    xp, _ = W.data(W.N_PRED, seed=1)
    return {"weights": model.get_weights(), "history": hist.history,
            "evaluate": model.evaluate(x, y, batch_size=W.BATCH, verbose=0, return_dict=True),
            "predict": model.predict(xp, batch_size=W.BATCH, verbose=0),
            "accumulated": acc.get_weights(), "loss_scaled": scaled.get_weights(), "xp": xp}


def _close(a, b, tol=2e-5):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


def test_both_ranks_train_like_one_process(runs, single):
    _, (r0, r1) = runs
    for key in ("weights", "accumulated", "shuffled", "loss_scaled"):
        for u, v in zip(r0[key], r1[key]):
            np.testing.assert_array_equal(u, v)  # identical on every rank
    _close(r0["weights"], single["weights"])  # multi-input, multi-output, synchronized BN
    _close(r0["accumulated"], single["accumulated"])  # gradient_accumulation_steps=2
    _close(r0["loss_scaled"], single["loss_scaled"])  # LossScaleOptimizer: averaged once
    assert r0["reductions_accumulating"] == r1["reductions_accumulating"] == 2  # not on 1, 3
    assert r0["overlapped"] == r1["overlapped"] == 8  # started during backward, every step
    assert r0["buckets"] > 3  # (small buckets in that run: several in flight at once)


def test_datasets_loaders_and_custom_steps(runs, single):
    _, (r0, r1) = runs
    for key in ("pydataset", "torch_dataset", "dataloader", "custom", "listed"):
        for u, v in zip(r0[key], r1[key]):
            np.testing.assert_array_equal(u, v)
    # items 2k and 2k+1 of the PyDataset (8 samples each) make global batch k (16 samples)
    _close(r0["pydataset"], single["weights"], 1e-4)
    _close(r0["torch_dataset"], single["weights"])  # batched with a DistributedSampler
    _close(r0["listed"], single["weights"], 1e-4)  # a list of batches, every other one
    assert r0["sampler_epoch"] == r1["sampler_epoch"] == 2  # set_epoch every epoch
    assert [p.shape for p in r0["pydataset_predict"]] == [(64, 1), (64, 2)]
    _close(r0["pydataset_predict"], r1["pydataset_predict"], 0)
    assert r0["custom_loss"] == r1["custom_loss"]
    own, ref = r0["own_predict"], r0["own_predict_reference"]  # a predict_step of one's own
    assert sorted(own) == ["cls", "twice"] and own["twice"].shape == (W.N_PRED, 1)
    _close([own["twice"], own["cls"]], [2 * ref[0], ref[1]], 1e-6)


def test_callbacks_write_once_and_stop_together(runs):
    folder, (r0, r1) = runs
    assert r0["csv_written"] and not r1["csv_written"]  # CSVLogger on rank 0 only
    assert os.path.exists(folder / "ckpt.weights.h5")
    assert os.path.exists(folder / "backup")  # BackupAndRestore: rank 0 wrote it
    # rank 0 alone set stop_training after its second batch: both stopped there
    assert r0["stopped_epochs"] == r1["stopped_epochs"] == 1
    assert r0["stopped_iterations"] == r1["stopped_iterations"] == 2


def test_history_and_evaluate_are_global(runs, single):
    _, (r0, r1) = runs
    assert r0["history"] == r1["history"] and r0["evaluate"] == r1["evaluate"]
    assert set(r0["history"]) == set(single["history"])
    for k, v in single["history"].items():
        np.testing.assert_allclose(r0["history"][k], v, rtol=1e-5, atol=1e-6)
    assert r0["seen"] == r1["seen"] == [W.N_TRAIN] * 2  # a variable-based metric, summed
    for k, v in single["evaluate"].items():
        np.testing.assert_allclose(r0["evaluate"][k], v, rtol=1e-5, atol=1e-6)


def test_predict_returns_every_sample_in_order(runs, single):
    _, (r0, r1) = runs
    assert [p.shape for p in r0["predict"]] == [(W.N_PRED, 1), (W.N_PRED, 2)]
    _close(r0["predict"], r1["predict"], 0)
    _close(r0["predict"], single["predict"])


def test_checkpoints_load_in_one_process(runs, single):
    folder, (r0, r1) = runs
    assert r0["exists_after_save"] and r1["exists_after_save"]  # rank 1 waited for rank 0
    loaded = keras.saving.load_model(folder / "dp.keras")
    _close(loaded.get_weights(), r0["weights"], 0)
    again = W.build(keras)
    again.load_weights(folder / "dp.weights.h5")
    _close(again.predict(single["xp"], verbose=0), r0["predict"], 1e-5)


def test_a_single_process_checkpoint_loads_on_every_rank(runs):
    folder, (r0, r1) = runs
    first = keras.saving.load_model(folder / "single.keras")
    xp, _ = W.data(W.N_PRED, seed=1)
    _close(r0["from_single"], first.predict(xp, verbose=0), 1e-6)
    _close(r1["from_single"], r0["from_single"], 0)
    _close(r0["from_single_trained"], r1["from_single_trained"], 0)


def test_bad_input_fails_on_every_rank(runs):
    _, ranks = runs
    expect = {"mesh_mismatch": "3 devices", "built_before": "created before",
              "indivisible": "divisible by 2", "disagree": "rank 0: 64, rank 1: 60"}
    for r, out in enumerate(ranks):
        assert out["devices"] == ["cpu:0", "cpu:1"]
        assert len(out["alone_warning"]) == 1 and "trains its own copy" in out["alone_warning"][0]
        for key, words in expect.items():
            kind, message = out[key]
            assert kind == "error" and message.startswith("ValueError") and words in message, \
                (key, message)
            assert f"Rank {r}" in message
    kind, message = ranks[0]["peer_gone"]  # rank 1 left: an error, not a hang
    assert kind == "error" and "Rank 0 of 2" in message and "Another process" in message


def test_shuffling_matches_distributed_sampler():
    from plexus.distribution.data import sampler_indices
    for n, world, shuffle in ((10, 2, True), (11, 3, True), (7, 2, False), (2, 4, True)):
        for rank in range(world):
            sampler = torch.utils.data.distributed.DistributedSampler(
                range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=123)
            for epoch in (0, 1, 2):
                sampler.set_epoch(epoch)
                got = sampler_indices(n, world, rank, shuffle, 123, epoch, pad=True)
                assert got.tolist() == list(sampler)


def test_single_process_api():
    assert D.list_devices("cpu") == ["cpu:0"]
    mesh = D.DeviceMesh((1,), ["batch"])
    layout_map = D.LayoutMap(mesh)
    layout_map["dense.*kernel"] = (None, "batch")
    assert layout_map["dense_3/kernel"].axes == (None, "batch")
    assert layout_map["conv/kernel"] is None
    with pytest.raises(ValueError, match="same length"):
        D.DeviceMesh((1,), ["batch", "model"])
    with pytest.raises(ValueError, match="devices"):
        D.DataParallel(devices=["cpu:0", "cpu:1"])  # one process: a mesh of 2 cannot be
    dist = D.DataParallel()
    with dist.scope():
        assert D.distribution() is dist
        model = W.build(keras)  # one process: fit runs as usual
        x, y = W.data()
        model.fit(x, y, batch_size=W.BATCH, epochs=1, verbose=0)
    assert D.distribution() is None
    with pytest.raises(ValueError, match="DataParallel, a ModelParallel or None"):
        D.set_distribution("data")
    D.initialize()  # no torchrun environment: nothing to join
    assert not torch.distributed.is_initialized() and D.get_device_count("cpu") == 1
    with pytest.raises(ValueError, match="layout_map"):
        D.ModelParallel()
    with pytest.raises(ValueError, match="not axes of the device mesh"):
        layout_map["conv.*"] = (None, "model")


def test_synchronized_batch_normalization_alone_is_ordinary():
    x = np.random.default_rng(3).normal(size=(16, 5)).astype("float32")
    outs = []
    for sync in (False, True):
        layer = keras.layers.BatchNormalization(synchronized=sync)
        outs.append(layer(x, training=True).detach().numpy())
        outs.append(layer.moving_mean.detach().numpy())
        assert layer.get_config()["synchronized"] is sync
    _close(outs[:2], outs[2:], 0)


def test_model_parallel_shards_and_saves_a_whole_model(runs):
    folder, (r0, r1) = runs
    # the "dense..." layers' weights are split in two (dimension 0), the head is whole
    assert r0["mp_local_shapes"] == [(3, 16), (8,), (8, 6), (3,), (6, 1), (1,)]
    assert r0["mp_kinds"] == ["DTensor", "Variable"]
    assert r0["mp_config_classes"] == ["Dense", "InputLayer"]  # not FSDP's own classes
    assert r0["mp_evaluate"] == r1["mp_evaluate"]
    x, y = W.data()
    ref = W.build_mlp(keras)  # one process, same global batch
    ref.fit(x["a"], y["reg"], batch_size=W.BATCH, epochs=2, shuffle=False, verbose=0)
    assert r0["chain_closed_form"]  # DataParallel keeps the closed-form gradients...
    _close(r0["chain"], ref.get_weights())  # ...and averages them
    _close(r1["chain"], r0["chain"], 0)
    loaded = keras.saving.load_model(folder / "mp.keras")  # gathered, an ordinary file
    _close(loaded.get_weights(), ref.get_weights())
    _close(r0["mp_weights"], loaded.get_weights(), 0)
    assert all(r0["mp_set"]) and all(r1["mp_set"])  # set_weights into the shards
    _close(r0["mp_reloaded"], r0["mp_weights"], 0)  # and load_weights
    _close(r1["mp_weights"], loaded.get_weights(), 0)
    _close([v.detach().numpy() for v in loaded.optimizer.variables],
           [v.detach().numpy() for v in ref.optimizer.variables])
    xp, _ = W.data(W.N_PRED, seed=1)
    assert r0["mp_predict"].shape == (69, 1)  # uneven: padded for FSDP, padding dropped
    np.testing.assert_array_equal(r0["mp_predict"], r1["mp_predict"])
    _close(r0["mp_predict"], ref.predict(xp["a"][:69], verbose=0), 1e-5)
    np.testing.assert_allclose(r0["mp_evaluate"], ref.evaluate(x["a"], y["reg"],
                                                               batch_size=W.BATCH, verbose=0),
                               rtol=1e-5)


class _FakeWorld:
    """Rank 0 of `world` processes, with the collectives that need a peer stubbed out."""

    def __init__(self, monkeypatch, world):
        from plexus.distribution import runtime as R
        self.broadcasts = 0

        class Dist:
            auto_shard_dataset = True
            _serial = -1

        def broadcast(model):
            self.broadcasts += 1
        monkeypatch.setattr(R, "_current", Dist())
        monkeypatch.setattr(R, "world_size", lambda: world)
        monkeypatch.setattr(R, "rank", lambda: 0)
        monkeypatch.setattr(R, "agree", lambda *a, **k: None)
        monkeypatch.setattr(R, "gather_objects", lambda what, value: [value] * world)
        monkeypatch.setattr(R, "broadcast_state", broadcast)


def test_the_default_batch_keeps_every_sample_when_rounded_to_the_ranks(monkeypatch):
    """Without batch_size, 32 becomes 30 on 3 ranks, and the steps grow to cover all 64
    samples (they stayed at ceil(64 / 32) = 2, leaving 4 samples out)."""
    from plexus.distribution import data as DD
    from plexus.training import data as Dt
    _FakeWorld(monkeypatch, 3)
    x = torch.arange(64.).reshape(64, 1)
    for mode in ("fit", "evaluate", "predict"):
        local = DD.shard(Dt.ArrayData([x], [x], None, 32), mode, None)
        rows = torch.cat([b[0][0] for b in local.batches()])
        assert local.batch_size == 10 and len(rows) == 22  # 64 / 3 rounded up
        assert set(rows[:, 0].tolist()) == set(range(0, 64, 3))  # rank 0: samples 0, 3, ...
    capped = Dt.ArrayData([x], [x], None, 32, steps=1)  # steps_per_epoch=1 stays one step
    assert DD.shard(capped, "fit", None).steps == 1


def test_weights_are_broadcast_once_per_model_and_distribution(monkeypatch):
    """train_on_batch prepares on every call: the weights go out from rank 0 the first time."""
    from plexus.distribution import runtime as R
    fake = _FakeWorld(monkeypatch, 2)
    model = W.build_mlp(keras)
    try:
        for _ in range(3):
            R.prepare_model(model)
        assert fake.broadcasts == 1
    finally:
        R.end_training(model)
