"""Closed-form rules: how a layer of a plain chain trains without autograd.

A small MLP step on a CPU costs kernel launches, not arithmetic, and autograd adds its own
bookkeeping to each (a node per operation, an engine that walks them, gradient buffers made and
accumulated one by one). For the layers that define a rule here, the forward pass can keep what
its gradient needs and the backward pass can be written with fewer kernels:

    Dense:       h = act(x @ W + b)      dz = act'(g);  dW = x^T dz;  db = sum(dz);  dx = dz W^T
    Activation:  h = act(x)              dx = act'(g)
    Dropout:     h = x * m               dx = g * m          (m: the scaled keep mask)
    Flatten:     h = x.reshape(n, -1)    dx = g.reshape(x.shape)
    GlobalAveragePooling1D: h = mean_t x dx = g / steps, repeated over the steps
    Embedding:   h = E[ids]              dE = scatter-add of g (first layer only)

Each layer class says for itself when its rule holds (`Layer._closed_form_rule`, next to its
`call`); `Layer._calls_only_call` says when calling the layer runs nothing but that `call` (no
hooks, no activity penalty, no dtype policy, `call` not overridden below the rule). The training
engine (`plexus/training/backprop.py`) strings the rules of a chain together with a loss's
fused rule (`plexus/training/fused_losses.py`), and checks all of this anew at the start of
every `fit`. Autograd through the layers' `call`s is the definition of what these rules
compute: tests/test_backprop.py trains models both ways, including randomly generated ones.
"""
import torch
import torch.nn.functional as F

from plexus import activations


def _set_grad(param, value):
    if param.grad is not value:
        param.grad = value


class Rule:
    """One layer's closed form in a chain.

    `forward(x)` returns `(h, saved)` (h None: this batch needs autograd after all);
    `backward(g, saved, bufs)` sets the `.grad` of the layer's trained weights (into
    `bufs[slot]` when that is a tensor) and returns the gradient with respect to `x`, or None
    when `need_input_grad` is false. `weights` lists the layer's weights in the order of
    `slots`, each weight's position among the model's trainable weights (None: frozen), which
    the engine fills in.
    """

    __slots__ = ("layer", "weights", "slots", "need_input_grad")
    takes_ids = False  # the input holds integer ids (only as a chain's first layer)
    activation = None  # the final activation a loss may absorb (layers that have one)
    units = None  # the size of the output's last axis when the rule knows it

    def __init__(self, layer, weights=()):
        self.layer, self.weights = layer, tuple(weights)
        self.slots = (None,) * len(self.weights)
        self.need_input_grad = True

    def drop_activation(self):
        """Leave the final activation to the loss's fused rule (layers with one)."""
        raise TypeError(f"{type(self).__name__} has no activation to leave to the loss.")


class _Activated(Rule):
    """A rule that ends with one of the activations of `activations.backward_rule`."""

    __slots__ = ("activation", "fwd", "bwd")

    def drop_activation(self):
        self.fwd = self.bwd = None

    @classmethod
    def make(cls, layer, weights=()):
        """The rule for `layer` (its `activation` applied last), or None when that activation
        has no backward rule."""
        act = layer.activation
        rule = activations.backward_rule(act)
        if rule is None:
            return None  # no rule for this activation: autograd
        self = cls(layer, weights)
        self.activation, (self.fwd, self.bwd) = act, rule
        return self


class DenseRule(_Activated):
    __slots__ = ("kernel", "bias", "units")

    def __init__(self, layer, weights):
        super().__init__(layer, weights)
        self.kernel, self.bias = weights if len(weights) == 2 else (weights[0], None)
        self.units = layer.units

    def forward(self, x):
        h = torch.addmm(self.bias, x, self.kernel) if self.bias is not None \
            else torch.mm(x, self.kernel)
        if self.fwd is not None:
            h = self.fwd(h)  # (h is fresh: in place is safe)
        return h, (x, h)

    def backward(self, g, saved, bufs):
        x, h = saved
        if self.bwd is not None:
            g = self.bwd(g, h)
        i = self.slots[0]
        if i is not None:
            # (a packed buffer's view stays in place: `_set_grad` then sets nothing)
            _set_grad(self.kernel, torch.mm(x.t(), g) if bufs[i] is None
                      else torch.mm(x.t(), g, out=bufs[i]))
        bias = self.bias
        if bias is not None:
            i = self.slots[1]
            if i is not None:
                _set_grad(bias, torch.sum(g, 0) if bufs[i] is None
                          else torch.sum(g, 0, out=bufs[i]))
        return F.linear(g, self.kernel) if self.need_input_grad else None  # g @ kernel^T


class ActivationRule(_Activated):
    __slots__ = ()

    def forward(self, x):
        if self.fwd is None:
            return x, None
        h = self.fwd(x) if self.fwd is activations._softmax_last else self.fwd(x.clone())
        return h, h

    def backward(self, g, saved, bufs):
        if not self.need_input_grad:
            return None
        return g if self.bwd is None else self.bwd(g, saved)


class DropoutRule(Rule):
    __slots__ = ()

    def forward(self, x):
        rate = self.layer.rate  # (read per batch: a callback may change it during a fit)
        if not rate:
            return x, None
        if rate >= 1:
            return None, None  # F.dropout gives zeros; the scaled mask would be 0/0
        # the scaled keep mask, drawn as `F.dropout` draws it on the contiguous tensor the
        # layer's call receives (the same random numbers in the same places, whatever the
        # strides of `x`: a softmax here may leave a transposed view)
        mask = torch.empty_like(x, memory_format=torch.contiguous_format) \
            .bernoulli_(1 - rate).div_(1 - rate)
        return x * mask, mask

    def backward(self, g, mask, bufs):
        if not self.need_input_grad:
            return None
        return g if mask is None else g * mask


class FlattenRule(Rule):
    __slots__ = ()

    def forward(self, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, g, shape, bufs):
        return g.reshape(shape) if self.need_input_grad else None


class StepMeanRule(Rule):
    """The mean over axis 1 of a `(batch, steps, channels)` input."""

    __slots__ = ()

    def forward(self, x):
        return x.mean(1), x.shape

    def backward(self, g, shape, bufs):
        if not self.need_input_grad:
            return None
        return (g / shape[1]).unsqueeze(1).expand(shape)


class EmbeddingRule(Rule):
    __slots__ = ("table",)
    takes_ids = True

    def __init__(self, layer, table):
        super().__init__(layer, (table,))
        self.table = table

    def forward(self, ids):
        try:
            return F.embedding(ids, self.table), ids
        except IndexError:
            return None, None  # an id out of range: the layer's own call explains it

    def backward(self, g, ids, bufs):
        if self.slots[0] is not None:
            _set_grad(self.table, torch.ops.aten.embedding_dense_backward(
                g, ids, self.table.shape[0], -1, False))
        return None  # (the input is integer ids)
