"""The intra-op thread policy of fit/evaluate/predict (plexus/training/threads.py): which count
for which model, the user's settings left alone, torch's setting restored after every loop.
Decisions only; speed is measured in bench/ (`python bench/run.py --load`)."""
import numpy as np
import pytest
import torch

import plexus as K
from plexus import config
from plexus.training import threads as T


@pytest.fixture
def auto(monkeypatch):
    """An 'auto' policy free to tune on a 2-CPU machine where torch runs 2 threads by default
    (the test run itself sets OMP_NUM_THREADS=1, which 'auto' would otherwise honour)."""
    saved = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(T, "_AT_IMPORT", 2)
    monkeypatch.setattr(T, "torch_default_threads", lambda *a: 2)
    monkeypatch.setattr(T, "available_cpus", lambda *a: 2)
    monkeypatch.setattr(T, "others_running", lambda *a: 0)  # a quiet machine
    monkeypatch.setattr(T.os, "cpu_count", lambda: 2)
    config.set_thread_policy("auto")
    torch.set_num_threads(2)
    yield
    config.set_thread_policy("auto")
    torch.set_num_threads(saved)


class Seen(K.callbacks.Callback):
    """torch's thread count at every batch's end, and optionally a failure or a change."""

    def __init__(self, fail_at=None, set_at=None):
        super().__init__()
        self.counts, self.fail_at, self.set_at = [], fail_at, set_at

    def _see(self, batch):
        self.counts.append(torch.get_num_threads())
        if batch == self.set_at:
            torch.set_num_threads(3)
        if batch == self.fail_at:
            raise RuntimeError("stop here")

    on_train_batch_end = on_test_batch_end = on_predict_batch_end = \
        lambda self, batch, logs=None: self._see(batch)


def small_mlp():
    inp = K.Input((8,))
    out = K.layers.Dense(3)(K.layers.Dense(16, activation="relu")(inp))
    model = K.Model(inp, out)
    model.compile("sgd", "mse")
    return model


def conv_net():
    inp = K.Input((16, 16, 3))
    x = K.layers.Conv2D(64, 3, padding="same")(inp)
    x = K.layers.Conv2D(64, 3, padding="same")(x)
    out = K.layers.Dense(2)(K.layers.GlobalAveragePooling2D()(x))
    model = K.Model(inp, out)
    model.compile("sgd", "mse")
    return model


def data(n=64, shape=(8,), out=3):
    rng = np.random.default_rng(0)
    return rng.random((n,) + shape).astype("float32"), rng.random((n, out)).astype("float32")


# ---------------------------------------------------------------------- the work estimate
def test_largest_op_flops_counts_matrices_positions_and_recurrent_steps():
    inp = K.Input((10, 4))
    seq = K.layers.LSTM(16, return_sequences=True)(inp)  # kernels 4x64 + 16x64 per time step
    out = K.layers.Dense(5)(seq)  # 16x5 at 10 positions: 3200 flops for 2 samples
    model = K.Model(inp, out)
    assert T.largest_op_flops(model, 2) == 2 * 2 * (4 * 64 + 16 * 64)
    assert T.largest_op_flops(K.Model(inp, K.layers.Dense(50)(seq)), 2) == 2 * 2 * 16 * 50 * 10
    emb = K.Sequential([K.Input((7,), dtype="int32"), K.layers.Embedding(1000, 16),
                        K.layers.Conv1D(4, 3)])  # the lookup is not a product
    assert T.largest_op_flops(emb, 1) == 2 * (3 * 16 * 4) * 5
    assert T.largest_op_flops(conv_net(), 1) == 2 * 3 * 3 * 64 * 64 * 16 * 16


def test_estimate_one_thread_for_small_ops_all_for_large(auto):
    with T.scope(small_mlp(), "train") as s:
        assert s.candidates == (2, 1)
        assert s.estimate(32) == 1
    with T.scope(conv_net(), "train") as s:
        assert s.estimate(32) == 2
        assert s.estimate(1) == 2  # 9.4 MFLOP per convolution even for one image


def test_estimate_one_thread_when_the_cpus_are_taken(auto, monkeypatch):
    monkeypatch.setattr(T, "others_running", lambda *a: 1)  # a busy process beside us
    with T.scope(conv_net(), "train") as s:
        assert s.estimate(32) == 1
    monkeypatch.setattr(T, "others_running", lambda *a: None)  # no /proc/stat
    with T.scope(conv_net(), "train") as s:
        assert s.estimate(32) == 2


def test_others_running_reads_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nprocs_running 4\nprocs_blocked 0\n")
    tasks = tmp_path / "task"
    for tid, state in (("10", "R"), ("11", "S"), ("12", "R")):  # ours: the caller, a spinner
        write(tasks / tid / "stat", f"{tid} (python (x) y) {state} 1 2 3\n")
    assert T.others_running(str(stat), str(tasks)) == 2
    assert T.others_running(str(stat), str(tmp_path / "none")) == 3  # at least the caller
    assert T.others_running(str(tmp_path / "none")) is None


# ---------------------------------------------------------------------- the tuner
def feed(tuner, times):
    """Run steps whose time depends on the thread count: `times[count]`."""
    used = []
    for _ in range(40):
        n = tuner.next_threads()
        used.append(n)
        tuner.record(n, times[n])
        if not tuner.plan and tuner.calibrations:
            break
    return used


def test_tuner_keeps_the_faster_count_and_prefers_fewer_on_a_tie():
    fast2 = T.Tuner((2, 1), start=2)
    used = feed(fast2, {2: 0.010, 1: 0.015})
    assert fast2.choice == 2 and fast2.reference == 0.010
    assert used[:T.WARMUP_STEPS] == [2] * T.WARMUP_STEPS  # warm-up on the estimate
    assert sorted(used[T.WARMUP_STEPS:]) == [1] * T.TRIALS + [2] * T.TRIALS
    tie = T.Tuner((2, 1), start=2)
    feed(tie, {2: 0.0100, 1: 0.0101})
    assert tie.choice == 1
    loaded = T.Tuner((2, 1), start=2)  # a second thread that keeps waiting: dropped early
    used = feed(loaded, {2: 0.5, 1: 0.02})
    assert loaded.choice == 1 and used.count(2) == T.WARMUP_STEPS + 2
    spike = T.Tuner((2, 1), start=2)  # one slow step alone does not drop a count
    times = iter([0.5, 0.02, 0.010, 0.015, 0.010, 0.015])
    for _ in range(7):
        n = spike.next_threads()
        spike.record(n, 0.01 if spike.warmup else next(times))
    assert spike.calibrations == 1 and spike.choice == 2


def test_tuner_measures_again_when_steps_jump_and_periodically():
    tuner = T.Tuner((2, 1), start=2)
    feed(tuner, {2: 0.010, 1: 0.015})
    assert tuner.choice == 2 and not tuner.plan
    for _ in range(2):
        tuner.record(2, 0.011)  # noise: no new calibration
    assert not tuner.plan
    for _ in range(3):
        tuner.record(2, 0.1)  # the machine got busy
    assert tuner.plan  # measuring again
    feed(tuner, {2: 0.1, 1: 0.016})
    assert tuner.choice == 1 and tuner.calibrations == 2
    # a quiet machine again: found by the periodic re-check
    steps = int(T.RECHECK_S / 0.016) + 2
    for _ in range(steps):
        tuner.record(1, 0.016)
        if tuner.plan:
            break
    assert tuner.plan
    feed(tuner, {2: 0.010, 1: 0.016})
    assert tuner.choice == 2


def test_tuner_on_one_thread_tries_more_when_steps_drop_not_when_they_jump():
    tuner = T.Tuner((2, 1), start=1)
    feed(tuner, {2: 0.5, 1: 0.1})  # a busy machine
    assert tuner.choice == 1 and not tuner.plan
    for _ in range(5):
        tuner.record(1, 0.3)  # busier still: more threads would only wait longer
    assert not tuner.plan
    for _ in range(5):
        tuner.record(1, 0.03)  # quiet again
    assert tuner.plan
    feed(tuner, {2: 0.02, 1: 0.03})
    assert tuner.choice == 2


def test_tuner_rechecks_less_often_while_the_answer_stays():
    tuner = T.Tuner((2, 1), start=1)
    feed(tuner, {2: 0.02, 1: 0.01})
    assert tuner.recheck_s == T.RECHECK_S
    tuner.trained_s = T.RECHECK_S
    tuner.record(1, 0.01)
    feed(tuner, {2: 0.02, 1: 0.01})
    assert tuner.choice == 1 and tuner.recheck_s == 2 * T.RECHECK_S


def test_a_spike_that_starts_a_race_is_not_counted_in_it():
    """The steps whose jump started a re-measurement are not the chosen count's trials: it is
    timed afresh (a passing spike of the machine's load must not hand the race to one
    thread on a quiet machine)."""
    tuner = T.Tuner((2, 1), start=2, trust=True)
    feed(tuner, {2: 0.010, 1: 0.015})
    for _ in range(3):
        tuner.record(2, 0.018)  # a spike
    assert tuner.plan.count(2) == T.TRIALS
    feed(tuner, {2: 0.011, 1: 0.018})
    assert tuner.choice == 2


def test_a_trusted_start_is_timed_alone_until_the_steps_jump():
    """Large ops on a quiet machine: the start (all threads) is not raced against one thread
    at once; its first steps give the reference, and a jump of the step times (the machine
    got busy) starts the race."""
    tuner = T.Tuner((2, 1), start=2, trust=True)
    used = feed(tuner, {2: 0.010, 1: 0.015})
    assert set(used) == {2} and tuner.choice == 2 and tuner.reference == 0.010
    for _ in range(3):
        tuner.record(2, 0.1)  # busy now
    assert sorted(set(tuner.plan)) == [1, 2]
    feed(tuner, {2: 0.1, 1: 0.02})
    assert tuner.choice == 1


def test_scope_trusts_all_threads_for_large_ops_only(auto):
    with T.scope(conv_net(), "train") as s:
        big = s.tuner(32)
    assert big.choice == 2 and set(big.plan) == {2}  # large convolutions: trusted
    with T.scope(small_mlp(), "train") as s:
        small = s.tuner(32)
    assert small.choice == 1 and set(small.plan) == {1, 2}  # small ops: raced


def test_single_candidate_never_calibrates():
    tuner = T.Tuner((1,), start=1)
    for _ in range(10):
        assert tuner.next_threads() == 1
        tuner.record(1, 0.01)
    assert tuner.calibrations == 0 and not tuner.plan


# ---------------------------------------------------------------------- the loops
def test_fit_runs_small_ops_on_one_thread_and_restores(auto):
    x, y = data()
    seen = Seen()
    model = small_mlp()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[seen])
    assert seen.counts[0] == 1  # the estimate: small ops
    assert set(seen.counts) <= {1, 2} and 2 in seen.counts  # the calibration tried both
    assert torch.get_num_threads() == 2
    tuner = model._thread_tuners[("train", 8, (2, 1))]
    assert tuner.calibrations >= 1
    # evaluate and predict over several batches: their own tuners, restored after
    seen = Seen()
    model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[seen])
    assert seen.counts[0] == 1 and torch.get_num_threads() == 2
    seen = Seen()
    model.predict(x, batch_size=8, verbose=0, callbacks=[seen])
    assert seen.counts[0] == 1 and torch.get_num_threads() == 2
    assert {k[0] for k in model._thread_tuners} == {"train", "test", "predict"}


def test_work_around_the_steps_runs_on_the_last_choice(auto, monkeypatch):
    """Gathering a shuffled chunk and reading the logs run with the count the steps ran with
    last time (on a busy machine a copy on two threads waits as a step does), and the user's
    count is back after the loop."""
    x, y = data()
    model = small_mlp()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    tuner = model._thread_tuners[("train", 8, (2, 1))]
    at_begin = []

    class Begin(K.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            at_begin.append(torch.get_num_threads())

    monkeypatch.setattr(T.Tuner, "record", lambda self, n, sec: None)  # the choice holds
    for choice in (1, 2, 1):
        tuner.choice, tuner.plan = choice, []
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Begin()])
        assert at_begin[-1] == choice
        assert torch.get_num_threads() == 2


def test_validation_during_fit_is_tuned_when_training_runs_one_thread(auto, monkeypatch):
    """The validation loop opens inside fit's scope, which set one thread: that is plexus's
    choice, not the user's, so validation gets its own tuner among the user's two."""
    monkeypatch.setattr(T.Tuner, "record", lambda self, n, sec: None)  # choices hold
    x, y = data()
    model = small_mlp()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model._thread_tuners[("train", 8, (2, 1))].choice = 1
    decisions = []
    real = T.ThreadScope.__enter__

    def enter(self):
        out = real(self)
        decisions.append((self.phase, self.decision))
        return out
    monkeypatch.setattr(T.ThreadScope, "__enter__", enter)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(x, y))
    assert ("test", "tuned among (2, 1)") in decisions
    assert torch.get_num_threads() == 2


def test_fit_with_validation_restores_the_training_count(auto):
    x, y = data(64, (16, 16, 3), 2)
    seen = Seen()
    conv_net().fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[seen],
                   validation_data=(x[:16], y[:16]))
    assert seen.counts[0] == 2  # large convolutions start on both threads
    assert torch.get_num_threads() == 2


def test_jit_compiled_training_keeps_the_estimate(auto):
    model = small_mlp()
    model.jit_compile = True  # what compile(jit_compile=True) sets; the steps are not run here
    with T.scope(model, "train") as s:
        step = s.wrap(lambda batch: None)
        x = torch.zeros(8, 8)
        for _ in range(12):
            step(((x,), (x,), None))
            assert torch.get_num_threads() == 1
        assert s.tuner(8).calibrations == 0 and "jit_compile" in s.decision
    assert torch.get_num_threads() == 2


def test_single_batch_predict_uses_the_estimate(auto, monkeypatch):
    model = small_mlp()
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    model.predict(np.zeros((1, 8), "float32"), verbose=0)
    assert seen == [1, 2]  # one thread for the call, the user's two back
    model.predict(np.zeros((1, 8), "float32"), verbose=0)  # the decision kept: same again
    assert seen == [1, 2, 1, 2] and torch.get_num_threads() == 2
    real(3)  # the user's own choice now: not touched, though the decision was kept
    seen.clear()
    model.predict(np.zeros((1, 8), "float32"), verbose=0)
    assert seen == [] and torch.get_num_threads() == 3


def test_on_batch_calls_are_tuned_and_restored(auto, monkeypatch):
    x, y = data(8)
    model = small_mlp()
    used = []
    real = T.Tuner.record
    monkeypatch.setattr(T.Tuner, "record",
                        lambda self, n, sec: (used.append(n), real(self, n, sec)))
    for _ in range(12):
        model.train_on_batch(x, y)
        assert torch.get_num_threads() == 2
    assert used[0] == 1 and set(used) == {1, 2}  # the estimate, then both timed
    tuner = model._thread_tuners[("train", 8, (2, 1))]
    assert tuner.calibrations == 1
    model.test_on_batch(x, y)
    model.predict_on_batch(x)
    assert torch.get_num_threads() == 2
    assert {k[0] for k in model._thread_tuners} == {"train", "test", "predict"}
    torch.set_num_threads(3)  # the user's choice: calls leave it
    used.clear()
    model.train_on_batch(x, y)
    assert used == [] and torch.get_num_threads() == 3


def test_settings_restored_after_an_exception(auto):
    x, y = data()
    model = small_mlp()
    with pytest.raises(RuntimeError, match="stop here"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Seen(fail_at=1)])
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="stop here"):
        model.predict(x, batch_size=8, verbose=0, callbacks=[Seen(fail_at=1)])
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="stop here"):
        model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[Seen(fail_at=1)])
    assert torch.get_num_threads() == 2


def test_user_settings_are_left_alone(auto, monkeypatch):
    x, y = data()
    torch.set_num_threads(3)  # an explicit call after importing plexus
    seen = Seen()
    small_mlp().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[seen])
    assert set(seen.counts) == {3} and torch.get_num_threads() == 3
    torch.set_num_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    seen = Seen()
    small_mlp().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[seen])
    assert set(seen.counts) == {2}


def test_a_change_during_fit_is_the_users(auto):
    x, y = data()
    seen = Seen(set_at=2)
    small_mlp().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[seen])
    assert seen.counts[:3] == [1, 1, 1] and set(seen.counts[3:]) == {3}
    assert torch.get_num_threads() == 3  # theirs, kept


def test_user_choice_reasons():
    assert T.user_choice({"OMP_NUM_THREADS": "4"}, 2, 2, 2) == "OMP_NUM_THREADS is set"
    assert "after importing" in T.user_choice({}, 3, 2, 2)
    assert "before importing" in T.user_choice({}, 4, 4, 2)
    assert T.user_choice({}, 2, 2, 2) is None
    assert T.user_choice({"OMP_NUM_THREADS": ""}, 2, 2, None) is None
    assert T.user_choice({}, 4, 4, {16, 4}) is None  # taskset -c 0-3 on 16 cores


@pytest.mark.filterwarnings("ignore:This process is one of")  # plexus.distribution's note
def test_policies_torch_fixed_and_torchrun(auto, monkeypatch):
    x, y = data()
    config.set_thread_policy("torch")
    seen = Seen()
    small_mlp().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[seen])
    assert set(seen.counts) == {2}
    config.set_thread_policy(3)
    seen = Seen()
    small_mlp().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[seen])
    assert set(seen.counts) == {3} and torch.get_num_threads() == 2
    config.set_thread_policy("auto")
    monkeypatch.setenv("WORLD_SIZE", "4")
    seen = Seen()
    conv_net().fit(*data(32, (16, 16, 3), 2), batch_size=8, epochs=1, verbose=0,
                   callbacks=[seen])
    assert set(seen.counts) == {1} and torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's word beats one per rank
    with T.scope(small_mlp(), "train") as s:
        assert s.fixed is None and "OMP_NUM_THREADS" in s.decision


def test_one_cpu_available_means_one_thread(auto, monkeypatch):
    monkeypatch.setattr(T, "available_cpus", lambda *a: 1)
    with T.scope(conv_net(), "train") as s:
        assert s.fixed == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_thread_policy_setting_checks_its_value():
    with pytest.raises(ValueError, match="'auto', 'torch' or a positive"):
        config.set_thread_policy("fast")
    with pytest.raises(ValueError, match="positive"):
        config.set_thread_policy(0)
    assert config._check_thread_policy(" 4 ") == 4
    assert config._check_thread_policy("TORCH") == "torch"
    assert config.thread_policy() == "auto"


# ---------------------------------------------------------------------- CPUs we may use
def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_tightest_ancestor_and_container_root(tmp_path):
    root = tmp_path / "cg"
    write(tmp_path / "self", "0::/a/b\n")
    write(root / "a" / "b" / "cpu.max", "max 100000\n")
    write(root / "a" / "cpu.max", "150000 100000\n")
    write(root / "cpu.max", "400000 100000\n")
    assert T.cgroup_cpu_limit(str(tmp_path / "self"), str(root)) == 1.5
    write(tmp_path / "hidden", "0::/not/visible/here\n")  # inside a container
    assert T.cgroup_cpu_limit(str(tmp_path / "hidden"), str(root)) == 4.0
    write(root / "cpu.max", "max 100000\n")
    assert T.cgroup_cpu_limit(str(tmp_path / "hidden"), str(root)) is None


def test_cgroup_v1_quota(tmp_path):
    root = tmp_path / "cg"
    write(tmp_path / "self", "4:memory:/x\n3:cpu,cpuacct:/job\n0::/\n")
    write(root / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us", "250000\n")
    write(root / "cpu,cpuacct" / "job" / "cpu.cfs_period_us", "100000\n")
    assert T.cgroup_cpu_limit(str(tmp_path / "self"), str(root)) == 2.5
    write(root / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us", "-1\n")
    assert T.cgroup_cpu_limit(str(tmp_path / "self"), str(root)) is None
    assert T.cgroup_cpu_limit(str(tmp_path / "missing"), str(root)) is None


def test_available_cpus_takes_affinity_and_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "affinity_cpus", lambda: 8)
    write(tmp_path / "self", "0::/\n")
    write(tmp_path / "cg" / "cpu.max", "250000 100000\n")
    assert T.available_cpus(str(tmp_path / "self"), str(tmp_path / "cg")) == 2
    write(tmp_path / "cg" / "cpu.max", "50000 100000\n")
    assert T.available_cpus(str(tmp_path / "self"), str(tmp_path / "cg")) == 1
    write(tmp_path / "cg" / "cpu.max", "max 100000\n")
    assert T.available_cpus(str(tmp_path / "self"), str(tmp_path / "cg")) == 8
    monkeypatch.setattr(T, "affinity_cpus", lambda: 3)
    assert T.available_cpus(str(tmp_path / "self"), str(tmp_path / "cg")) == 3


def test_torch_default_threads_counts_physical_cores(tmp_path):
    for cpu, (pkg, core) in enumerate([(0, 0), (0, 0), (0, 1), (0, 1), (1, 0)]):
        write(tmp_path / f"cpu{cpu}" / "topology" / "core_id", f"{core}\n")
        write(tmp_path / f"cpu{cpu}" / "topology" / "physical_package_id", f"{pkg}\n")
    (tmp_path / "cpufreq").mkdir()
    assert T.torch_default_threads(str(tmp_path)) == 3
    assert T.torch_default_threads(str(tmp_path / "none")) is None


def test_faster_steps_on_every_thread_only_move_the_reference():
    """Already on every thread, steps that get faster (the first ones were slow: allocation,
    caches) cannot make fewer threads better: the reference follows, no race."""
    tuner = T.Tuner((2, 1), start=2, trust=True)
    feed(tuner, {2: 0.64, 1: 1.2})
    assert tuner.reference == 0.64
    for _ in range(3):
        tuner.record(2, 0.39)
    assert not tuner.plan and tuner.reference == 0.39 and tuner.calibrations == 1
    one = T.Tuner((2, 1), start=1)  # on one thread, faster steps do start a race
    feed(one, {2: 0.5, 1: 0.1})
    for _ in range(3):
        one.record(1, 0.03)
    assert one.plan


def test_a_count_twice_half_again_slower_than_a_rival_is_dropped():
    tuner = T.Tuner((2, T.HALVES, 1), start=2)  # under load: torch's two threads collapse
    used = feed(tuner, {2: 0.955, T.HALVES: 0.560, 1: 0.727})
    assert tuner.choice == T.HALVES
    assert used.count(2) == T.WARMUP_STEPS + 2 and used.count(1) == T.TRIALS
