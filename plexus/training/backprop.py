"""Backpropagation written out for chains of Dense layers: a training step without autograd.

A small MLP step on a CPU costs kernel launches, not arithmetic, and autograd adds its own
bookkeeping to each: a node per operation, an engine that walks them, gradient buffers made and
accumulated one by one. For a model that is a plain chain of `Dense` (and `Activation`,
`Dropout`, `Flatten`, and a first `Embedding` with `GlobalAveragePooling1D`) layers trained on
one of the common losses, the gradients have a closed form that needs fewer kernels than
autograd runs, so `train_step` computes them directly:

    forward:   h_i = act_i(h_{i-1} @ W_i + b_i)              (kept for the backward pass)
    loss:      softmax + cross-entropy as one rule: dL/dz = (p * sum(y) - y) * w / N
    backward:  g = act_i'(g);  dW_i = h_{i-1}^T g;  db_i = sum(g);  g = g W_i^T

The gradients are written straight into the optimizer's packed gradient buffer when it has one
(see `packing.py`), so the update does not copy them either. `plan` decides once per `fit`
whether a model qualifies; anything else (other layers, branches, masks, regularizers,
per-time-step sample weights, forward hooks, other losses or dtypes) trains through autograd
as before, and both ways give the same numbers (tests/test_backprop.py checks them against
each other).
"""
import torch
import torch.nn.functional as F

from plexus import activations as A
from plexus.training import losses as L
from plexus.training.optimizers import Optimizer

_aten = torch.ops.aten


def _threshold(g, a):
    return _aten.threshold_backward.default(g, a, 0)


# activation -> (in-place forward, backward from the activation's output)
_ACTIVATIONS = {
    A.linear: (None, None),
    A.relu: (torch.relu_, _threshold),
    A.sigmoid: (torch.sigmoid_, _aten.sigmoid_backward.default),
    A.tanh: (torch.tanh_, _aten.tanh_backward.default),
}
_LOSSES = {L.categorical_crossentropy: "categorical", L.sparse_categorical_crossentropy: "sparse",
           L.binary_crossentropy: "binary", L.mean_squared_error: "mse"}


def _softmax_last(z, log=False):
    """(log_)softmax over the last axis. torch's CPU kernel is several times slower over a
    last axis shorter than 16 than over the same memory read as a first axis."""
    fn = torch.log_softmax if log else torch.softmax
    if z.dim() == 2 and z.shape[-1] < 16 and z.shape[0] >= 32 and z.device.type == "cpu":
        return fn(z.t(), 0).t()
    return fn(z, -1)


class _Op:
    __slots__ = ("kind", "layer", "act", "fwd", "bwd", "rate", "wi", "bi", "need_input_grad",
                 "kernel", "bias")


def plan(model, st, params):
    """A `Chain` that trains `model` without autograd, or None when the model does not
    qualify."""
    plain = getattr(model, "_plain_call", None)
    if plain is None or not plain():
        return None
    if st.jit_compile or st.cache.get("regs") or len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    if not params or st.loss is None or len(st.loss.losses) != 1 or _hooked(model) or _global_hooks():
        return None
    if getattr(st.optimizer, "loss_scale_factor", None) is not None:
        return None  # the update expects gradients of the scaled loss
    if type(st.optimizer).scale_loss is not Optimizer.scale_loss:
        return None  # loss scaling (LossScaleOptimizer): the gradients must come scaled
    steps = model._steps
    if steps.uses_masks or not steps:
        return None
    index = {id(p): i for i, p in enumerate(params)}
    ops, slot, seen = [], 0, set()
    for step in steps:
        layer = step.layer
        if (not step.single or len(step.out_slots) != 1 or step.template[0][0].i != slot
                or id(layer) in seen or _hooked(layer)
                or getattr(layer, "compute_dtype", "float32") != "float32"
                or getattr(layer, "activity_regularizer", None) is not None
                or layer.__dict__.get("_losses")):
            return None
        seen.add(id(layer))
        slot = step.out_slots[0]
        op = _op_for(layer, len(step.node.input_tensors[0].shape), index)
        if op is None or (op.kind == "embedding" and ops):
            return None  # (an Embedding only as the first layer: its input is the model's)
        ops.append(op)
    if slot != model._output_slots[0]:
        return None
    if {i for op in ops for i in (op.wi, op.bi) if i is not None} != set(range(len(params))):
        return None  # some trainable weight lives outside the chain
    loss = _loss_rule(st.loss.losses[0], ops[-1])
    if loss is None:
        return None
    need = False  # a layer's input gradient is needed when a layer before it trains
    fused = loss[0] != "mse"  # the final activation and the loss form one rule
    for n, op in enumerate(ops):
        op.need_input_grad = need
        need = need or op.wi is not None or op.bi is not None
        if fused and n == len(ops) - 1:
            op.fwd = op.bwd = None  # the loss rule covers the final activation
    weight = st.loss.weights[0]
    return Chain(ops, loss, 1.0 if weight is None else weight, params, st.optimizer,
                 len(model.inputs[0].shape), ids=ops[0].kind == "embedding")


def _op_for(layer, in_rank, index):
    """The `_Op` for one layer of the chain (`index`: trainable weight id -> position), or
    None when the layer has no rule here."""
    from plexus.layers.core import Activation, Dense, Dropout, Embedding, Flatten
    from plexus.layers.pooling import GlobalAveragePooling1D
    op = _Op()
    op.layer, op.wi, op.bi, op.act, op.rate = layer, None, None, None, 0.0
    op.kernel = op.bias = None
    if type(layer) is Dense:
        if in_rank != 2 or layer.kernel.dtype != torch.float32:
            return None
        op.kind, op.act = "dense", layer.activation
        op.kernel, op.bias = layer.kernel, layer.bias  # the Parameters (their data may move)
        op.wi = index.get(id(layer.kernel))
        op.bi = index.get(id(layer.bias)) if layer.bias is not None else None
        if layer.kernel.requires_grad != (op.wi is not None) or (
                layer.bias is not None and layer.bias.requires_grad != (op.bi is not None)):
            return None
    elif type(layer) is Activation:
        op.kind, op.act = "act", layer.activation
    elif type(layer) is Dropout and layer.noise_shape is None:
        op.kind, op.rate = "dropout", float(layer.rate)
    elif type(layer) is Flatten and (layer.data_format == "channels_last" or in_rank <= 2):
        op.kind = "flatten"
    elif (type(layer) is GlobalAveragePooling1D and layer.data_format == "channels_last"
          and not layer.keepdims and in_rank == 3):
        op.kind = "mean"
    elif type(layer) is Embedding and not layer.mask_zero:
        if layer.embeddings.dtype != torch.float32:
            return None
        op.kind, op.kernel = "embedding", layer.embeddings
        op.wi = index.get(id(layer.embeddings))
        if layer.embeddings.requires_grad != (op.wi is not None):
            return None
    else:
        return None
    if op.act is A.softmax:
        op.fwd, op.bwd = _softmax_last, _softmax_backward
    elif op.act is not None:
        if op.act not in _ACTIVATIONS:
            return None
        op.fwd, op.bwd = _ACTIVATIONS[op.act]
    else:
        op.fwd = op.bwd = None
    return op


def _hooked(module):
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or getattr(module, "_backward_pre_hooks", None))


def _global_hooks():
    m = torch.nn.modules.module
    return bool(getattr(m, "_global_forward_hooks", None)
                or getattr(m, "_global_forward_pre_hooks", None))


def _loss_rule(loss, last):
    """`(kind, from_logits, label_smoothing)` when the loss and the last layer's activation
    have a rule here, else None."""
    kind = _LOSSES.get(getattr(loss, "fn", None))
    if kind is None or not isinstance(loss, L.LossFunctionWrapper) or type(loss).call is not \
            L.LossFunctionWrapper.call or type(loss).__call__ is not L.Loss.__call__:
        return None
    kw = dict(loss._fn_kwargs)
    from_logits = bool(kw.pop("from_logits", False))
    smoothing = float(kw.pop("label_smoothing", 0.0) or 0.0)
    if (loss.reduction not in ("sum_over_batch_size", "mean") or kw.pop("axis", -1) != -1
            or kw.pop("ignore_class", None) is not None or kw):
        return None
    if kind == "mse":
        return kind, False, 0.0
    if kind == "sparse" and smoothing:
        return None
    final = A.sigmoid if kind == "binary" else A.softmax
    if last.kind == "dropout" or last.act is not (A.linear if from_logits else final):
        return None
    return kind, from_logits, smoothing


def _picked(log_p, idx):
    """`log_p` at the class ids `idx`, or None when an id is out of range."""
    try:
        return log_p.gather(1, idx)
    except (IndexError, RuntimeError):
        return None


def _softmax_backward(g, p):
    return _aten._softmax_backward_data.default(g, p, -1, p.dtype)


class Chain:
    """Forward, loss and gradients of a chain of layers, computed without autograd."""

    def __init__(self, ops, loss, weight, params, optimizer, in_rank=2, ids=False):
        self.ops, self.loss, self.weight, self.params = ops, loss, weight, params
        self.in_rank, self.ids = in_rank, ids  # ids: the input holds an Embedding's ids
        self.optimizer = optimizer
        self._bufs = (None, None)

    def _grad_buffers(self):
        """Where each weight's gradient goes: its view of the optimizer's packed gradient
        buffer, or None (a fresh tensor)."""
        pk = getattr(self.optimizer, "_packing", None)
        if pk is None or not pk.active or not pk.intact():
            return [None] * len(self.params)
        if self._bufs[0] is not pk:
            self._bufs = (pk, [pk.grad_view(i) for i in range(len(self.params))])
        return self._bufs[1]

    @torch.no_grad()
    def __call__(self, xs, ys, sw=None):
        """`(total, [value], [prediction])` for the batch, with every weight's `.grad` set;
        None when this batch needs autograd (another dtype or shape than planned for)."""
        h = xs[0]
        if h.dim() != self.in_rank or (h.is_floating_point() if self.ids
                                       else h.dtype != torch.float32):
            return None
        out = self._check_targets(ys[0], h.shape[0])
        if out is None:
            return None
        if isinstance(sw, (list, tuple)):
            sw = sw[0]
        if sw is not None:
            if sw.dim() == 2 and sw.shape[1] == 1:
                sw = sw[:, 0]
            if tuple(sw.shape) != (h.shape[0],) or not sw.is_floating_point():
                return None  # per-time-step weights and the like: autograd
            sw = sw.to(torch.float32)
        saved = []
        for op in self.ops:
            x = h
            if op.kind == "dense":
                h = torch.addmm(op.bias, x, op.kernel) if op.bias is not None \
                    else torch.mm(x, op.kernel)
                if op.fwd is not None:
                    h = op.fwd(h)  # in place: h is fresh
            elif op.kind == "act":
                if op.fwd is not None:
                    h = op.fwd(h) if op.fwd is _softmax_last else op.fwd(h.clone())
            elif op.kind == "flatten":
                h = h.reshape(h.shape[0], -1)
            elif op.kind == "mean":
                h = h.mean(1)
            elif op.kind == "embedding":
                try:
                    h = F.embedding(x, op.kernel)
                except IndexError:
                    return None  # an id out of range: the layer itself explains it
            elif op.rate:
                x = torch.empty_like(x).bernoulli_(1 - op.rate).div_(1 - op.rate)  # the mask
                h = h * x
            saved.append((x, h))
        if self.loss[0] != "sparse" and out.shape != h.shape:
            return None  # the autograd path explains the mismatch
        value, grad, pred = self._loss(h, out) if sw is None else self._weighted_loss(h, out, sw)
        if value is None:
            return None  # a class id out of range: the autograd path's loss says what is wrong
        self._backward(saved, grad)
        total = value if self.weight == 1.0 else value * self.weight
        return total, [value], [pred]

    def _check_targets(self, y, n):
        kind, _, smoothing = self.loss
        last = self.ops[-1]
        units = last.layer.units if last.kind == "dense" else None
        if kind == "sparse":
            if y.dim() == 2 and y.shape[-1] == 1:
                y = y.squeeze(-1)
            return y.long() if tuple(y.shape) == (n,) else None
        if y.dim() == 1 and units == 1:
            y = y.unsqueeze(-1)
        if y.dim() != 2 or y.shape[0] != n or (units is not None and y.shape[1] != units):
            return None
        if y.dtype != torch.float32:
            y = y.to(torch.float32)
        if smoothing:
            k = y.shape[-1] if kind == "categorical" else 2
            y = y * (1.0 - smoothing) + smoothing / k
        return y

    def _loss(self, z, y):
        """(unweighted loss, its gradient with respect to `z` scaled by the loss weight, the
        prediction)."""
        kind, from_logits, _ = self.loss
        n = z.shape[0]
        w = self.weight
        if kind in ("categorical", "sparse"):
            log_p = _softmax_last(z, log=True)
            p = log_p.exp()
            if kind == "categorical":
                value = torch.mul(log_p, y).sum().mul_(-1.0 / n)
                # d/dz of -sum(y * log_softmax(z)) is p * sum(y) - y (targets need not sum to 1)
                grad = torch.addcmul(y, p, y.sum(-1, keepdim=True), value=-1).mul_(-w / n)
            else:
                idx = y.unsqueeze(1)
                picked = _picked(log_p, idx)
                if picked is None:
                    return None, None, None
                value = picked.sum().mul_(-1.0 / n)
                grad = p.mul(w / n).scatter_add_(
                    1, idx, torch.full((n, 1), -w / n, dtype=z.dtype, device=z.device))
            return value, grad, (z if from_logits else p)
        scale = w / max(z.numel(), 1)
        if kind == "binary":
            value = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
            p = torch.sigmoid(z)
            return value, torch.sub(p, y).mul_(scale), (z if from_logits else p)
        diff = torch.sub(z, y)  # mean squared error on the final output
        value = diff.square().mean()
        return value, diff.mul_(2 * scale), z

    def _weighted_loss(self, z, y, sw):
        """`_loss` with a weight per sample (`sw`, shape `(batch,)`): the weighted sum of the
        per-sample losses divided by the batch size, as Keras's `sum_over_batch_size` does."""
        kind, from_logits, _ = self.loss
        n = z.shape[0]
        pred = z
        if kind in ("categorical", "sparse"):
            log_p = _softmax_last(z, log=True)
            p = log_p.exp()
            if kind == "categorical":
                per = torch.mul(log_p, y).sum(-1).neg_()
                grad = torch.addcmul(y, p, y.sum(-1, keepdim=True), value=-1).neg_()
            else:
                idx = y.unsqueeze(1)
                picked = _picked(log_p, idx)
                if picked is None:
                    return None, None, None
                per = picked.squeeze(1).neg_()
                grad = p.clone().scatter_add_(
                    1, idx, torch.full((n, 1), -1.0, dtype=z.dtype, device=z.device))
            pred = z if from_logits else p
        elif kind == "binary":
            per = F.binary_cross_entropy_with_logits(z, y, reduction="none").mean(-1)
            p = torch.sigmoid(z)
            grad = torch.sub(p, y).div_(z.shape[-1])
            pred = z if from_logits else p
        else:
            diff = torch.sub(z, y)
            per = diff.square().mean(-1)
            grad = diff.mul_(2.0 / z.shape[-1])
        value = torch.dot(per, sw) / n
        return value, grad.mul_((sw * (self.weight / n)).unsqueeze(1)), pred

    def _backward(self, saved, g):
        params = self.params
        bufs = self._grad_buffers()
        for op, (x, h) in zip(reversed(self.ops), reversed(saved)):
            if op.bwd is not None:
                g = op.bwd(g, h)
            if op.kind == "embedding":
                if op.wi is not None:
                    params[op.wi].grad = torch.ops.aten.embedding_dense_backward(
                        g, x, op.kernel.shape[0], -1, False)
                break  # (always the first layer)
            if op.kind == "dense":
                i = op.wi
                if i is not None:
                    grad = torch.mm(x.t(), g) if bufs[i] is None \
                        else torch.mm(x.t(), g, out=bufs[i])
                    if params[i].grad is not grad:
                        params[i].grad = grad
                i = op.bi
                if i is not None:
                    grad = torch.sum(g, 0) if bufs[i] is None else torch.sum(g, 0, out=bufs[i])
                    if params[i].grad is not grad:
                        params[i].grad = grad
            if not op.need_input_grad:
                break  # no layer before this one trains
            if op.kind == "dense":
                g = F.linear(g, op.kernel)  # g @ kernel^T
            elif op.kind == "dropout" and op.rate:
                g = g * x
            elif op.kind == "flatten":
                g = g.reshape(x.shape)
            elif op.kind == "mean":
                g = (g / x.shape[1]).unsqueeze(1).expand(x.shape)

