"""The closed-form training step: a plain chain of layers trained without autograd.

A small MLP step on a CPU costs kernel launches, not arithmetic, and autograd adds its own
bookkeeping to each. When every layer of a single-input, single-output chain has a closed-form
rule (`Layer._closed_form_rule`, see `plexus/layers/closed_form.py`) and the one compiled loss
has a fused rule with the final activation (`LossFunctionWrapper._fused_rule`, see
`fused_losses.py`), the default `train_step` runs those rules instead:

    forward:   h_i, saved_i = rule_i.forward(h_{i-1})          (last activation left to the loss)
    loss:      value, dL/dz = fused(z, y)                        e.g. softmax + cross-entropy
    backward:  g = rule_i.backward(g, saved_i)                   sets each weight's `.grad`

The gradients go straight into the optimizer's packed gradient buffer when it has one (see
`packing.py`), and `optimizer.step()` applies them as it applies autograd's.

This module holds no rule of its own: it only strings together the rules the layers and the
loss give, after checking that nothing else would happen in the autograd step. `plan` runs at
the start of every `fit` (and `train_on_batch`), so every change made between two fits is seen:
hooks (the layers', the model's, global ones), weight and activity regularizers, losses
recorded with `add_loss`, masks, dtypes and dtype policies, trainable flags, an overridden
`train_step`/`compute_loss`/`call`, `run_eagerly`, loss scaling, gradient hooks of the user's
on the weights, and a torch process group other than a `plexus.distribution`'s. Module
hooks are checked again on every batch (a callback may add one in the middle of a fit). Weight
constraints apply after the update either way. Anything else trains through autograd, the
definition of correctness: tests/test_backprop.py and tests/test_backprop_rules.py train models
both ways, randomly generated ones included, and compare losses and weights.
"""
import torch

from plexus.distribution import runtime as distributed
from plexus.layers.layer import any_hooks
from plexus.training.optimizers import Optimizer
from plexus.training.nograd import no_grad


def plan(model, st, params):
    """A `Chain` that trains `model` without autograd, or None when something in the model,
    its compile settings or the process asks for autograd."""
    if not _model_allows(model, st, params):
        return None
    steps = model._steps
    if steps.uses_masks or not steps:
        return None
    index = {id(p): i for i, p in enumerate(params)}
    rules, slot, seen, covered = [], 0, set(), set()
    for step in steps:
        layer = step.layer
        if (not step.single or len(step.out_slots) != 1 or step.template[0][0].i != slot
                or id(layer) in seen or not layer._calls_only_call()):
            return None
        seen.add(id(layer))
        slot = step.out_slots[0]
        rule = layer._closed_form_rule(len(step.node.input_tensors[0].shape))
        if rule is None or (rule.takes_ids and rules):
            return None  # (a layer taking ids only first: its input is the model's)
        if rule.weights:
            slots = tuple([index.get(id(w)) for w in rule.weights])
            for w, i in zip(rule.weights, slots):
                if w.requires_grad != (i is not None):
                    return None  # a weight trains that the model does not list, or the reverse
                if i is not None:
                    covered.add(i)
            rule.slots = slots
        rules.append(rule)
    if slot != model._output_slots[0] or covered != set(range(len(params))):
        return None  # the chain is not the whole model, or some weight trains outside it
    loss = st.loss.losses[0]
    fused = getattr(loss, "_fused_rule", None)
    fused = fused() if fused is not None else None
    if fused is None:
        return None
    last = rules[-1]
    if fused.absorbs is not None:
        if last.activation is not fused.absorbs:
            return None  # e.g. cross-entropy on a linear output: the loss's own code
        last.drop_activation()  # the loss rule computes the final activation
    need = False  # a layer's input gradient is needed when a layer before it trains
    for rule in rules:
        rule.need_input_grad = need
        need = need or any(i is not None for i in rule.slots)
    weight = st.loss.weights[0]
    return Chain(rules, fused, 1.0 if weight is None else weight, params, st.optimizer,
                 len(model.inputs[0].shape), model)


def _model_allows(model, st, params):
    """The checks that concern the model, its compile settings and the process."""
    plain = getattr(model, "_plain_call", None)  # no override of call/forward, no hooks
    if plain is None or not plain() or not model._runs_default_step("train"):
        return False
    if st.cache.get("regs") or len(model.inputs) != 1 \
            or len(model.outputs) != 1:
        return False
    if not params or st.loss is None or len(st.loss.losses) != 1:
        return False
    if getattr(st.optimizer, "loss_scale_factor", None) is not None:
        return False  # the update expects gradients of the scaled loss
    if type(st.optimizer).scale_loss is not Optimizer.scale_loss:
        return False  # loss scaling (LossScaleOptimizer): the gradients must come scaled
    if distributed.current() is None and _process_group():
        return False  # someone else's process group (DDP): its reduction hooks need autograd
    # (a plexus distribution averages the gradients at the update however they were computed,
    # and `steps.prepare_training` asks it, `allows_fast_paths`, whether the closed form may
    # run at all; the user's own gradient hooks on the weights still need autograd)
    return not _tensor_hooks(params)


def _process_group():
    """Whether a torch process group is initialised (e.g. for `DistributedDataParallel`):
    its gradient reduction hooks run only in autograd."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _tensor_hooks(params):
    """Whether a weight has a gradient hook of its own (`register_hook`,
    `register_post_accumulate_grad_hook`): autograd runs those, the closed form would not.
    The overlap hooks of a `plexus.distribution` distribution do not count: the optimizer's
    step averages the gradients they did not see."""
    own = distributed.own_gradient_hook
    for p in params:
        if p._backward_hooks:
            return True
        post = getattr(p, "_post_accumulate_grad_hooks", None)
        if post and not all(own(k) for k in post):
            return True
    return False


class Chain:
    """Forward, loss and gradients of a chain of closed-form rules."""

    def __init__(self, rules, loss, weight, params, optimizer, in_rank=2, model=None):
        self.rules, self.loss, self.weight, self.params = rules, loss, weight, params
        # checked on every batch too: a callback may add a hook in the middle of a fit
        self.watched = [r.layer for r in rules] + ([model] if model is not None else [])
        self.in_rank, self.ids = in_rank, rules[0].takes_ids
        self.units = rules[-1].units
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

    @no_grad
    def __call__(self, xs, ys, sw=None):
        """`(total, [value], [prediction])` for the batch, with every weight's `.grad` set;
        None when this batch needs autograd (another dtype or shape than planned for)."""
        if any_hooks(self.watched):
            return None  # the hook must see the call: autograd
        h = xs[0]
        if h.dim() != self.in_rank or (h.is_floating_point() if self.ids
                                       else h.dtype != torch.float32):
            return None
        n = h.shape[0]
        y = self.loss.targets(ys[0], n, self.units)
        if y is None:
            return None
        if isinstance(sw, (list, tuple)):
            sw = sw[0]
        if sw is not None:
            if sw.dim() == 2 and sw.shape[1] == 1:
                sw = sw[:, 0]
            if tuple(sw.shape) != (n,) or not sw.is_floating_point():
                return None  # per-time-step weights and the like: autograd
            sw = sw.to(torch.float32)
        saved = []
        for rule in self.rules:
            h, s = rule.forward(h)
            if h is None:
                return None
            saved.append(s)
        if not self.loss.fits(h, y):
            return None  # the autograd path explains the mismatch
        value, grad, pred = self.loss.loss(h, y, self.weight) if sw is None \
            else self.loss.weighted(h, y, sw, self.weight)
        if value is None:
            return None  # e.g. a class id out of range: the loss's own code says what is wrong
        bufs = self._grad_buffers()
        for rule, s in zip(reversed(self.rules), reversed(saved)):
            grad = rule.backward(grad, s, bufs)
            if grad is None:
                break  # no layer before this one trains
        total = value if self.weight == 1.0 else value * self.weight
        return total, [value], [pred]
