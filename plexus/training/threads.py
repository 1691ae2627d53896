"""How many intra-op threads torch gets inside plexus's loops (`fit`, `evaluate`, `predict`).

torch runs its intra-op parallel regions on an OpenMP team whose threads wait for each other
at the end of every region. When another process wants a core, one of those threads is
descheduled and the others wait for it (spinning, then sleeping) once per region: a model made
of many small operations (recurrent layers, small dense layers) then runs 3x to 100x slower
than with one thread. Large operations (convolutions on images) still gain from a second
thread. No thread count is right for every model on every machine, so the loops measure.

The policy (`plexus.config.set_thread_policy`, or the `PLEXUS_THREADS` environment variable
read at import):

- `"auto"` (the default). Inside a loop, torch gets at most the CPUs the process may use (its
  CPU affinity and the container's cgroup quota, which torch's default ignores) and never more
  than torch's own setting. The first batch size of each model and phase ("train", "test",
  "predict") starts from an estimate of the work per operation (`largest_op_flops`): below
  about a megaflop per operation a second thread only pays the barrier, so one thread; one
  thread also when the machine's CPUs are all taken at that moment (/proc/stat). Then
  `fit` (and `evaluate`/`predict` over several batches) times its steps: after a warm-up it
  alternates between the candidate counts (all allowed CPUs, and one; for training a model
  that `halves.py` applies to, also `HALVES`: two threads, each computing half of the batch
  on one intra-op thread, which keeps using the second core's share on a busy machine where
  torch's team of threads collapses), keeps the fastest (preferring fewer threads within 2%,
  and torch's threads to the halves) — except that a start on all CPUs (large ops, a quiet
  machine) is trusted: its first timed steps only set the reference, and the race against one
  thread waits for the first re-check — and re-checks when the median of the recent steps
  jumps by half again over the time measured for the choice (unless that is one thread
  already) or drops to two thirds of it, and every 30 s of steps (then 60 s, 120 s, ... while
  the answer stays the same), so that a machine that becomes busy or quiet is noticed. A
  count whose two steps both take over 1.5x a rival's best is dropped. It leaves torch alone when the user has chosen: `OMP_NUM_THREADS` or `MKL_NUM_THREADS` set,
  or torch's thread count is not what it was when plexus was imported (a
  `torch.set_num_threads` call since) or not torch's default (a call before). Under `torchrun`
  and other launchers that set `WORLD_SIZE` above 1, each rank runs one thread. Models on an
  accelerator are left alone. A model compiled with `jit_compile=True` trains with the
  estimate, untimed: torch's compiler fixes each kernel's thread count when it compiles.
- `"torch"`: plexus never touches torch's thread settings.
- a positive integer: the loops run with exactly that many threads.

`train_on_batch`, `test_on_batch` and `predict_on_batch` run each call the same way (`call`),
timed by the same tuners, so a hand-written loop of them is tuned as `fit` is.

Each decision is logged at DEBUG level on the `plexus.threads` logger. Every change is scoped
to the loop: torch's thread count is restored when the loop ends, normally or by an
exception. A callback that calls `torch.set_num_threads` during a loop takes
over: plexus stops tuning and leaves that setting in place.
"""
import logging
import math
import os
import threading
import time

import torch

from plexus import config
from plexus.training import halves
from plexus.training.data import model_device

_log = logging.getLogger("plexus.threads")

# torch's thread count when plexus was imported: a different count at a loop's start means the
# user called torch.set_num_threads since.
_AT_IMPORT = torch.get_num_threads()

WARMUP_STEPS = 1  # steps of a new (model, phase, batch size) not timed: allocation, caches
TRIALS = 3  # timed steps per candidate count in a calibration
PREFER_FEWER = 1.02  # fewer threads win unless more are faster by more than this factor
JUMP = 1.5  # recent median over this times the reference: measure again
DROP = 1.5  # a candidate whose two steps both take over this times a rival's best: dropped
RECHECK_S = 30.0  # seconds of steps between periodic re-checks (doubling while unchanged)
RECHECK_MAX_S = 480.0
SMALL_OP_FLOPS = 1e6  # below: the estimate starts with one thread


# ---------------------------------------------------------------------- the CPUs we may use
def affinity_cpus():
    """The number of CPUs this process may run on (its affinity mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cgroup_cpu_limit(proc_cgroup="/proc/self/cgroup", root="/sys/fs/cgroup"):
    """The CPUs the cgroup's quota allows (a float, e.g. 1.5), or None without a quota.

    cgroup v2: `cpu.max` ("max 100000" or "150000 100000") of the process's group and its
    ancestors (the tightest wins); cgroup v1: `cpu.cfs_quota_us / cpu.cfs_period_us` of the
    `cpu` controller's group. In a container the group's path is often not visible below
    `root`; then the files at the root (the container's own group) are read.
    """
    text = _read(proc_cgroup)
    if text is None:
        return None
    limits = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        path = path.lstrip("/")
        if controllers == "":  # v2 unified hierarchy
            dirs = _ancestors(os.path.join(root, path), root) if path else [root]
            if not any(os.path.isdir(d) for d in dirs[:1]):
                dirs = [root]
            for d in dirs:
                value = _read(os.path.join(d, "cpu.max"))
                if value:
                    quota, _, period = value.partition(" ")
                    if quota != "max":
                        try:
                            limits.append(int(quota) / int(period or 100000))
                        except (ValueError, ZeroDivisionError):
                            pass
        elif "cpu" in controllers.split(","):
            for mount in (controllers, "cpu", "cpu,cpuacct", "cpuacct,cpu"):
                base = os.path.join(root, mount)
                for d in (os.path.join(base, path), base) if path else (base,):
                    quota = _read(os.path.join(d, "cpu.cfs_quota_us"))
                    period = _read(os.path.join(d, "cpu.cfs_period_us"))
                    if quota is None or period is None:
                        continue
                    try:
                        q, p = int(quota), int(period)
                    except ValueError:
                        continue
                    if q > 0 and p > 0:
                        limits.append(q / p)
                    break
                else:
                    continue
                break
    return min(limits) if limits else None


def _ancestors(path, root):
    """`path` and its parent folders up to and including `root`."""
    out, root = [], os.path.normpath(root)
    path = os.path.normpath(path)
    while True:
        out.append(path)
        if path == root or len(path) <= len(root):
            break
        path = os.path.dirname(path)
    return out


_cache = {}  # probe results of the machine, each with the time it was taken
CACHE_S = 10.0  # seconds a probe of the machine is trusted (a loop costs microseconds)


def _cached(key, probe):
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is None or now - hit[0] > CACHE_S:
        hit = _cache[key] = (now, probe())
    return hit[1]


def available_cpus(proc_cgroup="/proc/self/cgroup", root="/sys/fs/cgroup"):
    """CPUs the process may use: its affinity, limited by a cgroup quota (rounded down, at
    least 1)."""
    if (proc_cgroup, root) == ("/proc/self/cgroup", "/sys/fs/cgroup"):
        return _cached("cpus", lambda: _available_cpus(proc_cgroup, root))
    return _available_cpus(proc_cgroup, root)


def _available_cpus(proc_cgroup, root):
    n = affinity_cpus()
    quota = cgroup_cpu_limit(proc_cgroup, root)
    if quota is not None:
        n = min(n, max(1, math.floor(quota + 1e-9)))
    return max(1, n)


def others_running(stat="/proc/stat", tasks="/proc/self/task"):
    """How many threads of other processes are running or waiting for a CPU right now
    (`procs_running` of /proc/stat, less this process's running threads: the caller and any
    OpenMP thread still spinning), or None where that cannot be read."""
    running = None
    for line in (_read(stat) or "").splitlines():
        if line.startswith("procs_running "):
            try:
                running = int(line.split()[1])
            except ValueError:
                return None
    if running is None:
        return None
    own = 0
    try:
        for task in os.listdir(tasks):
            text = _read(os.path.join(tasks, task, "stat")) or ""
            if text[text.rfind(")") + 2:text.rfind(")") + 3] == "R":
                own += 1
    except OSError:
        pass
    return max(0, running - max(own, 1))


def torch_default_threads(sys_cpu="/sys/devices/system/cpu"):
    """The intra-op thread count torch starts with when nobody sets it: the physical cores of
    the machine (affinity and quotas ignored). None when the topology cannot be read."""
    try:
        names = [n for n in os.listdir(sys_cpu) if n.startswith("cpu") and n[3:].isdigit()]
    except OSError:
        return None
    cores = set()
    for name in names:
        topo = os.path.join(sys_cpu, name, "topology")
        core, package = _read(os.path.join(topo, "core_id")), \
            _read(os.path.join(topo, "physical_package_id"))
        if core is None:
            continue
        cores.add((package, core))
    return len(cores) or None


# ---------------------------------------------------------------------- the user's choice
def _env_threads(environ):
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = (environ.get(name) or "").strip()
        if value:
            return name
    return None


def user_choice(environ=None, current=None, at_import=None, default="probe"):
    """Why the user's thread setting must be left alone, or None when plexus may tune.

    `environ`, `current` (torch's count now), `at_import` and `default` (torch's default
    count, or a set of the counts it may start with) are read from the process when not given
    (tests pass them).
    """
    environ = os.environ if environ is None else environ
    name = _env_threads(environ)
    if name:
        return f"{name} is set"
    current = torch.get_num_threads() if current is None else current
    at_import = _AT_IMPORT if at_import is None else at_import
    if current != at_import:
        return "torch.set_num_threads was called after importing plexus"
    if default == "probe":
        default = _cached("default", _torch_defaults)
    if isinstance(default, int):
        default = {default}
    if default is not None and at_import not in default:
        return "torch.set_num_threads was called before importing plexus"
    return None


def _torch_defaults():
    """The counts torch may start with: the physical cores, or fewer when the affinity mask
    is smaller (None when the topology cannot be read)."""
    physical = torch_default_threads()
    return None if physical is None else {physical, min(physical, affinity_cpus())}


def world_size(environ=None):
    environ = os.environ if environ is None else environ
    try:
        return int(environ.get("WORLD_SIZE", "1") or 1)
    except ValueError:
        return 1


# ---------------------------------------------------------------------- the work of a model
def largest_op_flops(model, batch_size):
    """An estimate of the floating-point operations of the largest single torch op in a step
    of `model` on `batch_size` samples (forward pass), or None when the model gives no shapes.

    A layer's op is its weight matrix (or kernel) applied at every position of its output
    (2 * batch * weights * positions): a Dense layer on (batch, features), a convolution over
    its output's spatial positions. A recurrent layer applies its kernels once per time step,
    each step its own small op, so its positions count as one. Embeddings (lookups) and layers
    without a matrix of weights are not counted.
    """
    best, seen = None, False
    for layer in _leaves(model):
        if "Embedding" in type(layer).__name__:  # a lookup, not a product
            continue
        weights = [w for w in getattr(layer, "weights", ()) if len(tuple(w.shape)) >= 2]
        if not weights:
            continue
        seen = True
        size = sum(_prod(w.shape) for w in weights)
        positions = 1
        if not _recurrent(layer):
            shape = _output_shape(layer)
            if shape is None:
                continue
            positions = _prod(d for d in shape[1:-1] if d)
        flops = 2.0 * batch_size * size * positions
        best = flops if best is None else max(best, flops)
    return best if seen else None


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


def _leaves(model, depth=0):
    for layer in getattr(model, "layers", ()) or ():
        if depth < 8 and getattr(layer, "layers", None):
            yield from _leaves(layer, depth + 1)
        else:
            yield layer


def _recurrent(layer):
    return hasattr(layer, "cell") or "rnn" in type(layer).__name__.lower() or \
        type(layer).__name__ in ("LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D",
                                 "ConvLSTM3D", "Bidirectional")


def _output_shape(layer):
    try:
        out = layer.output
    except Exception:  # noqa: BLE001 - a layer used several times, or never called
        return None
    shape = getattr(out, "shape", None)
    return tuple(shape) if shape is not None else None


# ---------------------------------------------------------------------- the tuner
HALVES = halves.HALVES  # a candidate: two threads, a batch half each (plexus/training/halves.py)


def _cost(count):
    """How much of the machine a candidate takes, for "fewer threads within 2%": its CPUs,
    then torch's own threads before the halves (one team of threads, not two)."""
    return (2, 1) if count == HALVES else (count, 0)


def _label(count):
    return "2 threads by batch halves" if count == HALVES else f"{count} thread(s)"


class Tuner:
    """The thread count for one (model, phase, batch size), from timed steps. A count is an
    int (torch's intra-op threads) or `HALVES`."""

    def __init__(self, candidates, start, label="", trust=False, base=None):
        self.label = label
        self.candidates = tuple(sorted(set(candidates), key=_cost, reverse=True))
        self.base = base  # the scope's candidates this tuner was made for (HALVES aside)
        self.most = max((c for c in self.candidates if c != HALVES), default=None)
        self.choice = start
        self.plan = []  # counts still to time in the calibration under way
        self.trials = {}
        self.warmup = WARMUP_STEPS
        self.reference = None  # median step time of the choice, from the last calibration
        self.recent = []
        self.trained_s = 0.0  # seconds of steps timed since the last calibration
        self.recheck_s = RECHECK_S
        self.calibrations = 0
        if len(self.candidates) > 1:
            if trust:
                # the start is believed (all threads, large ops, a quiet machine): its first
                # steps only give the reference; the other counts are timed when the steps
                # jump or drop, and at the periodic re-check, as after any calibration
                self.plan, self.trials = [start] * TRIALS, {start: []}
            else:
                self._calibrate()

    def _calibrate(self):
        order = [self.choice] + [c for c in self.candidates if c != self.choice]
        self.plan = order * TRIALS
        self.trials = {c: [] for c in self.candidates}

    def next_threads(self):
        """The count the next step runs with."""
        if self.warmup > 0 or not self.plan:
            return self.choice
        return self.plan[0]

    def record(self, threads, seconds):
        """A timed step that ran with `threads`."""
        if self.warmup > 0:
            self.warmup -= 1
            return
        if self.plan:
            if self.plan[0] == threads:
                self.plan.pop(0)
            self.trials.setdefault(threads, []).append(seconds)
            best = {c: min(v) for c, v in self.trials.items() if v}
            for c, t in best.items():  # twice far behind another count: no more trials
                if len(self.trials[c]) >= 2 and \
                        any(t > DROP * o for d, o in best.items() if d != c):
                    self.plan = [p for p in self.plan if p != c]
            if not self.plan:
                self._decide()
            return
        if len(self.candidates) < 2:
            return
        self.trained_s += seconds
        self.recent.append(seconds)
        if len(self.recent) > 5:
            self.recent.pop(0)
        recent = _median(self.recent) if len(self.recent) >= 3 else self.reference
        if recent > JUMP * self.reference and self.choice != min(self.candidates, key=_cost):
            # slower: maybe the machine got busy and our threads wait for each other (on the
            # fewest threads already, a trial of more would only wait longer: left to the
            # periodic check)
            self.recheck_s = RECHECK_S
            self._calibrate()
        elif recent * JUMP < self.reference:  # faster: maybe the machine got quiet
            if self.choice == self.most:
                # already on every thread: a quieter machine cannot make fewer better; the
                # early steps were slow (allocation, caches), the reference follows
                self.reference = recent
                self.recent = []
            else:
                self.recheck_s = RECHECK_S
                self._calibrate()
        elif self.trained_s >= self.recheck_s:
            self._calibrate()

    def _decide(self):
        medians = {c: _median(v) for c, v in self.trials.items() if v}
        best = min(medians.values())
        previous = self.choice
        self.choice = min((c for c, m in medians.items() if m <= best * PREFER_FEWER),
                          key=_cost)
        self.reference = medians[self.choice]
        self.calibrations += 1
        _log.debug("%s: %s; median step %s", self.label, _label(self.choice),
                   ", ".join(f"{_label(c)} {1e3 * m:.2f} ms" for c, m in medians.items()))
        self.recent, self.trained_s = [], 0.0
        if self.calibrations > 1 and self.choice == previous:
            self.recheck_s = min(2 * self.recheck_s, RECHECK_MAX_S)
        else:
            self.recheck_s = RECHECK_S


def _median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


# ---------------------------------------------------------------------- the loops' hook
def _policy():
    return config.thread_policy()


def _batch_size(batch):
    x = batch
    for _ in range(6):
        if isinstance(x, (list, tuple)) and x:
            x = x[0]
        elif isinstance(x, dict) and x:
            x = next(iter(x.values()))
        else:
            break
    shape = getattr(x, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else 1


def _on_cpu(model):
    try:
        return model_device(model).type == "cpu"
    except Exception:  # noqa: BLE001 - a model without weights runs where its inputs are
        return True


def _halves_planned(model):
    """Whether the model's default train step may run by halves (planned when its `fit` or
    `train_on_batch` prepared it; see plexus/training/halves.py)."""
    st = model.__dict__.get("_compile_state")
    return st is not None and st.cache.get("halves") is not None


def _runs_compiled(model):
    """Whether a `jit_compile=True` model's training steps run compiled code: not once the race
    against eager steps chose eager (plexus/training/jit_race.py), nor when the model trains
    eagerly anyway (recurrent layers)."""
    st = model.__dict__.get("_compile_state")
    race = st.cache.get("jit", False) if st is not None else False
    if race is None:
        return False
    return getattr(race, "winner", None) != "eager"


_OPEN = threading.local()  # .scopes: the ThreadScopes entered on this thread, innermost last


class ThreadScope:
    """`with ThreadScope(model, phase) as scope: fn = scope.wrap(fn)`.

    Chooses torch's intra-op thread count for the loop's steps (see the module's docstring)
    and restores the count found on entry when the loop ends. `wrap(fn)` returns `fn` itself
    when plexus leaves the threads alone, else a step that sets the count and times itself.
    `decision` says what was decided and why (for tests and debugging).
    """

    def __init__(self, model, phase):
        self.model, self.phase = model, phase
        self.saved = None
        self.halves_saved = False  # whether steps ran by halves in this thread on entry
        self.fixed = None  # a count for every step, when not tuned
        self.candidates = None  # the counts a tuner may choose from
        self.decision = None
        self.current = None  # the count plexus set last (None: untouched)
        self.overridden = False
        self.timed = True  # False: the estimate for every step, never timed

    # -- entering and leaving
    def __enter__(self):
        self.saved = torch.get_num_threads()
        self.halves_saved = halves.active()
        open_scopes = _OPEN.__dict__.setdefault("scopes", [])
        outer = open_scopes[-1] if open_scopes else None
        open_scopes.append(self)
        # inside another loop's scope (validation during fit) the count torch has now is that
        # scope's choice: the user's setting is the one it found
        users = outer.saved if outer is not None and outer.current == self.saved else self.saved
        policy = _policy()
        if policy == "torch":
            self.decision = "policy 'torch': torch's setting untouched"
        elif isinstance(policy, int):
            self.fixed, self.decision = policy, f"policy {policy}: fixed"
        elif not _on_cpu(self.model):
            self.decision = "model on an accelerator: torch's setting untouched"
        elif world_size() > 1 and not _env_threads(os.environ):
            self.fixed, self.decision = 1, "WORLD_SIZE > 1: one thread per rank"
        else:
            why = user_choice(current=users)
            if why:
                self.decision = f"user's setting kept ({why})"
            else:
                n = max(1, min(available_cpus(), users))
                if n == 1:
                    self.fixed, self.decision = 1, "one CPU available"
                else:
                    self.candidates = (n, 1)
                    self.decision = f"tuned among {self.candidates}"
                    jit = getattr(self.model, "jit_compile", False) is True and \
                        not getattr(self.model, "run_eagerly", False) and \
                        _runs_compiled(self.model)
                    if self.phase == "train" and jit:
                        # compiled kernels keep the count they were compiled with: no trials
                        self.timed = False
                        self.decision = f"jit_compile: the estimate among {self.candidates}"
        if self.fixed is not None:
            self._set(self.fixed)
        elif self.candidates is not None:
            # what the loop does around its steps (gathering a shuffled chunk of the data,
            # reading the logs) runs with the count its steps ran with last time: on a busy
            # machine, a copy on two threads waits for a descheduled one just as a step does
            last = self.model.__dict__.get("_thread_last", {}).get(self.phase)
            if last is not None and last.base == self.candidates:
                self._set(last.choice)
        return self

    def __exit__(self, *exc):
        open_scopes = _OPEN.__dict__.get("scopes")
        if open_scopes and open_scopes[-1] is self:
            open_scopes.pop()
        if self.current is not None and not self.overridden and \
                torch.get_num_threads() != self.saved:
            torch.set_num_threads(self.saved)
        halves.set_active(self.halves_saved)
        return False

    def _set(self, n):
        """Steps (and the loop's work around them) run with `n` (an int or HALVES) from now."""
        by_halves = n == HALVES
        if by_halves:
            n = 1  # (each half on one intra-op thread)
        if halves.active() != by_halves:
            halves.set_active(by_halves)
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        self.current = n

    # -- the steps
    def tuner(self, batch_size):
        """The model's tuner for this phase and batch size (created on first use)."""
        tuners = self.model.__dict__.setdefault("_thread_tuners", {})
        candidates = self.candidates
        if self.phase == "train" and self.timed and _halves_planned(self.model):
            candidates = candidates + (HALVES,)
        key = (self.phase, batch_size, candidates)
        if key not in tuners:
            start = self.estimate(batch_size)
            # all threads for large ops on a quiet machine: trusted, not raced against one
            # thread at once (a race costs slow steps on an idle machine, and the first jump
            # of the step times on a busy one starts it anyway)
            tuners[key] = Tuner(candidates, start,
                                f"model {getattr(self.model, 'name', '?')!r}, {self.phase}, "
                                f"batches of {batch_size}", trust=start == max(self.candidates),
                                base=self.candidates)
        self.model.__dict__.setdefault("_thread_last", {})[self.phase] = tuners[key]
        return tuners[key]

    def estimate(self, batch_size):
        """The count a new tuner starts with: one thread for small ops, or when the machine's
        CPUs are all taken right now; else the most."""
        try:
            flops = largest_op_flops(self.model, batch_size)
        except Exception:  # noqa: BLE001 - an estimate only
            flops = None
        if flops is not None and flops < SMALL_OP_FLOPS:
            return 1
        n = max(self.candidates)
        others = others_running()
        if others is not None and others + n > (os.cpu_count() or n):
            return 1
        return n

    def threads_for(self, batch_size):
        """The count for a single step (no timing): the tuner's choice or the estimate."""
        if self.candidates is None:
            return self.fixed
        return self.tuner(batch_size).choice

    def wrap(self, fn):
        if self.candidates is None:
            return fn
        scope, state = self, {"tuner": None, "size": None, "first": True}

        def step(batch):
            if scope.overridden:
                return fn(batch)
            if scope.current is not None and torch.get_num_threads() != scope.current:
                scope.overridden = True  # someone set the threads during the loop: theirs
                return fn(batch)
            size = _batch_size(batch)
            if state["tuner"] is None:
                state["tuner"], state["size"] = scope.tuner(size), size
            tuner = state["tuner"]
            if size != state["size"] or not scope.timed:  # the choice, untimed
                scope._set(tuner.choice)
                return fn(batch)
            n = tuner.next_threads()
            scope._set(n)
            start = time.perf_counter()
            out = fn(batch)
            elapsed = time.perf_counter() - start
            if state["first"]:  # the first step of a loop runs on cold caches: not timed
                state["first"] = False
            else:
                tuner.record(n, elapsed)
            return out

        step.__wrapped__ = fn
        for attr in ("flat", "prepare"):
            if hasattr(fn, attr):
                setattr(step, attr, getattr(fn, attr))
        return step



def scope(model, phase):
    """The context manager the loops enter: `with threads.scope(model, "train") as t:`."""
    return ThreadScope(model, phase)


class _Switch:
    """Run a block with `n` threads (None: as they are), then put `saved` back."""

    __slots__ = ("n", "saved")

    def __init__(self, n, saved):
        self.n, self.saved = n, saved

    def __enter__(self):
        if self.n is not None:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.n is not None and torch.get_num_threads() == self.n:
            torch.set_num_threads(self.saved)
        return False


def single(model, batch_size):
    """The context manager of a one-batch `predict`: the count `ThreadScope` would choose for
    it (the tuner's choice or the estimate), its decision kept on the model for `CACHE_S`
    seconds while the policy and torch's count stay the same, so that a call costs about a
    microsecond more than without the policy."""
    saved = torch.get_num_threads()
    key = (config.thread_policy(), saved, batch_size)
    now = time.monotonic()
    hit = model.__dict__.get("_thread_single")
    if hit is None or hit[0] != key or now > hit[1]:
        with ThreadScope(model, "predict") as s:
            n = s.threads_for(batch_size)
        hit = model.__dict__["_thread_single"] = (key, now + CACHE_S, n)
    n = hit[2]
    return _Switch(n if n is not None and n != saved else None, saved)


def call(model, phase, fn, batch):
    """`fn(batch)`: one step outside a loop (`train_on_batch`, `test_on_batch`,
    `predict_on_batch`), with the count the loops would use and timed by the same tuner, so a
    hand-written loop of such calls is tuned as `fit` is. torch's count is put back after the
    call. The decision to tune (policy, user's settings, CPUs) is kept on the model for
    `CACHE_S` seconds while the policy and torch's count stay the same."""
    saved = torch.get_num_threads()
    size = _batch_size(batch)
    key = (config.thread_policy(), saved, size)
    now = time.monotonic()
    calls = model.__dict__.setdefault("_thread_calls", {})
    hit = calls.get(phase)
    if hit is None or hit[0] != key or now > hit[1]:
        with ThreadScope(model, phase) as s:
            fixed, tuner = s.fixed, None
            if s.candidates is not None:
                tuner = s.tuner(size)
                if not s.timed:
                    fixed, tuner = tuner.choice, None
        hit = calls[phase] = (key, now + CACHE_S, fixed, tuner)
    fixed, tuner = hit[2], hit[3]
    choice = tuner.next_threads() if tuner is not None else fixed
    by_halves = choice == HALVES
    n = 1 if by_halves else choice
    if n is None or n == saved:
        n = None
    else:
        torch.set_num_threads(n)
    was = halves.set_active(by_halves) if by_halves else None
    start = time.perf_counter()
    try:
        out = fn(batch)
    finally:
        if was is not None:
            halves.set_active(was)
        if n is not None and torch.get_num_threads() == n:
            torch.set_num_threads(saved)
    if tuner is not None:
        tuner.record(choice if choice is not None else saved, time.perf_counter() - start)
    return out
