"""One contender of the benchmark in its own process, driven by `bench/harness.py`.

    python bench/worker.py <contender>
        contender: plexus | plexus-jit | keras-jax | keras-torch | torch

`plexus-jit` runs the same model code as `plexus` with `compile(..., jit_compile=True)`.

Reads one JSON command per line on stdin and answers one JSON line on the protocol stream (the
original stdout; anything the libraries print goes to stderr). Commands: setup, epoch, predict,
memory, build, quit. Keras contenders need KERAS_BACKEND set by the parent before start.
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if len(sys.argv) > 1 and sys.argv[1] == "plexus-before":
    # `run.py --before PATH`: plexus from that checkout (the bench's own modules from here)
    sys.path.insert(0, os.environ["PLEXUS_BENCH_BEFORE"])
from bench.workloads import WORKLOADS  # noqa: E402


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0  # MiB
    return float("nan")


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class KerasLike:
    """plexus, or Keras on the backend this process was started with."""

    def __init__(self, contender):
        self.contender = contender
        if contender.startswith("plexus"):
            import plexus as K
            if contender == "plexus-jit":
                _force_jit(K)
        else:
            import keras as K
        self.K = K
        import torch  # noqa: F401 - plexus and keras-torch run on it; loaded for every side alike
        self.model = None

    def setup(self, wl, x, y):
        self.K.utils.set_random_seed(0)
        t0 = time.perf_counter()
        self.model = wl.build(self.K)
        self.build_s = time.perf_counter() - t0
        self.x, self.y, self.bs = (x[0] if len(x) == 1 else x), (y[0] if len(y) == 1 else y), \
            wl.batch_size
        times = self.times = []

        class Timer(self.K.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                times.append(time.perf_counter())

            def on_epoch_end(self, epoch, logs=None):
                # The epoch is over when its numbers are: JAX dispatches asynchronously.
                for v in (logs or {}).values():
                    float(np.asarray(v))
                times.append(time.perf_counter())

        self.timer = Timer()

    def epoch(self):
        self.times.clear()
        t0 = time.perf_counter()
        self.model.fit(self.x, self.y, batch_size=self.bs, epochs=1, verbose=0,
                       callbacks=[self.timer])
        call = time.perf_counter() - t0
        out = {"epoch_s": self.times[1] - self.times[0], "call_s": call}
        last = getattr(self.model, "__dict__", {}).get("_thread_last", {}).get("train")
        if last is not None:  # plexus's thread choice for training at the end of the epoch
            out["threads"] = last.choice
        return out

    def predictor(self, xb):
        n = len(xb[0] if isinstance(xb, list) else xb)
        return lambda: self.model.predict(xb, batch_size=n, verbose=0)

    def caller(self, xb):
        """`model(x)` on NumPy data: the direct call, without predict's batching."""
        model = self.model
        if self.contender.startswith("plexus") or self.contender == "keras-torch":
            import torch

            def call():
                with torch.no_grad():
                    out = model(xb, training=False)
                return [o.cpu().numpy() for o in out] if isinstance(out, (list, tuple)) \
                    else out.cpu().numpy()
            return call
        return lambda: np.asarray(model(xb, training=False))


def _force_jit(K):
    """The workloads' own `model.compile(...)` calls, with `jit_compile=True` added."""
    compile_ = K.Model.compile

    def compile_jit(self, *args, **kwargs):
        kwargs["jit_compile"] = True
        return compile_(self, *args, **kwargs)
    K.Model.compile = compile_jit


class HandWritten:
    """The same network as a plain torch.nn.Module with a hand-written training loop."""

    def __init__(self, contender):
        import torch
        self.torch = torch

    def setup(self, wl, x, y):
        torch = self.torch
        torch.manual_seed(0)
        t0 = time.perf_counter()
        self.net, self.loss_fn, self.post = wl.torch_twin()
        self.opt = torch.optim.RMSprop(self.net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        self.build_s = time.perf_counter() - t0
        self.x_np, self.y_np, self.bs = x, y, wl.batch_size

    def epoch(self):
        torch = self.torch
        t0 = time.perf_counter()
        xs = [torch.from_numpy(a) for a in self.x_np]
        ys = [torch.from_numpy(a) for a in self.y_np]
        t1 = time.perf_counter()
        net, opt, loss_fn, bs = self.net, self.opt, self.loss_fn, self.bs
        net.train()
        n = xs[0].shape[0]
        perm = torch.randperm(n)
        total = torch.zeros(())
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb = [t[idx] for t in xs]
            yb = [t[idx] for t in ys]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(*xb), yb)
            loss.backward()
            opt.step()
            total += loss.detach()
        float(total)  # the epoch's loss, read once
        t2 = time.perf_counter()
        return {"epoch_s": t2 - t1, "call_s": t2 - t0}

    def predictor(self, xb):
        torch, net, post = self.torch, self.net, self.post
        xb = xb if isinstance(xb, list) else [xb]

        def predict():
            net.eval()
            with torch.no_grad():
                out = post(net(*[torch.from_numpy(a) for a in xb]))
            return [o.numpy() for o in out] if isinstance(out, (list, tuple)) else out.numpy()
        return predict

    caller = predictor


def _timeit(fn, min_reps, budget_s):
    """Median seconds per call: calls repeat for `budget_s` (at least once, at most
    `20 * min_reps` times) after one warm-up call."""
    fn()
    times = []
    start = time.perf_counter()
    while not times or (time.perf_counter() - start < budget_s and len(times) < 20 * min_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def build_application(contender, name):
    if contender == "torch":
        return {"skip": "no hand-written twin"}
    if contender.startswith("plexus"):
        from plexus import applications as A
    else:
        from keras import applications as A
    fn = {"inception_v3": "InceptionV3"}[name]
    t0 = time.perf_counter()
    model = getattr(A, fn)(weights=None)
    return {"build_s": time.perf_counter() - t0, "params": int(model.count_params())}


def main():
    contender = sys.argv[1]
    if os.environ.get("PLEXUS_BENCH_THREAD_LOG"):  # plexus's thread decisions, in the worker log
        import logging
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        logging.getLogger("plexus.threads").setLevel(logging.DEBUG)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library output goes to stderr
    t0 = time.perf_counter()
    runner = HandWritten(contender) if contender == "torch" else KerasLike(contender)
    import_s = time.perf_counter() - t0
    proto.write(json.dumps({"ready": True, "import_s": import_s}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            out = handle(runner, contender, cmd)
        except Exception as e:  # noqa: BLE001 - report to the parent, keep serving
            import traceback
            traceback.print_exc()
            out = {"error": f"{type(e).__name__}: {e}"[:300]}
        proto.write(json.dumps(out) + "\n")
        if cmd["cmd"] == "quit":
            break


def handle(runner, contender, cmd):
    op = cmd["cmd"]
    if op == "setup":
        wl = WORKLOADS[cmd["workload"]]
        rng = np.random.default_rng(cmd.get("seed", 0))
        x, y = wl.data(cmd.get("samples") or wl.samples, rng)
        runner.setup(wl, x, y)
        runner.x_full = x
        return {"build_s": runner.build_s}
    if op == "epoch":  # the best of `repeat` back-to-back epochs (tiny workloads start cold)
        runs = [runner.epoch() for _ in range(cmd.get("repeat", 1))]
        return {k: min(r[k] for r in runs) if k != "threads" else runs[-1][k]
                for k in runs[0]}
    if op == "predict":
        b = cmd["batch"]
        xb = [a[:b] for a in runner.x_full]
        xb = xb[0] if len(xb) == 1 else xb
        out = {"predict_s": _timeit(runner.predictor(xb), cmd.get("reps", 10),
                                    cmd.get("budget_s", 0.2))}
        if cmd.get("direct"):
            out["call_s"] = _timeit(runner.caller(xb), cmd.get("reps", 10),
                                    cmd.get("budget_s", 0.2))
        return out
    if op == "memory":
        import gc
        gc.collect()
        base = _status("VmRSS")
        if not _reset_peak():
            return {"skip": "cannot reset the peak RSS here"}
        t0 = time.perf_counter()
        runner.epoch()
        return {"peak_mib": _status("VmHWM") - base, "first_epoch_s": time.perf_counter() - t0}
    if op == "build":
        return build_application(contender, cmd["what"])
    if op == "quit":
        return {"bye": True}
    raise ValueError(f"unknown command {op!r}")


if __name__ == "__main__":
    main()
