"""torch's fused recurrent kernels as custom ops, for `torch.compile`.

Traced by the compiler, `aten.lstm` & co. are unrolled over every time step (minutes of
compiling for 100 steps) and their sequence length specialized. Under `torch.compile` plexus
calls them through `plexus::fused_rnn` instead: one opaque op with a shape-only fake
implementation, so `torch.compile(model, fullgraph=True)` traces recurrent models in one graph
whatever their length. Its gradient is another opaque op, which runs the kernel again with
autograd on (recomputation: the op keeps no activations between forward and backward).

Eager calls (`fit`, `predict`) run torch's kernels directly, without these ops.
"""
from typing import List

import torch
from torch import Tensor, _VF

_AUTOGRAD_KEYS = (torch._C.DispatchKeySet(torch._C.DispatchKey.AutogradFunctionality)
                  | torch._C.DispatchKeySet(torch._C.DispatchKey.ADInplaceOrView))
_KERNELS = {"lstm": _VF.lstm, "gru": _VF.gru, "rnn_tanh": _VF.rnn_tanh, "rnn_relu": _VF.rnn_relu}


def _run(mode, x, hx, params, has_bias, train, bidirectional):
    state = tuple(hx) if mode == "lstm" else hx[0]
    out = _KERNELS[mode](x, state, params, has_bias, 1, 0.0, train, bidirectional, True)
    return list(out)


@torch.library.custom_op("plexus::fused_rnn", mutates_args=())
def fused_rnn(mode: str, x: Tensor, hx: List[Tensor], params: List[Tensor], has_bias: bool,
              train: bool, bidirectional: bool) -> List[Tensor]:
    """`[sequence, h_n]` (and `c_n` for an LSTM) of torch's fused kernel `mode`, batch first,
    one layer."""
    return _fresh(_run(mode, x, hx, params, has_bias, train, bidirectional), (x, *hx, *params))


@fused_rnn.register_fake
def _(mode, x, hx, params, has_bias, train, bidirectional):
    units = hx[0].shape[-1] * (2 if bidirectional else 1)
    seq = x.new_empty((x.shape[0], x.shape[1], units))
    return [seq] + [h.new_empty(h.shape) for h in hx]


def _fresh(outs, inputs):
    """A custom op's outputs may not alias its inputs, and must be contiguous as its shape
    function promises (batch-first outputs of the kernels are transposed views)."""
    return [t.clone() if any(t is a for a in inputs) else t.contiguous() for t in outs]


def _recomputed_grads(run, tensors, grads):
    """Gradients with respect to `tensors` of `run(*leaves)` (the kernel run again), for
    the backward custom ops: their implementation runs below autograd (its dispatch keys
    excluded), so the recomputation is let record its graph again."""
    excluded = torch._C._dispatch_tls_local_exclude_set() - _AUTOGRAD_KEYS
    with torch._C._ForceDispatchKeyGuard(torch._C._dispatch_tls_local_include_set(), excluded), \
            torch.enable_grad():
        leaves = [t.detach().requires_grad_(True) for t in tensors]
        found = torch.autograd.grad(run(leaves), leaves, [g.contiguous() for g in grads],
                                    allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(found, leaves)]


@torch.library.custom_op("plexus::fused_rnn_backward", mutates_args=())
def fused_rnn_backward(mode: str, x: Tensor, hx: List[Tensor], params: List[Tensor],
                       has_bias: bool, bidirectional: bool, grads: List[Tensor]) -> List[Tensor]:
    """Gradients `[d_x, *d_hx, *d_params]` of `fused_rnn`, by running the kernel again."""
    n = len(hx)
    return _recomputed_grads(
        lambda v: _run(mode, v[0], v[1:1 + n], v[1 + n:], has_bias, True, bidirectional),
        (x, *hx, *params), grads)


@fused_rnn_backward.register_fake
def _(mode, x, hx, params, has_bias, bidirectional, grads):
    return [t.new_empty(t.shape) for t in (x, *hx, *params)]


def _setup_context(ctx, inputs, output):
    mode, x, hx, params, has_bias, _, bidirectional = inputs
    ctx.mode, ctx.has_bias, ctx.n_hx, ctx.bidirectional = mode, has_bias, len(hx), bidirectional
    ctx.save_for_backward(x, *hx, *params)


def _backward(ctx, grads):
    saved = ctx.saved_tensors
    n = ctx.n_hx
    x, hx, params = saved[0], list(saved[1:1 + n]), list(saved[1 + n:])
    seq_shape = (x.shape[0], x.shape[1], hx[0].shape[-1] * (2 if ctx.bidirectional else 1))
    shapes = [seq_shape] + [h.shape for h in hx]
    grads = [x.new_zeros(shape) if g is None else g for g, shape in zip(grads, shapes)]
    found = fused_rnn_backward(ctx.mode, x, hx, params, ctx.has_bias, ctx.bidirectional,
                               list(grads))
    return None, found[0], found[1:1 + n], found[1 + n:], None, None, None


fused_rnn.register_autograd(_backward, setup_context=_setup_context)


# A packed batch (`data`, `batch_sizes`): a masked LSTM that returns its cell state. The op keeps
# the kernel out of the trace; reading the lengths before it is a graph break of its own.
def _run_packed(mode, data, batch_sizes, hx, params, has_bias, train):
    state = tuple(hx) if mode == "lstm" else hx[0]
    return list(_KERNELS[mode](data, batch_sizes, state, params, has_bias, 1, 0.0, train, False))


@torch.library.custom_op("plexus::fused_rnn_packed", mutates_args=())
def fused_rnn_packed(mode: str, data: Tensor, batch_sizes: Tensor, hx: List[Tensor],
                     params: List[Tensor], has_bias: bool, train: bool) -> List[Tensor]:
    """`[packed_outputs, h_n]` (and `c_n`) of torch's fused kernel over a packed batch."""
    return _fresh(_run_packed(mode, data, batch_sizes, hx, params, has_bias, train),
                  (data, *hx, *params))


@fused_rnn_packed.register_fake
def _(mode, data, batch_sizes, hx, params, has_bias, train):
    return [data.new_empty((data.shape[0], hx[0].shape[-1]))] + [h.new_empty(h.shape) for h in hx]


@torch.library.custom_op("plexus::fused_rnn_packed_backward", mutates_args=())
def fused_rnn_packed_backward(mode: str, data: Tensor, batch_sizes: Tensor, hx: List[Tensor],
                              params: List[Tensor], has_bias: bool,
                              grads: List[Tensor]) -> List[Tensor]:
    """Gradients `[d_data, *d_hx, *d_params]` of `fused_rnn_packed`, by running it again."""
    n = len(hx)
    return _recomputed_grads(
        lambda v: _run_packed(mode, v[0], batch_sizes, v[1:1 + n], v[1 + n:], has_bias, True),
        (data, *hx, *params), grads)


@fused_rnn_packed_backward.register_fake
def _(mode, data, batch_sizes, hx, params, has_bias, grads):
    return [t.new_empty(t.shape) for t in (data, *hx, *params)]


def _setup_packed(ctx, inputs, output):
    mode, data, batch_sizes, hx, params, has_bias, _ = inputs
    ctx.mode, ctx.has_bias, ctx.n_hx = mode, has_bias, len(hx)
    ctx.save_for_backward(data, batch_sizes, *hx, *params)


def _backward_packed(ctx, grads):
    saved = ctx.saved_tensors
    n = ctx.n_hx
    data, batch_sizes, hx, params = saved[0], saved[1], list(saved[2:2 + n]), list(saved[2 + n:])
    shapes = [(data.shape[0], hx[0].shape[-1])] + [h.shape for h in hx]
    grads = [data.new_zeros(shape) if g is None else g for g, shape in zip(grads, shapes)]
    found = fused_rnn_packed_backward(ctx.mode, data, batch_sizes, hx, params, ctx.has_bias,
                                      list(grads))
    return None, found[0], None, found[1:1 + n], found[1 + n:], None, None


fused_rnn_packed.register_autograd(_backward_packed, setup_context=_setup_packed)
