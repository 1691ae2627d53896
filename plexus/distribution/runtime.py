"""What `fit`, `evaluate`, `predict`, the optimizers and saving do under a distribution.

Every hook here is a no-op unless a distribution is set (`set_distribution`) *and* the run
has more than one process, so single-process code pays one attribute read.

- Gradients: during `fit`, `Overlap` starts the all-reduce of each bucket of gradients as
  soon as autograd has accumulated it (as DDP does); `Optimizer.step` waits for them. Where no
  hook fired (the closed-form gradients, `jit_compile`, a custom `train_step` calling
  `torch.autograd.grad` and `optimizer.apply`), `average_gradients`, inside `Optimizer.step`,
  all-reduces the gradients about to be applied (the packed flat buffers, a few tensors per
  model). With `gradient_accumulation_steps` only the latter runs, on the steps that apply
  the accumulated gradients. Gradients that FSDP already reduced (DTensors) are left alone.
- State: parameters and buffers are broadcast from rank 0 when a model first trains under
  the distribution, buffers
  (BatchNormalization's moving statistics, seed generators) again after every epoch.
- Metrics: their running states are combined across processes (summed, or as a variable's
  `aggregation` says) before an epoch's (or an evaluation's) results are read, so logs, history and `evaluate` are global and identical
  on every rank.
- Collectives run under the process group's timeout; failures are re-raised as errors naming
  the rank, never a hang.
"""
import datetime
import os

import torch
import torch.distributed as dist

_current = None  # the distribution set_distribution made current
gradient_reductions = 0  # how many times gradients were averaged across processes
overlapped_reductions = 0  # of which started during the backward pass
_launcher_checked = False  # whether check_model read WORLD_SIZE (and warned) already


# ---------------------------------------------------------------------- processes
def _env_world():
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def initialize(job_addresses=None, num_processes=None, process_id=None, backend=None,
               timeout=None):
    if not dist.is_available():
        if job_addresses or (num_processes or 1) > 1 or _env_world() > 1:
            raise RuntimeError("This torch build has no torch.distributed; plexus cannot run "
                               "on several processes with it.")
        return
    if dist.is_initialized():
        return
    env = os.environ
    if job_addresses is None and num_processes is None and "RANK" not in env:
        return  # one process: nothing to join
    if timeout is None:
        timeout = float(env.get("PLEXUS_DISTRIBUTED_TIMEOUT", 600))
    use_cuda = torch.cuda.is_available() and backend != "gloo"
    backend = backend or ("nccl" if use_cuda else "gloo")
    kwargs = {"timeout": datetime.timedelta(seconds=float(timeout))}
    if job_addresses:
        first = str(job_addresses).split(",")[0].strip()
        if num_processes is None or process_id is None:
            raise ValueError("initialize(job_addresses=...) also needs num_processes and "
                             "process_id.")
        kwargs.update(init_method=f"tcp://{first}", world_size=int(num_processes),
                      rank=int(process_id))
    else:
        if num_processes is not None:
            kwargs["world_size"] = int(num_processes)
        if process_id is not None:
            kwargs["rank"] = int(process_id)
    if use_cuda:
        local = int(env.get("LOCAL_RANK", kwargs.get("rank", 0)))
        torch.cuda.set_device(local % torch.cuda.device_count())
    dist.init_process_group(backend, **kwargs)


def initialize_from_environment():
    """Join torchrun's process group when this process was launched by it."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        initialize()


def world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank():
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_chief():
    """Whether this process writes files and prints progress (rank 0, or no distribution)."""
    return not active() or rank() == 0


def _device_kind(device_type):
    if device_type is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind = str(device_type).lower().split(":")[0]
    if kind == "gpu":
        kind = "cuda"
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"list_devices: device_type must be 'cpu' or 'gpu'; received "
                         f"{device_type!r}.")
    return kind


def list_devices(device_type=None):
    initialize_from_environment()
    kind = _device_kind(device_type)
    n = world_size()
    if kind == "cuda":
        per_node = max(1, torch.cuda.device_count())
        return [f"cuda:{r % per_node}" for r in range(n)]
    return [f"cpu:{r}" for r in range(n)]


def current():
    return _current


def set_current(value):
    global _current
    _current = value


def active():
    """Whether training runs on several processes under a distribution."""
    return _current is not None and world_size() > 1


def model_parallel():
    from plexus.distribution.distribution_lib import ModelParallel
    return active() and isinstance(_current, ModelParallel)


def allows_fast_paths(model):
    """Whether the closed-form gradients and the compiled step may run: not when FSDP shards
    the model (its all-gathers and gradient reductions hang on the layers' own calls)."""
    return not getattr(model, "_fsdp_sharded", False)


# ---------------------------------------------------------------------- collectives
class DistributedError(RuntimeError):
    pass


def _collective(what, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except DistributedError:
        raise
    except Exception as e:  # gloo/nccl timeouts and peers gone surface as RuntimeErrors
        raise DistributedError(
            f"Rank {rank()} of {world_size()}: {what} failed, waiting for the other processes "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Another process "
            "probably stopped with an error (see its output) or runs different code.") from e


def gather_objects(what, value):
    """`value` of every rank, in rank order (a small Python object)."""
    out = [None] * world_size()
    _collective(what, dist.all_gather_object, out, value)
    return out


def agree(what, value, hint=""):
    """Check that every rank holds the same `value`; a ValueError on every rank otherwise."""
    if not active():
        return
    values = gather_objects(f"comparing {what} across processes", value)
    if any(v != values[0] for v in values):
        detail = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
        raise ValueError(f"Rank {rank()}: the processes disagree on {what} ({detail}). Every "
                         f"process must run the same steps.{' ' + hint if hint else ''}")


def any_rank(flag):
    """Whether `flag` is true on any rank (e.g. `stop_training`)."""
    if not active():
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=_comm_device())
    _collective("agreeing on stop_training", dist.all_reduce, t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_finite(loss):
    """Whether `loss` is finite on every process (a step skipped on one is skipped on all)."""
    finite = bool(torch.isfinite(loss))
    return finite if not active() else not any_rank(not finite)


def barrier(what="waiting for the other processes"):
    if active():
        _collective(what, dist.barrier)


def _comm_device():
    return torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")


_DTENSOR = []  # torch's DTensor class (None without distributed support), imported once


def is_dtensor(t):
    """Whether `t` is a sharded tensor (FSDP's parameters under `ModelParallel`)."""
    if not _DTENSOR:
        try:
            from torch.distributed.tensor import DTensor
        except ImportError:
            DTensor = None
        _DTENSOR.append(DTensor)
    return _DTENSOR[0] is not None and isinstance(t, _DTENSOR[0])


def _groups(tensors):
    by = {}
    for t in tensors:
        if t is None or is_dtensor(t) or t.is_sparse:
            continue
        by.setdefault((t.device, t.dtype), []).append(t)
    return by.values()


BIG = 1 << 16  # tensors of more elements are all-reduced where they are, not copied


def _all_reduce_mean(what, tensors):
    """Sum each tensor over the processes and divide by their number: large contiguous tensors
    (the packed gradient buffers, large weights' gradients) in place, small ones copied into
    one flat buffer per device and dtype; all operations in flight at once."""
    n = world_size()
    works, done = [], []
    for group in _groups(tensors):
        small = [t for t in group if t.numel() < BIG or not t.is_contiguous()]
        for t in group:
            if t.numel() >= BIG and t.is_contiguous():
                works.append(_collective(what, dist.all_reduce, t, async_op=True))
                done.append((t, None))
        if small:
            flat = torch._utils._flatten_dense_tensors(small) if len(small) > 1 \
                else small[0].contiguous()
            works.append(_collective(what, dist.all_reduce, flat, async_op=True))
            done.append((flat, small))
    for work in works:
        _collective(what, work.wait)
    for t, small in done:
        t.div_(n)
        if small is not None and (len(small) > 1 or t is not small[0]):
            torch._foreach_copy_(small, torch._utils._unflatten_dense_tensors(t, small)
                                 if len(small) > 1 else [t])


def _broadcast(what, tensors):
    for group in _groups(tensors):
        flat = torch._utils._flatten_dense_tensors(group) if len(group) > 1 else group[0]
        if len(group) == 1 and not flat.is_contiguous():
            flat = flat.contiguous()
        _collective(what, dist.broadcast, flat, src=0)
        if flat is not group[0]:
            torch._foreach_copy_(group, torch._utils._unflatten_dense_tensors(flat, group)
                                 if len(group) > 1 else [flat])


# ---------------------------------------------------------------------- training hooks
def same_kind(idx, params, grads):
    """`[(idx, params, grads)]`, split in two when FSDP shards some of the weights (DTensors)
    and not others: torch's multi-tensor kernels take one kind at a time."""
    if idx is None or not model_parallel():
        return [(idx, params, grads)]
    sharded = [is_dtensor(p) for p in params]
    if all(sharded) or not any(sharded):
        return [(idx, params, grads)]
    return [([i for i, s in zip(idx, sharded) if s is kind],
             [p for p, s in zip(params, sharded) if s is kind],
             [g for g, s in zip(grads, sharded) if s is kind]) for kind in (True, False)]


def average_gradients(grads):
    """Average the gradients (a list of tensors, updated in place) across processes."""
    global gradient_reductions
    if active():
        with torch.no_grad():
            _all_reduce_mean("averaging gradients", [g for g in grads if g is not None])
        gradient_reductions += 1


@torch.no_grad()
def broadcast_state(model):
    """Give every rank rank 0's parameters and buffers (when training starts)."""
    if not active():
        return
    tensors = [p.data for p in model.parameters()] + list(model.buffers())
    _broadcast("broadcasting the weights from rank 0", tensors)


@torch.no_grad()
def broadcast_buffers(model):
    """Give every rank rank 0's buffers (moving statistics, seed generator states)."""
    if active():
        _broadcast("broadcasting the buffers from rank 0", list(model.buffers()))


def creation_stamp():
    """What a model records when it is made: the current distribution's serial number (an
    int, so that copies of the model keep it), or None."""
    return None if _current is None else _current._serial


def check_model(model, method):
    """A model built before `set_distribution` cannot follow it: a ValueError."""
    global _launcher_checked
    if _current is None:
        # (the launcher's environment, read by the first fit/evaluate/predict of the process)
        if not _launcher_checked and _env_world() > 1:
            import warnings
            warnings.warn(
                f"This process is one of {_env_world()} that torchrun started, but no "
                "distribution is set: each process trains its own copy of the model. Call "
                "plexus.distribution.set_distribution(plexus.distribution.DataParallel()) "
                "before building the model to train one model on all of them.", stacklevel=4)
        _launcher_checked = True
        return
    built_under = model.__dict__.get("_distribution_at_creation")
    if built_under != _current._serial:
        raise ValueError(
            f"Rank {rank()}: model {model.name!r} was created before "
            f"plexus.distribution.set_distribution({type(_current).__name__}(...)) was called "
            f"(or under another distribution), so {method}() cannot distribute it. Call "
            "set_distribution first, then build (or load) the model.")


def check_batch_size(batch_size, what="batch_size"):
    """The global batch must split evenly across the processes; returns the per-rank batch."""
    n = world_size()
    if batch_size % n:
        raise ValueError(
            f"Rank {rank()}: {what}={batch_size} is the global batch, split across {n} "
            f"processes, so it must be divisible by {n}. Pass a multiple of {n} (e.g. "
            f"{batch_size - batch_size % n or n}).")
    return batch_size // n


# ---------------------------------------------------------------------- metrics and logs
def _metric_objects(model):
    from plexus.training import steps as S
    from plexus.training.metrics import Metric
    seen, out = set(), []

    def visit(m):
        if id(m) in seen:
            return
        seen.add(id(m))
        out.append(m)
        for v in vars(m).values():
            walk(v)

    def walk(v):
        if isinstance(v, Metric):
            visit(v)
        elif isinstance(v, (list, tuple)):
            for item in v:
                walk(item)
        elif isinstance(v, dict):
            for item in v.values():
                walk(item)
    for m in S.model_metrics(model):
        visit(m)
    st = model.__dict__.get("_compile_state")
    if st is not None:
        for _, m in st.all_metrics():
            if isinstance(m, Metric):
                visit(m)
    return out


def _to_host(state):
    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, (list, tuple)):
        return type(state)(_to_host(s) for s in state)
    return state


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, (list, tuple)):
        return type(a)(_add(x, y) for x, y in zip(a, b))
    return a + b


def _to_device(state, like):
    if isinstance(state, torch.Tensor):
        dev = like.device if isinstance(like, torch.Tensor) else state.device
        return state.to(dev)
    if isinstance(state, (list, tuple)):
        likes = like if isinstance(like, (list, tuple)) else [None] * len(state)
        return type(state)(_to_device(s, l) for s, l in zip(state, likes))
    return state


@torch.no_grad()
def sync_metrics(model):
    """Sum every metric's running state across processes (each rank then holds the global
    state: its results are the global values, identical everywhere)."""
    if not active():
        return
    metrics = _metric_objects(model)
    local = [(_to_host(m.__dict__.get("_state")),
              [v.detach().cpu() for v in m.__dict__.get("_variables", ())]) for m in metrics]
    everyone = gather_objects("summing the metrics across processes", local)
    for i, m in enumerate(metrics):
        state = None
        for theirs in everyone:
            state = _add(state, theirs[i][0])
        own = m.__dict__.get("_state")
        if state is not None:
            m._state = _to_device(state, own if own is not None else _first_device(model))
        for j, v in enumerate(m.__dict__.get("_variables", ())):
            # a variable's `aggregation` says how (Keras's): summed unless "mean" or
            # "only_first_replica"
            values = [theirs[i][1][j] for theirs in everyone]
            how = getattr(v, "aggregation", "sum")
            value = values[0] if how == "only_first_replica" else sum(values[1:], values[0])
            if how == "mean":
                value = value / len(values)
            v.data.copy_(value.to(v.device, v.dtype))


def _first_device(model):
    for p in model.parameters():
        return torch.zeros((), device=p.device)
    return None


def average_logs(logs):
    """The mean across processes of the numbers in `logs` (a custom step's own logs)."""
    if not active() or not logs:
        return logs
    keys = sorted(k for k, v in logs.items() if isinstance(v, (int, float)))
    everyone = gather_objects("averaging the logs across processes",
                              [float(logs[k]) for k in keys])
    out = dict(logs)
    for j, k in enumerate(keys):
        out[k] = sum(v[j] for v in everyone) / len(everyone)
    return out


# ---------------------------------------------------------------------- callbacks, saving
_CHIEF_ONLY = ("ProgbarLogger", "CSVLogger", "TensorBoard", "RemoteMonitor")


def rank_callbacks(callbacks):
    """The callbacks this rank runs: those that only print or write logs run on rank 0.
    `ModelCheckpoint` and `BackupAndRestore` run everywhere (saving is collective: rank 0
    writes, the others wait for it)."""
    if not active() or rank() == 0 or not callbacks:
        return callbacks
    kept = [cb for cb in callbacks
            if not any(c.__name__ in _CHIEF_ONLY for c in type(cb).__mro__)]
    for cb in kept:  # (ModelCheckpoint, EarlyStopping, ...: their messages printed once)
        if isinstance(getattr(cb, "verbose", None), (int, bool)):
            cb.verbose = 0
    return kept


def save_on_chief(model, write):
    """Run `write()` on rank 0 (the others wait); an error there is raised on every rank.
    Under `ModelParallel` the shards are gathered first (a collective on every rank)."""
    if not active():
        return write()
    from plexus.distribution import sharding
    with sharding.gathered(model):
        error = None
        if rank() == 0:
            try:
                write()
            except BaseException as e:  # noqa: BLE001  (re-raised below, after telling the others)
                error = e
        errors = gather_objects("saving (waiting for rank 0 to write)",
                                None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    if errors[0] is not None:
        raise RuntimeError(f"Rank {rank()}: saving failed on rank 0: {errors[0]}")


# ---------------------------------------------------------------------- batch statistics
def global_moments(x, reduce, mask=None):
    """Mean and biased variance over `reduce` of `x` across all processes (synchronized
    BatchNormalization); differentiable, so gradients flow through the statistics."""
    if mask is None:
        w = None
        count = torch.tensor(float(x.numel() // x.shape[[d for d in range(x.ndim)
                                                         if d not in reduce][0]]),
                             device=x.device, dtype=x.dtype)
        s1, s2 = x.sum(dim=reduce), (x * x).sum(dim=reduce)
        counts = count.expand_as(s1)
    else:
        w = mask.unsqueeze(-1).to(x.dtype).expand_as(x)
        s1, s2 = (x * w).sum(dim=reduce), (x * x * w).sum(dim=reduce)
        counts = w.sum(dim=reduce)
    packed = torch.stack([s1, s2, counts])
    total = _collective("synchronizing batch statistics", _AllReduceSum.apply, packed)
    n = torch.clamp(total[2], min=1e-12)
    mean = total[0] / n
    var = torch.clamp(total[1] / n - mean * mean, min=0.0)
    return mean, var


def prepare_model(model):
    """Before training under a distribution: every rank given rank 0's weights (once per
    model and distribution: the same averaged updates keep them equal after that, and
    `train_on_batch` comes here on every call), the layers `ModelParallel` shards wrapped with
    FSDP (once; the shards are cut from those weights), and the gradients' all-reduces set to
    start during the backward pass (`Overlap`)."""
    if not active():
        return
    from plexus.distribution import sharding
    if model.__dict__.get("_weights_synced_under") != _current._serial:
        broadcast_state(model)
        model.__dict__["_weights_synced_under"] = _current._serial
    sharding.shard_model(model, _current)
    params = [p for p in model.trainable_weights if p.requires_grad and not is_dtensor(p)
              and not p.is_sparse]
    overlap = model.__dict__.get("_gradient_overlap")
    if overlap is None or not overlap.covers(params):
        if overlap is not None:
            overlap.remove()
        overlap = Overlap(params)
        object.__setattr__(model, "_gradient_overlap", overlap)
    opt = getattr(model, "optimizer", None)
    # with gradient accumulation, only the applied mean is reduced (in Optimizer.step)
    overlap.armed = not getattr(opt, "gradient_accumulation_steps", None)
    if overlap.armed and overlap not in _OVERLAPS:
        _OVERLAPS.append(overlap)


def end_training(model):
    """After `fit`: backward passes outside it start no all-reduce."""
    overlap = model.__dict__.get("_gradient_overlap")
    if overlap is not None:
        overlap.armed = False
        overlap.reset()
        if overlap in _OVERLAPS:
            _OVERLAPS.remove(overlap)
    _averaged.clear()


_OVERLAPS = []  # the armed ones: Optimizer.step finishes their all-reduces
_OWN_HOOKS = set()  # ids of the gradient hooks above: Optimizer.step averages without them too


def own_gradient_hook(hook_id):
    """Whether a weight's gradient hook is the distribution's own overlap hook, which the
    closed-form steps may skip: `Optimizer.step` averages every gradient that it did not start."""
    return hook_id in _OWN_HOOKS


class Overlap:
    """The gradients' all-reduce, started during the backward pass (as DDP's buckets do).

    The weights are grouped in buckets (sized as DDP sizes them), in the reverse of their order
    (roughly the order backward produces their gradients). When autograd has accumulated the
    gradient of every weight of a bucket, the bucket's gradients, copied into one flat buffer,
    start their all-reduce; `Optimizer.step` waits for them (`collect_gradients`) and writes
    the averages back. Gradients computed otherwise (the closed-form Dense gradients,
    `torch.autograd.grad` in a compiled or custom step) fire no hook: `step` then averages
    them itself.
    """

    # DDP's sizes: a small first bucket (the last layers' gradients, ready first, start
    # travelling early), then buckets of 25 MB
    FIRST_BUCKET_BYTES = 1 << 20
    BUCKET_BYTES = 25 << 20

    def __init__(self, params):
        self.params = list(params)
        self.ids = [id(p) for p in self.params]
        self.buckets, self.where = [], {}
        current, size, key = [], 0, None
        for p in reversed(self.params):
            k = (p.device, p.dtype)
            nbytes = p.numel() * p.element_size()
            cap = self.FIRST_BUCKET_BYTES if not self.buckets else self.BUCKET_BYTES
            if current and (k != key or size + nbytes > cap):
                self.buckets.append(current)
                current, size = [], 0
            current.append(p)
            size += nbytes
            key = k
        if current:
            self.buckets.append(current)
        for b, bucket in enumerate(self.buckets):
            for p in bucket:
                self.where[id(p)] = b
        self.handles = [p.register_post_accumulate_grad_hook(self._ready)
                        for p in self.params]
        _OWN_HOOKS.update(h.id for h in self.handles)
        self.armed = False
        self.reset()

    def covers(self, params):
        return [id(p) for p in params] == self.ids

    def remove(self):
        for h in self.handles:
            _OWN_HOOKS.discard(h.id)
            h.remove()
        if self in _OVERLAPS:
            _OVERLAPS.remove(self)

    def reset(self):
        self.ready = [0] * len(self.buckets)
        self.pending = {}

    def _ready(self, p):
        if not self.armed or not active():
            return
        b = self.where[id(p)]
        self.ready[b] += 1
        if self.ready[b] == len(self.buckets[b]):
            grads = [q.grad for q in self.buckets[b]]
            flat = torch._utils._flatten_dense_tensors(grads) if len(grads) > 1 \
                else grads[0].contiguous()
            work = _collective("averaging gradients", dist.all_reduce, flat, async_op=True)
            self.pending[b] = (work, flat)

    @torch.no_grad()
    def collect(self):
        """Wait for the started all-reduces and write the averages into `.grad`; the other
        gradients of the weights are averaged now. Returns the ids of the weights whose
        gradients were averaged (none when nothing had started)."""
        if not self.pending:
            self.reset()
            return set()
        n = world_size()
        for b, (work, flat) in self.pending.items():
            _collective("averaging gradients", work.wait)
            flat.div_(n)
            grads = [q.grad for q in self.buckets[b]]
            if len(grads) > 1:
                torch._foreach_copy_(grads, torch._utils._unflatten_dense_tensors(flat, grads))
            elif flat is not grads[0]:
                grads[0].copy_(flat)
        rest = [q.grad for b, bucket in enumerate(self.buckets) if b not in self.pending
                for q in bucket if q.grad is not None]
        if rest:  # (weights without a gradient in this pass: their buckets never started)
            _all_reduce_mean("averaging gradients", rest)
        self.reset()
        return {id(p) for p in self.params if p.grad is not None}


def average_now(params):
    """Average the `.grad`s of `params` across processes now (a wrapper such as the loss-scale
    optimizer, which must see the averages); whether it happened."""
    if not active():
        return False
    global gradient_reductions
    if not collect_gradients(params):
        _all_reduce_mean("averaging gradients", [p.grad for p in params if p.grad is not None])
        gradient_reductions += 1
    return True


_averaged = set()  # ids of weights whose current `.grad` is already the average


def collect_gradients(params):
    """At the start of `Optimizer.step`: whether the gradients of `params` were averaged
    already (their all-reduce started during the backward pass). Several optimizers sharing a
    backward pass (`MultiOptimizer`) each take their weights' share."""
    global gradient_reductions, overlapped_reductions, _averaged
    if not active():
        return False
    started = [o for o in _OVERLAPS if o.armed and o.pending]
    if started:
        _averaged = set()
        for overlap in started:
            _averaged |= overlap.collect()
        gradient_reductions += 1
        overlapped_reductions += 1
    if not _averaged:
        return False
    mine = [id(p) for p in params if p.grad is not None]
    if mine and all(i in _averaged for i in mine):
        _averaged.difference_update(mine)
        return True
    return False


class _AllReduceSum(torch.autograd.Function):
    """The sum over processes, differentiable: the gradient of every process's loss with
    respect to the sum flows back to every process's summands."""

    @staticmethod
    def forward(ctx, t):
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        _collective("synchronizing batch statistics (backward)", dist.all_reduce, grad)
        return grad
