"""The benchmark's workloads still build and train (one small epoch each), so bench/ cannot rot.

No timing here: speed is measured by `python bench/run.py`, never asserted in tests.
"""
import numpy as np
import pytest

from bench.harness import best_and_median, interleaved
from bench.worker import HandWritten, KerasLike
from bench.workloads import WORKLOADS


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_trains_in_plexus_and_torch(name):
    wl_small = type(name, (WORKLOADS[name],), {"batch_size": 2, "vocabulary": 500})
    x, y = wl_small.data(4, np.random.default_rng(0))
    p, t = KerasLike("plexus"), HandWritten("torch")
    p.setup(wl_small, x, y)
    t.setup(wl_small, x, y)
    for runner in (p, t):
        out = runner.epoch()
        assert out["epoch_s"] > 0 and out["call_s"] >= out["epoch_s"]
    # Both sides compute outputs of the same shapes from the same inputs.
    xb = [a[:3] for a in x]
    ours = p.predictor(xb[0] if len(xb) == 1 else xb)()
    theirs = t.predictor(xb)()
    ours = ours if isinstance(ours, list) else [ours]
    theirs = theirs if isinstance(theirs, list) else [theirs]
    assert [o.shape for o in ours] == [o.shape for o in theirs]
    assert all(np.isfinite(o).all() for o in ours)


class _FakeWorker:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def ask(self, **cmd):
        self.log.append(self.name)
        return {"epoch_s": len(self.log)}


def test_interleaved_rounds_rotate_and_summarize():
    log = []
    workers = [_FakeWorker(n, log) for n in "abc"]
    out = interleaved(workers, 3, cmd="epoch")
    assert log == list("abc" "bca" "cab")
    assert best_and_median(out["a"], "epoch_s") == (1, 6)


def test_import_plexus_does_not_load_the_compiler():
    """`import plexus` stays light: torch._dynamo (about 1.5 s to import) loads only when
    something compiles."""
    import subprocess
    import sys
    code = "import sys, plexus; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_data_pipeline_bench_runs(capsys):
    """The data-pipeline case (directory loader + augmentation layers against a hand-written
    Dataset/DataLoader) runs end to end on a few images."""
    from bench import data_pipeline
    out = data_pipeline.main(["--images", "8", "--rounds", "1", "--workers", "0"])
    assert set(out) == {"plexus_s", "torch_s", "aug_plexus_s", "aug_torch_s"}
    assert "plexus / PyTorch" in capsys.readouterr().out


def test_policy_ab_alternates_both_policies_and_restores(capsys):
    import json

    import plexus
    from bench.policy_ab import one_workload

    before = plexus.config.thread_policy()
    one_workload("mlp", rounds=2, limit=60.0)
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["workload"] == "mlp"
    assert len(res["times"]["auto"]) == len(res["times"]["torch"]) == 2  # warm-up left out
    assert all(t > 0 for v in res["times"].values() for t in v)
    from plexus.training import threads
    tunes = threads.user_choice() is None and threads.available_cpus() > 1
    # the count the policy trained with, after each timed epoch (none when it leaves torch be)
    assert len(res["threads"]) == (2 if tunes else 0)
    assert all(n == "halves" or n >= 1 for n in res["threads"])
    assert plexus.config.thread_policy() == before
