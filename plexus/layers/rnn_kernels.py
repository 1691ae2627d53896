"""Running a recurrent cell over a sequence: torch's fused kernels, and a Python loop fallback.

Masked steps follow Keras: a masked step leaves the states unchanged and its output repeats the
previous step's output (zeros before the first unmasked step). A step that changes nothing is the
same as a step that is not there, so for the fused kernels the unmasked steps of every sequence
are moved to the front (a stable sort), the kernel runs once over the whole batch, and each
step's output is gathered from the last unmasked step up to it. Only a masked LSTM that must
return its final cell state runs as a packed batch, which stops each sequence in time.
"""
import torch
from torch import _VF
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from plexus.graph import tree



def _opaque(mode, kernel):
    """`kernel`, which `torch.compile` sees as one custom op (`plexus::fused_rnn`, or
    `plexus::fused_rnn_packed` for a packed batch; see `plexus/layers/rnn_ops.py`): traced,
    the recurrence would be unrolled over every time step, minutes of compiling for 100
    steps. `torch.export` traces torch's own op (`aten.lstm`, which ONNX and
    `torch.export.load` know without plexus)."""
    def call(*args):
        if not torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return kernel(*args)
        from plexus.layers import rnn_ops
        if not isinstance(args[3], bool):  # packed: (data, batch_sizes, hx, params, ...)
            data, batch_sizes, hx, params, has_bias, _, _, train, _ = args
            hx = list(hx) if isinstance(hx, tuple) else [hx]
            return tuple(rnn_ops.fused_rnn_packed(mode, data, batch_sizes, hx, list(params),
                                                  has_bias, train))
        x, hx, params, has_bias, _, _, train, bidirectional, _ = args
        hx = list(hx) if isinstance(hx, tuple) else [hx]
        return tuple(rnn_ops.fused_rnn(mode, x, hx, list(params), has_bias, train,
                                       bidirectional))
    return call


_FUSED = {mode: _opaque(mode, kernel) for mode, kernel in (
    ("lstm", _VF.lstm), ("gru", _VF.gru), ("rnn_tanh", _VF.rnn_tanh), ("rnn_relu", _VF.rnn_relu))}


def _kernel_train_flag():
    # cuDNN can only differentiate a kernel run in training mode; it has no dropout here.
    return torch.is_grad_enabled()


def run_fused(mode, params, x, states, mask=None, need_states=True):
    """Run fused kernel `mode` over `x` `(batch, time, features)` from `states` (list of
    `(batch, units)`); `mask` is a bool `(batch, time)` or None. `need_states=False` lets a
    masked LSTM skip computing its final cell state (returned as None then).

    Returns `(sequence_outputs, last_output, final_states)`.
    """
    fn = _FUSED[mode]
    has_bias = len(params) == 4
    hx = tuple(s.unsqueeze(0) for s in states) if mode == "lstm" else states[0].unsqueeze(0)
    if mask is None:
        out = fn(x, hx, params, has_bias, 1, 0.0, _kernel_train_flag(), False, True)
        seq, final = out[0], [s.squeeze(0) for s in out[1:]]
        return seq, seq[:, -1], final
    if mode == "lstm" and need_states:
        return _run_fused_packed(fn, params, has_bias, x, hx, states, mask)
    # Unmasked steps first, then one dense kernel call: no host sync, and on CPU much faster
    # than a packed batch. Every output needed comes from a step before the padding.
    order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices
    compact = x.gather(1, order[..., None].expand(-1, -1, x.shape[-1]))
    out = fn(compact, hx, params, has_bias, 1, 0.0, _kernel_train_flag(), False, True)
    seq = repeat_last_valid(out[0], mask)
    h = torch.where(mask.any(1, keepdim=True), seq[:, -1], states[0])
    return seq, seq[:, -1], [h] if mode != "lstm" else [h, None]


def _run_fused_packed(fn, params, has_bias, x, hx, states, mask):
    """Masked LSTM whose final cell state is needed: a packed batch (the kernel stops at each
    sequence's last unmasked step)."""
    batch, steps = mask.shape
    lengths = mask.sum(1)
    right_padded = (mask == (torch.arange(steps, device=mask.device) < lengths[:, None])).all()
    info = torch.cat([lengths, right_padded.long()[None]]).cpu()  # one host sync for both
    lengths_cpu, right_padded = info[:-1], bool(info[-1])
    if not right_padded:
        order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices
        x = x.gather(1, order[..., None].expand(-1, -1, x.shape[-1]))
    packed = pack_padded_sequence(x, lengths_cpu.clamp(min=1), batch_first=True,
                                  enforce_sorted=False)
    hx = tuple(h.index_select(1, packed.sorted_indices) for h in hx)
    out = fn(packed.data, packed.batch_sizes, hx, params, has_bias, 1, 0.0,
             _kernel_train_flag(), False)
    final = [s.index_select(1, packed.unsorted_indices).squeeze(0) for s in out[1:]]
    packed_out = PackedSequence(out[0], packed.batch_sizes, packed.sorted_indices,
                                packed.unsorted_indices)
    compact, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=steps)
    seq = repeat_last_valid(compact, mask)
    empty = (lengths == 0)[:, None]
    final = [torch.where(empty, s0, s) for s0, s in zip(states, final)]
    return seq, seq[:, -1], final


def repeat_last_valid(compact, mask):
    """Outputs at every step from the outputs of the unmasked steps packed at the front:
    step t shows the output of the last unmasked step up to t, zeros before the first."""
    idx = mask.long().cumsum(1) - 1
    seq = compact.gather(1, idx.clamp(min=0)[..., None].expand(-1, -1, compact.shape[-1]))
    return seq * (idx >= 0)[..., None].to(seq.dtype)


def run_loop(cell, x, states, mask=None, rec_mask=None, step_kwargs=None, builtin=True):
    """The Python loop: one cell step per time step. Returns `(sequence, last, final_states)`."""
    outputs, prev = [], None
    step_kwargs = step_kwargs or {}
    for t in range(x.shape[1]):
        if builtin:
            out, new_states = cell.step(x[:, t], states, rec_mask)
        else:
            out, new_states = cell.call(x[:, t], states, **step_kwargs)
            new_states = tree.flatten(new_states)
        if mask is not None:
            m = mask[:, t, None]
            prev = torch.zeros_like(out) if prev is None else prev
            out = torch.where(m, out, prev)
            new_states = [torch.where(m, n, s) for n, s in zip(new_states, states)]
        outputs.append(out)
        states, prev = new_states, out
    seq = torch.stack(outputs, dim=1)
    return seq, seq[:, -1], list(states)
