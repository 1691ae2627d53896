"""The pieces of `python bench/run.py --load`: its busy loop starts and stops, its worker
timeout stops a worker, its table and target lines come out of (made-up) results. The whole
mode is not run here (minutes of epochs); no timing asserted."""
import sys
import time

from bench import harness as H
from bench import run


def fake_results():
    def side(alone, loaded, threads=None):
        out = {"alone": {"median": alone, "runs": [alone], "threads": threads},
               "loaded": {"median": loaded, "min": loaded, "max": 2 * loaded,
                          "runs": [loaded, 2 * loaded], "threads": threads}}
        return out
    return {"load": {"ticket_lstm": {
        "plexus": side(0.4, 0.8, [2]), "plexus-torchthreads": side(0.39, 20.0),
        "keras-jax": side(0.5, 0.6), "torch": {"alone": {"median": 0.4}, "loaded": {
            "median": None, "runs": [], "error": "timeout: no answer within 120 s"}},
        "keras-torch": {"alone": {"median": None, "error": "timeout: no answer"},
                        "loaded": {"median": None, "error": "worker exited (code -9)"}}}}}


def test_load_table_and_targets():
    results = fake_results()
    table = run.load_table(results, ["plexus", "plexus-torchthreads", "keras-jax", "torch",
                                     "keras-torch"])
    row = table.splitlines()[2]
    assert row.startswith("| ticket_lstm | 0.4000 | 0.8000 (0.8000–1.6000) | 2.00× |")
    assert "| 0.4000 | — (stopped) | — | — (stopped) | — (stopped) | — |" in row
    assert row.endswith("| 1.33× |")
    targets = run.load_targets(results)
    assert "plexus slows 2.00x under load (met: <= 3x)" in targets
    assert "1.33x Keras-JAX under load (NOT met: < 1)" in targets
    assert "alone 1.03x plexus on torch's threads (met: <= 1.05)" in targets


def test_busy_loop_runs_and_stops():
    with H.BusyLoop(1) as busy:
        assert all(p.poll() is None for p in busy.procs)
    assert all(p.poll() is not None for p in busy.procs)


def test_worker_timeout_stops_it(tmp_path):
    class Slow(H.Worker):
        def __init__(self):  # a process that reads a command and never answers
            import subprocess
            self.name = "slow"
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "import sys, time; sys.stdin.readline(); time.sleep(60)"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    w = Slow()
    start = time.perf_counter()
    ans = H.interleaved([w], 2, timeout=0.5, cmd="epoch")
    assert time.perf_counter() - start < 10
    assert len(ans["slow"]) == 1 and "timeout" in ans["slow"][0]["error"]
    assert w.proc.poll() is not None
    w.close()  # a stopped worker closes quietly
