"""What `compile` sets up: the per-output losses and weights, the metrics, and their names.

History keys follow Keras: `loss`; for a model with several outputs also `<output>_loss` (the
unweighted loss of each output) and `<output>_<metric>`; for one output `<metric>`.
"""
import copy

import torch

from plexus.graph import tree
from plexus.graph.inputs import flatten_named, to_tensor
from plexus.training import losses as L
from plexus.training import metrics as M
from plexus.training import arguments as A


_HALF = (torch.float16, torch.bfloat16)


def as_float32(pred):
    """A float16/bfloat16 prediction in float32, keeping the logits a softmax or sigmoid
    output remembers (in float32 too), so cross-entropies still work from them."""
    out = pred.float()
    rec = getattr(pred, "_plexus_logits", None)
    if rec is not None:
        out._plexus_logits = (rec[0], rec[1], rec[2].float())
    return out


def _per_output(value, names, what, single_ok=True):
    """Spread `value` (one thing, a list, or a dict by output name) over the outputs."""
    n = len(names)
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(
                f"`{what}` names {', '.join(repr(k) for k in unknown)}, which are not outputs "
                f"of the model. Its outputs are {names}."
            )
        return [value.get(k) for k in names]
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(
                f"`{what}` is a list of {len(value)}, but the model has {n} output(s) "
                f"({', '.join(names)}). Give one entry per output, or a dict keyed by output "
                "name."
            )
        return list(value)
    return [value] * n if single_ok else [value] + [None] * (n - 1)


def _resolve_loss(identifier):
    loss = L.get(identifier)
    if loss is None or isinstance(loss, L.Loss):
        return loss
    name = identifier if isinstance(identifier, str) else getattr(loss, "__name__", "loss")
    return L.LossFunctionWrapper(loss, name=name)


class CompiledLoss:
    """Per-output losses and weights; returns the weighted total and each unweighted loss."""

    def __init__(self, loss, loss_weights, names):
        self.names = names
        if isinstance(loss, (list, tuple)) and len(names) == 1 and len(loss) == 1:
            loss = loss[0]
        raw = _per_output(loss, names, "loss")
        if isinstance(loss, (list, tuple, dict)) or len(names) == 1:
            self.losses = [_resolve_loss(v) for v in raw]
        else:  # one loss for every output: separate objects, same settings
            first = _resolve_loss(loss)
            self.losses = [first] + [copy.deepcopy(first) for _ in names[1:]]
        if loss_weights is None:
            self.weights = [None] * len(names)
        else:
            self.weights = [None if w is None else float(w)
                            for w in _per_output(loss_weights, names, "loss_weights")]
        self.track_each = sum(l is not None for l in self.losses) > 1
        self.trackers = [M.Mean(name=f"{n}_loss") if (self.track_each and l is not None)
                         else None for n, l in zip(names, self.losses)]

    def __call__(self, ys, preds, sample_weight):
        total, values = None, []
        for i, (loss, w) in enumerate(zip(self.losses, self.weights)):
            if loss is None:
                values.append(None)
                continue
            if preds[i].dtype in _HALF:  # mixed precision: losses are computed in float32
                preds = [p if j != i else as_float32(p) for j, p in enumerate(preds)]
            sw = sample_weight[i] if isinstance(sample_weight, list) else sample_weight
            try:
                v = loss(ys[i], preds[i], sw) if isinstance(loss, L.Loss) else \
                    L.reduce_weighted(loss(ys[i], preds[i]), sw)
            except (A.LossResultTypeError, A.LossResultShapeError) as e:
                raise A.for_output(e, self.names[i]) from None
            values.append(v)
            v = v if w is None else v * w
            total = v if total is None else total + v
        return total, values

    def update(self, values, batch_size):
        for tracker, v in zip(self.trackers, values):
            if tracker is not None:
                tracker.update_state(v.detach(), sample_weight=batch_size)


def _binary_or_sparse(y_true, y_pred):
    is_binary = y_pred.shape[-1] == 1 if y_pred.dim() else True
    is_sparse = y_true.dim() < y_pred.dim() or (y_true.shape[-1] == 1 and y_pred.shape[-1] > 1)
    return is_binary, is_sparse


def _make_metric(identifier, y_true, y_pred):
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        is_binary, is_sparse = _binary_or_sparse(y_true, y_pred)
        cls = (M.BinaryAccuracy if is_binary else M.SparseCategoricalAccuracy if is_sparse
               else M.CategoricalAccuracy)
        return cls(name=identifier)
    metric = M.get(identifier)
    if isinstance(identifier, str):
        metric.name = identifier
    return metric


def _check_metric_name(identifier):
    """Fail at compile time (not at the first batch) on an unknown metric name, or on what
    cannot be a metric at all (a number, a list, an optimizer)."""
    if isinstance(identifier, str):
        if identifier.lower() not in ("accuracy", "acc"):
            M.get(identifier)
    elif not (callable(identifier) or isinstance(identifier, (M.Metric, dict))):
        M.get(identifier)  # raises, saying what a metric can be


class CompiledMetrics(M.Metric):
    """The compiled metrics of every output, as one metric named `compile_metrics` (as in
    Keras 3: `model.metrics` lists it after the loss tracker; its `result()` is a dict).

    The metrics themselves are made on the first batch, when `"accuracy"` can be resolved from
    the shapes of targets and predictions; the outputs are bound when the model's names are
    known (at compile for a functional model, else from the first predictions)."""

    def __init__(self, metrics, weighted_metrics, names=None):
        super().__init__(name="compile_metrics")
        self._given = (metrics, weighted_metrics)
        for spec in self._given:
            for ident in _leaves(spec):
                _check_metric_name(ident)
        self.names = None
        self.built = False
        self.metrics = [[], []]  # (output index, metric) pairs: unweighted, weighted
        if names is not None:
            self.bind(names)

    def bind(self, names):
        metrics, weighted_metrics = self._given
        self.names = names
        self.specs = [self._specs(metrics, names, "metrics"),
                      self._specs(weighted_metrics, names, "weighted_metrics")]

    @staticmethod
    def _specs(metrics, names, what):
        n = len(names)
        if metrics is None:
            return [[] for _ in names]
        if isinstance(metrics, dict):
            per = _per_output(metrics, names, what)
            return [[] if v is None else list(v) if isinstance(v, (list, tuple)) else [v]
                    for v in per]
        if not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        if n > 1 and len(metrics) == n and all(isinstance(m, (list, tuple)) or m is None
                                               for m in metrics):
            return [[] if m is None else list(m) for m in metrics]
        if any(isinstance(m, (list, tuple)) for m in metrics):
            raise ValueError(
                f"`{what}` mixes lists and single metrics. Pass one list of metrics for every "
                f"output, a list of {n} lists (one per output), or a dict keyed by output name."
            )
        return [list(metrics) for _ in names]

    def build(self, ys, preds):
        seen = set()
        for kind, spec in enumerate(self.specs):
            for i, per_out in enumerate(spec):
                for ident in per_out:
                    m = _make_metric(ident, ys[i], preds[i])
                    if id(m) in seen:  # one object given for several outputs
                        m = copy.deepcopy(m)
                    seen.add(id(m))
                    self.metrics[kind].append((i, m))
        self.built = True

    def update(self, ys, preds, sample_weight):
        """Update with flat lists of targets and predictions in output order."""
        if self.names is None:
            self.bind(["output"] if len(preds) == 1 else
                      [f"output_{i}" for i in range(len(preds))])
        preds = [as_float32(p) if p.dtype in _HALF else p for p in preds]
        if not self.built:
            self.build(ys, preds)
        for i, m in self.metrics[0]:
            m.update_state(ys[i], preds[i].detach())
        for i, m in self.metrics[1]:
            sw = sample_weight[i] if isinstance(sample_weight, list) else sample_weight
            m.update_state(ys[i], preds[i].detach(), sw)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Update with targets and predictions in the model's structures (one tensor, a list
        in output order, or a dict by output name)."""
        preds = tree.flatten(y_pred)
        names = self.names or (["output"] if len(preds) == 1 else
                               [f"output_{i}" for i in range(len(preds))])
        ys = [to_tensor(v, preds[i].device) for i, v in
              enumerate(flatten_named(y_true, names, "target", "compile_metrics", "output"))]
        if isinstance(sample_weight, (list, tuple, dict)):
            sample_weight = flatten_named(sample_weight, names, "sample_weight",
                                          "compile_metrics", "output")
        self.update(ys, preds, sample_weight)

    def result(self):
        return {name: m.result() for name, m in self.named()}

    def reset_state(self):
        for kind in (0, 1):
            for _, m in self.metrics[kind]:
                m.reset_state()

    def named(self):
        """(history name, metric) pairs: `<output>_<metric>` for several outputs."""
        if self.names is None:
            return []
        multi = len(self.names) > 1
        out = []
        for kind in (0, 1):
            for i, m in self.metrics[kind]:
                name = f"{self.names[i]}_{m.name}" if multi else m.name
                out.append((name, m))
        return out


def _leaves(spec):
    if isinstance(spec, dict):
        spec = list(spec.values())
    if isinstance(spec, (list, tuple)):
        return [leaf for v in spec for leaf in _leaves(v)]
    return [] if spec is None else [spec]


class CompileState:
    """Everything `compile` configured, plus the trackers of the running losses.

    A subclassed model's outputs are known only from its first predictions: until then the
    per-output losses and metrics are unbound (`bind_outputs` makes them)."""

    def __init__(self, optimizer, loss, loss_weights, metrics, weighted_metrics, names,
                 jit_compile):
        self.optimizer = optimizer
        self._spec = (loss, loss_weights, metrics, weighted_metrics)
        self.loss = self.names = None
        self.metrics = CompiledMetrics(metrics, weighted_metrics)
        self.loss_tracker = M.Mean(name="loss")
        self.jit_compile = jit_compile
        self.check_finite = False
        self.cache = {}
        if names is not None:
            self.bind_outputs(names)

    def bind_outputs(self, names):
        loss, loss_weights, _, _ = self._spec
        self.loss = CompiledLoss(loss, loss_weights, names)
        self.metrics.bind(names)
        self.names = names

    def bound(self, n_out, names=None):
        """This state, with losses and metrics bound to the outputs when they were not yet:
        to `names` (the model's output names, when it has them), else `output`, `output_1`,
        ... for `n_out` outputs."""
        if self.loss is None:
            self.bind_outputs(names or (
                ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]))
        return self

    def all_metrics(self):
        """(history name, metric) pairs: loss, output losses, each compiled metric."""
        out = [("loss", self.loss_tracker)]
        if self.loss is not None:
            out += [(t.name, t) for t in self.loss.trackers if t is not None]
        return out + self.metrics.named()

    def metric_objects(self):
        """What `model.metrics` lists, in Keras 3's order: the loss tracker, the compiled
        metrics (one `compile_metrics` object, when metrics were compiled), each output's loss
        tracker."""
        out = [self.loss_tracker]
        if any(_leaves(v) for v in self._spec[2:]):
            out.append(self.metrics)
        if self.loss is not None:
            out += [t for t in self.loss.trackers if t is not None]
        return out

    def needs_targets(self):
        """Whether a loss or a metric was compiled (which then needs targets)."""
        loss, _, metrics, weighted = self._spec
        return any(_leaves(v) for v in (loss, metrics, weighted))

    def ordered_names(self, logs):
        """Keras's evaluate order: loss, each output's loss, then the rest sorted."""
        first = ["loss"]
        if self.loss is not None:
            first += [t.name for t in self.loss.trackers if t is not None]
        first = [k for k in first if k in logs]
        return first + sorted(k for k in logs if k not in first)
