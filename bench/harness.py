"""Run benchmark contenders side by side, each in its own process, with interleaved rounds.

A `Worker` is one process (`bench/worker.py`) that builds a contender's model once and then
answers commands. `interleaved` asks every worker in turn for one measurement, round after
round, rotating the order, so that a noisy neighbour on the machine slows every contender alike.
"""
import importlib.util
import json
import os
import select
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# contender -> (environment, modules it needs)
CONTENDERS = {
    "plexus": ({}, ["torch"]),
    "plexus-jit": ({}, ["torch"]),
    # plexus with torch's own thread settings (PLEXUS_THREADS=torch): plexus before its policy
    "plexus-torchthreads": ({"PLEXUS_THREADS": "torch"}, ["torch"]),
    # plexus imported from another checkout (`run.py --before PATH`): before and after a
    # change, side by side in one run; the worker puts PLEXUS_BENCH_BEFORE first on its path
    "plexus-before": ({}, ["torch"]),
    "keras-jax": ({"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}, ["keras", "jax"]),
    "keras-torch": ({"KERAS_BACKEND": "torch"}, ["keras", "torch"]),
    "torch": ({}, ["torch"]),
}


def missing_modules(contender):
    """Modules a contender needs that are not installed (an empty list when it can run)."""
    return [m for m in CONTENDERS[contender][1] if importlib.util.find_spec(m) is None]


class Worker:
    """A contender's process; `ask(cmd)` sends one command and returns its JSON answer."""

    def __init__(self, contender, log_dir=None, threads=None):
        self.name = contender
        env = {**os.environ, **CONTENDERS[contender][0], "PYTHONPATH": ROOT}
        if threads:  # the same intra-op thread count for torch, oneDNN/MKL and XLA
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            if threads == 1:
                env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                                    " --xla_cpu_multi_thread_eigen=false"
                                    " intra_op_parallelism_threads=1").strip()
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        log = open(os.path.join(log_dir, f"{contender}.log"), "w") if log_dir else \
            subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "worker.py"), contender], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log, env=env, text=True, cwd=ROOT)
        hello = self._read()
        self.import_s = hello.get("import_s")

    def _read(self, timeout=None):
        if timeout is not None:
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            if not ready:  # still working: stop it, it answers nothing more
                self.proc.kill()
                self.proc.wait()
                return {"error": f"timeout: no answer within {timeout:.0f} s (worker stopped)"}
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name!r} exited (code {self.proc.poll()}); see its "
                               "log for the traceback.")
        return json.loads(line)

    def ask(self, timeout=None, **cmd):
        """Send `cmd`; its answer, or an error answer after `timeout` seconds (the worker is
        then stopped)."""
        if self.proc.poll() is not None:
            return {"error": f"worker exited (code {self.proc.returncode})"}
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def close(self):
        if self.proc.poll() is not None:
            return
        try:
            self.ask(cmd="quit")
        except (RuntimeError, BrokenPipeError, OSError):
            pass
        self.proc.wait(timeout=30)


def interleaved(workers, rounds, timeout=None, **cmd):
    """`rounds` answers to `cmd` from every worker, asked in rotating order.

    Returns `{worker name: [answer, ...]}`; a worker that answers with an error (or not
    within `timeout` seconds) is dropped from later rounds and its error kept.
    """
    out = {w.name: [] for w in workers}
    live = list(workers)
    for r in range(rounds):
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        for w in order:
            ans = w.ask(timeout=timeout, **cmd)
            out[w.name].append(ans)
            if "error" in ans or "skip" in ans:
                live.remove(w)
    return out


def best_and_median(answers, key):
    vals = sorted(a[key] for a in answers if key in a)
    if not vals:
        return None, None
    return vals[0], vals[len(vals) // 2]


def import_overhead(repeats=5):
    """Seconds `import plexus` adds to `import torch`, each measured in a fresh process;
    returns (median torch import, median plexus-after-torch import).

    Bytecode is cached (in a folder of its own) as after `pip install`, and a first run
    warms that cache, so the numbers do not include compiling plexus's sources.
    """
    code = ("import time; t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); "
            "import plexus; t2 = time.perf_counter(); print(t1 - t0, t2 - t1)")
    env = {**os.environ, "PYTHONPATH": ROOT,
           "PYTHONPYCACHEPREFIX": os.path.join(tempfile.gettempdir(), "plexus-bench-pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    torch_s, plexus_s = [], []
    for i in range(repeats + 1):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=ROOT, env=env, check=True)
        if i == 0:
            continue  # the cache-warming run
        a, b = map(float, res.stdout.split())
        torch_s.append(a)
        plexus_s.append(b)
    torch_s.sort()
    plexus_s.sort()
    return torch_s[len(torch_s) // 2], plexus_s[len(plexus_s) // 2]


def machine():
    """A line naming the machine: cores, CPU model, torch version."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch
    return (f"{os.cpu_count()} cores, {cpu}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {sys.version.split()[0]}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def best_times(fns, rounds, sync=None):
    """The best time of each function over `rounds` rounds, called in a fresh random order
    every round so that machine noise hits all alike; `sync` waits for a device."""
    import random
    sync = sync or (lambda: None)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for key in random.sample(list(fns), len(fns)):
            sync()
            start = time.perf_counter()
            fns[key]()
            sync()
            best[key] = min(best[key], time.perf_counter() - start)
    return best


class BusyLoop:
    """A competing CPU-bound process (a Python busy loop) while the `with` block runs: the
    laptop with a browser open, the CI neighbour."""

    def __init__(self, processes=1):
        self.processes, self.procs = processes, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(self.processes)]
        time.sleep(0.2)  # running before the first measurement
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        return False
