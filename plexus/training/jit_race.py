"""`jit_compile=True` never trains slower than eager: the compiled step races the eager one.

The rule: after `WARMUP` compiled steps (the first compiles; the next may recompile), `fit`
alternates compiled and eager steps for `2 * TRIALS` steps, timing each from its start to the
start of the next (data, update and callbacks included: the same for both), and keeps the path
whose median step is faster, for the rest of this and later fits (until the trainable weights
change, which starts a new race). Both paths compute the same update, so the race changes the
speed of training, not its result. On small models and small CPUs eager often wins: torch's
compiled graphs lose to plexus's eager paths (closed-form gradients of Dense chains, fused
kernels) there.

A compiled step that fails (torch's compiler can fail on some graphs, or on a recompile for a
smaller last batch) makes the eager path the winner, with a warning naming the error; the
step is then computed eagerly, so training goes on with the same numbers.
"""
import statistics
import time
import warnings

import torch

WARMUP = 3
TRIALS = 4


class JitRace:
    """Chooses, step by step, between the compiled gradients function and the eager path."""

    def __init__(self, compiled, device=None, eager=None, name="model"):
        self.compiled = compiled
        self.eager = eager  # (xs, ys, sw) -> (total, values, preds, None): the eager step
        self.name = name
        self.sync = torch.cuda.synchronize if device is not None and \
            torch.device(device).type == "cuda" else None
        self.steps = 0
        self.times = {"compiled": [], "eager": []}
        self.winner = None  # "compiled" or "eager" once decided
        self._running = None  # (path, start time) of the step in progress

    def begin(self):
        """The path for this step: the compiled function, or None for the eager path."""
        if self.winner is not None:
            return self._guarded if self.winner == "compiled" else None
        now = self._now()
        if self._running is not None:
            path, start = self._running
            if self.steps > WARMUP:
                self.times[path].append(now - start)
        self.steps += 1
        if all(len(t) >= TRIALS for t in self.times.values()):
            compiled, eager = (statistics.median(self.times[k]) for k in ("compiled", "eager"))
            self.winner = "compiled" if compiled < eager else "eager"
            self._running = None
            return self.begin()
        racing = self.steps > WARMUP and self.steps % 2 == 0
        path = "eager" if racing else "compiled"
        self._running = (path, now)
        return self._guarded if path == "compiled" else None

    def _guarded(self, xs, ys, sw):
        try:
            return self.compiled(xs, ys, sw)
        except Exception as e:  # noqa: BLE001 (any compiler failure: the eager step decides)
            if self.eager is None:
                raise
            self.winner, self._running = "eager", None
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            warnings.warn(
                f"jit_compile=True: torch.compile failed on model {self.name!r} "
                f"({type(e).__name__}: {first[:300]}); it trains eagerly from here.",
                stacklevel=5)
            return self.eager(xs, ys, sw)

    def pause(self):
        """Between fits: the step in progress is not timed across the gap."""
        self._running = None

    def _now(self):
        if self.sync is not None:
            self.sync()
        return time.perf_counter()
