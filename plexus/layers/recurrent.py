"""Recurrent layers: RNN (any cell), SimpleRNN, LSTM and GRU on torch's fused kernels.

The built-in layers run torch's fused LSTM/GRU/RNN kernels whenever the configuration allows it
(default activations, GRU `reset_after=True`, no recurrent dropout while training); other
configurations and user-written cells step through time in a Python loop. Both give the same
numbers, masks included (see `plexus.layers.rnn_kernels`).
"""
import inspect

import torch

from plexus import regularizers
from plexus.graph import tree
from plexus.layers.core import _ser
from plexus.graph.tensor import torch_dtype
from plexus.layers.layer import Layer
from plexus.variables import Variable, Weight
from plexus.layers.rnn_cells import DropoutCell, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from plexus.layers.rnn_kernels import run_fused, run_loop


def _state_sizes(cell):
    """The sizes of a cell's states, flat (a stack of cells lists all its cells' states)."""
    return [int(s) for s in tree.flatten(cell.state_size)]


def _nest_states(cell, flat):
    """Final states as `[output, ...]` lists them: per cell for a stack of cells, else flat."""
    if not isinstance(cell, StackedRNNCells):
        return list(flat)
    out, i = [], 0
    for size in cell.state_size:
        n = len(tree.flatten(size))
        out.append(list(flat[i:i + n]) if isinstance(size, (list, tuple)) else flat[i])
        i += n
    return out


class RNN(Layer):
    """Runs a recurrent cell over the time axis of its input.

    Args:
        cell: a cell (`LSTMCell`, `GRUCell`, `SimpleRNNCell` or your own layer with
            `state_size` and `call(inputs, states) -> (output, new_states)`).
        return_sequences: return the output of every step, not only the last.
        return_state: also return the final states: `[output, *states]`.
        go_backwards: process the sequence from the end; outputs come in processing order.
        stateful: carry the final states of each batch over as the initial states of the next
            (sample `i` of a batch continues sample `i` of the previous one). Needs a fixed
            batch size (`Input(batch_shape=...)` or `batch_input_shape=`); `reset_state()`
            zeroes the states. Train with `shuffle=False`.
        unroll: accepted for compatibility; the fused kernels make unrolling unnecessary.
        zero_output_for_mask: outputs at masked steps are zeros instead of the previous output.

    Input shape: `(batch, time, features)`; an optional mask `(batch, time)` skips steps.
    Output shape: `(batch, units)`, or `(batch, time, units)` with `return_sequences`; with
    `return_state`, a list `[output, state_1, ...]` of which each state is `(batch, units)`.
    """

    # Compiled, the fused kernels are opaque ops whose gradient runs the kernel again, and a
    # cell loop is unrolled over every step: `jit_compile=True` trains these models eagerly
    _jit_compiles = False

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False,
                 activity_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not hasattr(cell, "state_size") or not callable(getattr(cell, "call", None)):
            raise ValueError(
                f"Layer {self.name!r}: `cell` must have a `state_size` attribute and a "
                f"`call(inputs, states)` method; received {cell!r}.")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self._n_states = 0  # how many state buffers a stateful layer holds
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.supports_masking = True

    # ------------------------------------------------------------------ shapes and masks
    def _check_shape(self, input_shape):
        if not tree.is_shape(input_shape):  # [sequences, *initial_states]
            input_shape = input_shape[0]
        if len(input_shape) != 3:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) expects inputs of shape "
                f"(batch, time, features), but received shape {tuple(input_shape)}. Add a time "
                "axis (e.g. Reshape) or use an Embedding before it.")
        return tuple(input_shape)

    def build(self, input_shape):
        input_shape = self._check_shape(input_shape)
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell.build((input_shape[0], input_shape[2]))
            self.cell.built = True
        if self.stateful:
            self._create_states(input_shape)
        self.built = True

    # ------------------------------------------------------------------ stateful layers
    def _create_states(self, input_shape):
        """Zero states for the fixed batch size, as buffers that are not saved (as in Keras,
        they are not weights)."""
        if input_shape[0] is None:
            raise ValueError(
                "When using `stateful=True` in a RNN, the batch size must be static. Found "
                f"dynamic batch size: sequence.shape={tuple(input_shape)}. Give the model a "
                "fixed batch size: Input(batch_shape=(batch, time, features)), or "
                "batch_input_shape=... on the first layer of a Sequential model.")
        dtype = torch_dtype(self.variable_dtype)
        device = next((p.device for p in self.parameters()), None)
        for i, size in enumerate(_state_sizes(self.cell)):
            spec = Weight(None, "rnn_state", (input_shape[0], size), trainable=False,
                          path=f"{self.name}/rnn_state")
            value = torch.zeros((input_shape[0], size), dtype=dtype, device=device)
            self.register_buffer(f"_rnn_state_{i}", Variable._from_tensor(value, spec),
                                 persistent=False)
        self._n_states = len(_state_sizes(self.cell))

    @property
    def states(self):
        """The carried states of a stateful layer (`plexus.Variable`s), else None."""
        if not self._n_states:
            return None
        return [self._buffers[f"_rnn_state_{i}"] for i in range(self._n_states)]

    def reset_state(self):
        """Zero the carried states of a stateful layer (start new sequences)."""
        for state in self.states or ():
            with torch.no_grad():
                state.zero_()

    def reset_states(self):
        """The same as `reset_state` (Keras 2's name)."""
        self.reset_state()

    def _carried_states(self, x):
        states = self.states
        if x.shape[0] != states[0].shape[0]:
            raise ValueError(
                "If an RNN is stateful, the batch size of the input sequences must be the same "
                "as the batch size of the initial state. \n"
                f"- Expected batch size: {states[0].shape[0]}\n"
                f"- Received batch size: {x.shape[0]}\n"
                f"(layer {self.name!r}; pass batches of exactly that size, e.g. "
                "fit(..., batch_size=...) with a sample count divisible by it)")
        return [s.detach().to(x.dtype, copy=True) for s in states]  # a copy: backward reads it

    def compute_output_shape(self, input_shape):
        batch, steps, _ = self._check_shape(input_shape)
        units = getattr(self.cell, "output_size", None) or _state_sizes(self.cell)[0]
        out = (batch, steps, units) if self.return_sequences else (batch, units)
        if self.return_state:
            shapes = [(batch, s) for s in _state_sizes(self.cell)]
            return [out] + _nest_states(self.cell, shapes)
        return out

    def _symbolic_mask(self, inputs, in_masked):
        return bool(self.return_sequences and in_masked and in_masked[0])

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        if self.return_state:
            return [out] + [None] * len(_state_sizes(self.cell))
        return out

    # ------------------------------------------------------------------ running
    def _initial_states(self, x, initial_state):
        sizes = _state_sizes(self.cell)
        if initial_state is None:
            return [x.new_zeros((x.shape[0], s)) for s in sizes]
        states = tree.flatten(initial_state)
        if len(states) != len(sizes):
            raise ValueError(
                f"Layer {self.name!r} expects {len(sizes)} initial state tensor(s) of sizes "
                f"{sizes}; received {len(states)}.")
        return [torch.as_tensor(s).to(device=x.device, dtype=x.dtype) for s in states]

    def call(self, inputs, initial_state=None, mask=None, training=None):
        training = self.training if training is None else bool(training)
        if isinstance(inputs, (list, tuple)):
            inputs, initial_state = inputs[0], (list(inputs[1:]) or initial_state)
        cell = self._modules["cell"]  # (not `self.cell`: two __getattr__ fallbacks per call)
        x = inputs
        kernel = cell._parameters.get("kernel") if isinstance(cell, Layer) else None
        if kernel is not None and "kernel" in cell.__dict__:
            kernel = cell.__dict__["kernel"]  # its compute-dtype copy (mixed precision)
        dtype = kernel.dtype if kernel is not None else next(
            (p.dtype for p in cell.parameters()), torch.float32)  # walking modules is slower
        if x.dtype != dtype:
            x = x.to(dtype)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is not None:
            mask = mask.to(device=x.device, dtype=torch.bool)
        if self.stateful and initial_state is None and self._n_states:
            states = self._carried_states(x)
        else:
            states = self._initial_states(x, initial_state)
        if self.go_backwards:
            x = x.flip(1)
            mask = mask.flip(1) if mask is not None else None
        seq, last, final = self._run(cell, x, states, mask, training)
        if self.stateful and self._n_states:
            with torch.no_grad():  # the next batch starts from here; no gradient flows back
                for state, value in zip(self.states, final):
                    state.copy_(value.detach())
        if self.zero_output_for_mask and mask is not None:
            seq = seq * mask[..., None].to(seq.dtype)
            last = last * mask[:, -1, None].to(last.dtype)
        out = seq if self.return_sequences else last
        return [out] + _nest_states(cell, final) if self.return_state else out

    def _run(self, cell, x, states, mask, training):
        """`(sequence, last_output, final_states)` of `cell` over `x` (time already flipped)."""
        if isinstance(cell, StackedRNNCells) and all(isinstance(c, DropoutCell) for c in cell.cells):
            finals, i = [], 0
            for sub in cell.cells:  # layer by layer: the same numbers as stepping the stack
                n = len(_state_sizes(sub))
                x, last, final = self._run(sub, x, states[i:i + n], mask, training)
                finals += final
                i += n
            return x, last, finals
        if isinstance(cell, DropoutCell):
            dp = rec = None
            if training and (cell.dropout or cell.recurrent_dropout):
                dp, rec = cell.dropout_masks(x[:, 0], states[0], training)
            if dp is not None:
                x = x * dp[:, None]
            mode = cell.fused_mode() if rec is None else None
            if mode is not None:
                return run_fused(mode, cell.fused_params(), x, states, mask,
                                 need_states=self.return_state or self.stateful)
            return run_loop(cell, x, states, mask, rec)
        kw = {"training": training} if _accepts_training(cell) else {}
        return run_loop(cell, x, states, mask, step_kwargs=kw, builtin=False)

    def get_config(self):
        config = {**super().get_config(), "return_sequences": self.return_sequences,
                  "return_state": self.return_state, "go_backwards": self.go_backwards,
                  "stateful": self.stateful, "unroll": self.unroll,
                  "zero_output_for_mask": self.zero_output_for_mask}
        if type(self) is RNN:
            config["cell"] = {"class_name": type(self.cell).__name__,
                              "config": self.cell.get_config()}
        return config


def _accepts_training(cell):
    try:
        return "training" in inspect.signature(cell.call).parameters
    except (TypeError, ValueError):
        return False


_CELL_ARGS = ("units", "activation", "use_bias", "kernel_initializer", "recurrent_initializer",
              "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
              "bias_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint",
              "dropout", "recurrent_dropout", "seed")


def _split_kwargs(kwargs, extra=()):
    """Separate cell arguments from layer arguments."""
    cell_kw = {k: kwargs.pop(k) for k in tuple(_CELL_ARGS) + tuple(extra) if k in kwargs}
    kwargs.pop("use_cudnn", None)
    return cell_kw, kwargs


class _BuiltinRNN(RNN):
    """A recurrent layer whose cell is built from the layer's own arguments."""

    _cell_class = None
    _cell_name = None
    _extra_args = ()

    def __init__(self, units, **kwargs):
        cell_kw, layer_kw = _split_kwargs(kwargs, self._extra_args)
        dtype = layer_kw.get("dtype")
        cell = self._cell_class(units, name=self._cell_name, dtype=dtype, **cell_kw)
        super().__init__(cell, **layer_kw)

    def get_config(self):
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        return {**super().get_config(), **cell_config,
                "activity_regularizer": _ser(self.activity_regularizer)}

    def __getattr__(self, name):
        cell = self.__dict__.get("_modules", {}).get("cell")
        if cell is not None and (name in _CELL_ARGS or name in self._extra_args
                                 or name == "recurrent_activation"):
            return getattr(cell, name)
        return super().__getattr__(name)


class SimpleRNN(_BuiltinRNN):
    """Fully connected RNN whose output is fed back as the next step's state.

    Args:
        units: size of the output and state.
        activation: `"tanh"` (default) or `"relu"` run on torch's fused kernel; others loop.
        use_bias, kernel_initializer (glorot_uniform), recurrent_initializer (orthogonal),
        bias_initializer (zeros), *_regularizer, *_constraint: as in `Dense`.
        dropout, recurrent_dropout: dropout rates on the inputs and on the state.
        return_sequences, return_state, go_backwards, stateful, unroll: see `RNN`.

    Input shape: `(batch, time, features)`. Output shape: `(batch, units)` or
    `(batch, time, units)`; with `return_state`, `[output, h]`.

    Example:
        >>> y = SimpleRNN(4)(Input(shape=(10, 8)))
        >>> y.shape
        (None, 4)
    """

    _cell_class, _cell_name = SimpleRNNCell, "simple_rnn_cell"


class LSTM(_BuiltinRNN):
    """Long Short-Term Memory layer (Hochreiter & Schmidhuber, 1997) on torch's fused kernel.

    Args:
        units: size of the output and of both states.
        activation (tanh), recurrent_activation (sigmoid): other choices run a Python loop.
        use_bias, kernel_initializer (glorot_uniform), recurrent_initializer (orthogonal),
        bias_initializer (zeros), *_regularizer, *_constraint: as in `Dense`.
        unit_forget_bias: start the forget-gate bias at one (default True).
        dropout, recurrent_dropout: dropout rates on the inputs and on the state.
        return_sequences, return_state, go_backwards, stateful, unroll: see `RNN`.

    Weights (Keras layout and order): kernel `(features, 4*units)`, recurrent_kernel
    `(units, 4*units)`, bias `(4*units,)`, gates i, f, c, o.

    Input shape: `(batch, time, features)`. Output shape: `(batch, units)` or
    `(batch, time, units)`; with `return_state`, `[output, h, c]`.

    Example:
        >>> y = LSTM(10)(Input(shape=(100, 1)))   # 480 parameters
        >>> y.shape
        (None, 10)
    """

    _cell_class, _cell_name = LSTMCell, "lstm_cell"
    _extra_args = ("recurrent_activation", "unit_forget_bias", "implementation")


class GRU(_BuiltinRNN):
    """Gated Recurrent Unit (Cho et al., 2014) on torch's fused kernel.

    Args:
        units: size of the output and state.
        activation (tanh), recurrent_activation (sigmoid): other choices run a Python loop.
        reset_after: apply the reset gate after the recurrent matrix product (default True,
            torch's and cuDNN's convention, fused); False runs a Python loop.
        use_bias, initializers, regularizers, constraints, dropout, recurrent_dropout,
        return_sequences, return_state, go_backwards, stateful, unroll: as in `LSTM`.

    Weights (Keras layout and order): kernel `(features, 3*units)`, recurrent_kernel
    `(units, 3*units)`, bias `(2, 3*units)` (or `(3*units,)` without `reset_after`), gates
    z, r, h.

    Input shape: `(batch, time, features)`. Output shape: `(batch, units)` or
    `(batch, time, units)`; with `return_state`, `[output, h]`.
    """

    _cell_class, _cell_name = GRUCell, "gru_cell"
    _extra_args = ("recurrent_activation", "reset_after", "implementation")
