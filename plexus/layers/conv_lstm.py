"""Convolutional LSTM: ConvLSTM1D/2D/3D, an LSTM whose input and recurrent transformations are
convolutions (Shi et al., 2015).

torch has no fused ConvLSTM kernel, so a sequence runs as: one convolution of all time steps'
inputs at once (time folded into the batch; the four gates as one kernel of `4 * filters`
outputs), then a Python loop over time with one recurrent convolution per step and the gate
arithmetic. Dropout masks (one per gate, fixed over time, as in Keras) go into the same two
convolutions as grouped convolutions (`groups=4`), so dropout costs no extra kernel launches.
States are channels-first inside and converted at the boundary.
"""
import torch
import torch.nn.functional as F

from plexus import activations
from plexus.graph import tree
from plexus.layers import conv_utils as cu
from plexus.layers.core import _ser, resolve_weight_args, weight_args_config
from plexus.layers.layer import Layer
from plexus.layers.recurrent import RNN
from plexus.layers.rnn_cells import forget_bias_initializer

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CELL_ARGS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
              "activation", "recurrent_activation", "use_bias", "kernel_initializer",
              "recurrent_initializer", "bias_initializer", "unit_forget_bias",
              "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
              "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
              "recurrent_dropout", "seed")


# Gates need the plain functions: `activations.sigmoid` also remembers its logits for the
# cross-entropy losses, which would keep every step's pre-activations alive.
_PLAIN = {activations.sigmoid: torch.sigmoid, activations.tanh: torch.tanh}


def _gate_masks(shape, rate, like):
    """Four dropout masks (one per gate) of `shape`, concatenated along the channel axis."""
    ones = torch.ones((shape[0], 4 * shape[1]) + tuple(shape[2:]), dtype=like.dtype,
                      device=like.device)
    return F.dropout(ones, rate, True)


class ConvLSTMCell(Layer):
    """One step of a convolutional LSTM (gates i, f, c, o as in Keras).

    Args:
        rank: 1, 2 or 3, the number of spatial axes.
        filters, kernel_size, strides, padding ('valid' or 'same'), data_format, dilation_rate:
            of the input convolution; the recurrent convolution has stride 1, no dilation and
            'same' padding.
        activation (tanh), recurrent_activation (sigmoid), use_bias, unit_forget_bias, the
        initializers (glorot_uniform, orthogonal, zeros), regularizers and constraints, dropout
        and recurrent_dropout (rates), seed: as for `LSTMCell`.

    Weights (Keras layout): kernel `(*kernel_size, channels, 4 * filters)`, recurrent_kernel
    `(*kernel_size, filters, 4 * filters)`, bias `(4 * filters,)`; stored in torch's conv
    layout.
    """

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        cls = "ConvLSTM"
        if rank not in (1, 2, 3):
            raise ValueError(f"{cls}: rank must be 1, 2 or 3; received rank={rank!r}.")
        if not isinstance(filters, int) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(f"{cls}: filters must be a positive integer; received {filters!r}.")
        for arg, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"{cls}: {arg} must be between 0 and 1; received {rate!r}.")
        self.rank, self.filters = rank, filters
        self.kernel_size = cu.normalize_tuple(kernel_size, rank, "kernel_size", cls)
        self.strides = cu.normalize_tuple(strides, rank, "strides", cls)
        self.dilation_rate = cu.normalize_tuple(dilation_rate, rank, "dilation_rate", cls)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{cls}: strides > 1 cannot be combined with dilation_rate > 1; received "
                f"strides={self.strides}, dilation_rate={self.dilation_rate}.")
        self.padding = cu.normalize_padding(padding, cls)
        self.data_format = cu.normalize_data_format(data_format, cls)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias, self.unit_forget_bias = bool(use_bias), bool(unit_forget_bias)
        resolve_weight_args(self, kernel_initializer=kernel_initializer,
                            recurrent_initializer=recurrent_initializer,
                            bias_initializer=bias_initializer,
                            kernel_regularizer=kernel_regularizer,
                            recurrent_regularizer=recurrent_regularizer,
                            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                            recurrent_constraint=recurrent_constraint,
                            bias_constraint=bias_constraint)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed

    @property
    def state_size(self):
        return [self.filters, self.filters]  # h and c, each with `filters` channels

    # ------------------------------------------------------------------ shapes
    def _split(self, input_shape):
        """`(channels, spatial)` of a step input shape `(batch, ...)`."""
        cu.check_rank(self, input_shape, self.rank)
        if self.data_format == "channels_last":
            return input_shape[-1], tuple(input_shape[1:-1])
        return input_shape[1], tuple(input_shape[2:])

    def _out_spatial(self, spatial):
        out = tuple(cu.conv_output_length(n, k, s, self.padding, d) for n, k, s, d in
                    zip(spatial, self.kernel_size, self.strides, self.dilation_rate))
        if any(o is not None and o <= 0 for o in out):
            raise ValueError(
                f"Layer {self.name!r} (ConvLSTM): spatial size {spatial} is too small for "
                f"kernel_size={self.kernel_size} with padding={self.padding!r}.")
        return out

    def compute_output_shape(self, input_shape):
        """Shape of the output (and of each state) for a step input shape."""
        _, spatial = self._split(input_shape)
        out = self._out_spatial(spatial)
        if self.data_format == "channels_last":
            return (input_shape[0],) + out + (self.filters,)
        return (input_shape[0], self.filters) + out

    # ------------------------------------------------------------------ weights
    def build(self, input_shape):
        channels, spatial = self._split(input_shape)
        if channels is None or any(d is None for d in spatial):
            raise ValueError(
                f"Layer {self.name!r} (ConvLSTM) needs the channel and spatial sizes of its "
                f"input to be known; received a step shape {tuple(input_shape)}.")
        self._state_spatial = self._out_spatial(spatial)
        layout = (cu.keras_kernel_to_torch(self.rank), cu.torch_kernel_to_keras(self.rank))
        n = 4 * self.filters
        self.kernel = self.add_weight(
            shape=self.kernel_size + (channels, n), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
            name="kernel", layout=layout)
        self.recurrent_kernel = self.add_weight(
            shape=self.kernel_size + (self.filters, n), initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint,
            name="recurrent_kernel", layout=layout)
        self.bias = None
        if self.use_bias:
            init = self.bias_initializer
            if self.unit_forget_bias:
                init = forget_bias_initializer(self.bias_initializer, self.filters)
            self.bias = self.add_weight(shape=(n,), initializer=init, name="bias",
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        self.built = True

    # ------------------------------------------------------------------ running
    def _input_gates(self, x, drop):
        """Gate pre-activations from the inputs: `(N, 4 * filters, *out)` for channels-first
        `x` `(N, channels, *spatial)`; `drop` (or None) is `(N, 4 * channels, *spatial)`."""
        x, pad = cu.pad_same(x, self.kernel_size, self.strides, self.dilation_rate) \
            if self.padding == "same" else (x, 0)
        groups = 1
        if drop is not None:
            x, groups = x.repeat((1, 4) + (1,) * self.rank) * drop, 4
        return _CONV[self.rank](x, self.kernel, self.bias, self.strides, pad,
                                self.dilation_rate, groups)

    def _recurrent_gates(self, h, drop):
        """Gate pre-activations from the state `h` `(N, filters, *out)`: stride 1, 'same'."""
        groups = 1
        if drop is not None:
            h, groups = h.repeat((1, 4) + (1,) * self.rank) * drop, 4
        ones = (1,) * self.rank
        h, pad = cu.pad_same(h, self.kernel_size, ones, ones)
        return _CONV[self.rank](h, self.recurrent_kernel, None, ones, pad, ones, groups)

    def _step(self, gx, h, c, rec_drop):
        z = gx + self._recurrent_gates(h, rec_drop)
        i, f, g, o = z.chunk(4, dim=1)
        act, rec = _PLAIN.get(self.activation, self.activation), \
            _PLAIN.get(self.recurrent_activation, self.recurrent_activation)
        c = rec(f) * c + rec(i) * act(g)
        return rec(o) * act(c), c

    def _masks(self, x_shape, h_shape, like, training):
        drop = rec = None
        if training and 0.0 < self.dropout < 1.0:
            drop = _gate_masks(x_shape, self.dropout, like)
        if training and 0.0 < self.recurrent_dropout < 1.0:
            rec = _gate_masks(h_shape, self.recurrent_dropout, like)
        return drop, rec

    def run(self, x, h, c, mask=None, training=False):
        """Run over channels-first frames `x` `(batch, time, channels, *spatial)` from states
        `h`, `c` `(batch, filters, *out)`; `mask` `(batch, time)` bool or None.

        Returns `(outputs (batch, time, filters, *out), h, c)`; a masked step keeps the states
        and repeats the previous output (zeros before the first unmasked step), as Keras.
        """
        batch, steps = x.shape[:2]
        drop, rec = self._masks((batch,) + tuple(x.shape[2:]), tuple(h.shape), x, training)
        frames = x.reshape((batch * steps,) + tuple(x.shape[2:]))
        if drop is not None:
            drop = drop.repeat_interleave(steps, dim=0)  # the same mask at every step
        gx = self._input_gates(frames, drop)
        gx = gx.reshape((batch, steps) + tuple(gx.shape[1:]))
        outputs, prev = [], None
        for t in range(steps):
            h_new, c_new = self._step(gx[:, t], h, c, rec)
            if mask is not None:
                m = mask[:, t].reshape((batch,) + (1,) * (h.ndim - 1))
                prev = torch.zeros_like(h_new) if prev is None else prev
                h_new, c_new = torch.where(m, h_new, h), torch.where(m, c_new, c)
                prev = torch.where(m, h_new, prev)
            else:
                prev = h_new
            outputs.append(prev)
            h, c = h_new, c_new
        return torch.stack(outputs, dim=1), h, c

    def call(self, inputs, states, training=None):
        """One step on surface-layout tensors: `(h, [h, c])` from inputs and states `[h, c]`."""
        training = self.training if training is None else bool(training)
        last = self.data_format == "channels_last"
        to_first = cu.to_channels_first if last else (lambda t: t)
        h, c = (to_first(torch.as_tensor(s)) for s in tree.flatten(states))
        x = to_first(inputs)[:, None]
        _, h, c = self.run(x, h, c, training=training)
        to_surface = cu.to_channels_last if last else (lambda t: t)
        h, c = to_surface(h), to_surface(c)
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        """Zero states `[h, c]` for a batch, in the layer's data format."""
        if not self.built:
            raise ValueError(f"Layer {self.name!r} (ConvLSTM) must be built before it can make "
                             "initial states.")
        shape = (batch_size, self.filters) + self._state_spatial
        zeros = torch.zeros(shape, dtype=self.kernel.dtype, device=self.kernel.device)
        if self.data_format == "channels_last":
            zeros = cu.to_channels_last(zeros)
        return [zeros, zeros.clone()]

    def get_config(self):
        return {**super().get_config(), "rank": self.rank, **self._args_config()}

    def _args_config(self):
        return {"filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "data_format": self.data_format, "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "use_bias": self.use_bias,
                **weight_args_config(self, "kernel_initializer", "recurrent_initializer",
                                     "bias_initializer"),
                "unit_forget_bias": self.unit_forget_bias,
                **weight_args_config(self, "kernel_regularizer", "recurrent_regularizer",
                                     "bias_regularizer"),
                **weight_args_config(self, "kernel_constraint", "recurrent_constraint",
                                     "bias_constraint"),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed}


class ConvLSTM(RNN):
    """A convolutional LSTM over the time axis; base of ConvLSTM1D/2D/3D.

    Args:
        rank: 1, 2 or 3, the number of spatial axes of each frame.
        filters: number of output channels (and of each state).
        kernel_size, strides, padding ('valid' or 'same'), data_format, dilation_rate: of the
            input convolution; the recurrent convolution uses stride 1 and 'same' padding.
        activation (tanh), recurrent_activation (sigmoid), use_bias, unit_forget_bias,
        kernel_initializer, recurrent_initializer, bias_initializer, *_regularizer,
        *_constraint, dropout, recurrent_dropout, seed: as for `LSTM`.
        return_sequences, return_state, go_backwards, stateful (must be False): see `RNN`.

    Input shape: `(batch, time, *spatial, channels)` (channels-last) or
    `(batch, time, channels, *spatial)`; an optional mask `(batch, time)` skips steps (a mask
    with more axes, such as `Masking`'s on frames, skips the steps where every position is
    masked).
    Output shape: `(batch, *new_spatial, filters)`, or `(batch, time, *new_spatial, filters)`
    with `return_sequences`; with `return_state`, `[output, h, c]`.
    """

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, activation="tanh",
                 recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, **kwargs):
        cell = ConvLSTMCell(
            rank, filters, kernel_size, strides=strides, padding=padding,
            data_format=data_format, dilation_rate=dilation_rate, activation=activation,
            recurrent_activation=recurrent_activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
            dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
            name="conv_lstm_cell", dtype=kwargs.get("dtype"))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, **kwargs)

    def __getattr__(self, name):
        cell = self.__dict__.get("_modules", {}).get("cell")
        if cell is not None and name in _CELL_ARGS:
            return getattr(cell, name)
        return super().__getattr__(name)

    def _check_shape(self, input_shape):
        if not tree.is_shape(input_shape):  # [sequences, *initial_states]
            input_shape = input_shape[0]
        rank = self.cell.rank
        if len(input_shape) != rank + 3:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) expects inputs of shape (batch, "
                f"time, {rank} spatial axes and channels), {rank + 3} dimensions; received "
                f"shape {tuple(input_shape)}.")
        return tuple(input_shape)

    def build(self, input_shape):
        input_shape = self._check_shape(input_shape)
        if not self.cell.built:
            self.cell.build((input_shape[0],) + input_shape[2:])
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = self._check_shape(input_shape)
        state = self.cell.compute_output_shape((input_shape[0],) + input_shape[2:])
        out = (state[0], input_shape[1]) + state[1:] if self.return_sequences else state
        return [out, state, state] if self.return_state else out

    def call(self, inputs, initial_state=None, mask=None, training=None):
        training = self.training if training is None else bool(training)
        if isinstance(inputs, (list, tuple)):
            inputs, initial_state = inputs[0], (list(inputs[1:]) or initial_state)
        cell = self._modules["cell"]
        kernel = cell.__dict__.get("kernel", cell._parameters["kernel"])  # mixed: its copy
        x = inputs if inputs.dtype == kernel.dtype else inputs.to(kernel.dtype)
        self._check_shape(tuple(x.shape))
        last = cell.data_format == "channels_last"
        # (batch, time, *spatial, channels) -> (batch, time, channels, *spatial), a view
        x = x.permute(0, 1, x.ndim - 1, *range(2, x.ndim - 1)) if last else x
        batch = x.shape[0]
        state_shape = (batch, cell.filters) + cell._out_spatial(tuple(x.shape[3:]))
        if initial_state is None:
            h = c = x.new_zeros(state_shape)
        else:
            states = tree.flatten(initial_state)
            h, c = (torch.as_tensor(s).to(x.dtype) for s in states) if len(states) == 2 \
                else (None, None)
            h, c = (cu.to_channels_first(h), cu.to_channels_first(c)) if last and h is not None \
                else (h, c)
            if h is None or tuple(h.shape) != state_shape or tuple(c.shape) != state_shape:
                want = (batch,) + state_shape[2:] + (cell.filters,) if last else state_shape
                raise ValueError(
                    f"Layer {self.name!r} ({type(self).__name__}) expects initial_state = [h, "
                    f"c], each of shape {want} for inputs of shape {tuple(inputs.shape)}; "
                    f"received {[tuple(getattr(s, 'shape', ())) for s in states]}.")
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is not None:
            mask = torch.as_tensor(mask, device=x.device).bool()
            if mask.ndim > 2:  # per position (Masking on frames): a step counts if any does
                mask = mask.reshape(mask.shape[:2] + (-1,)).any(-1)
        if self.go_backwards:
            x = x.flip(1)
            mask = mask.flip(1) if mask is not None else None
        seq, h, c = cell.run(x, h, c, mask, training)
        if self.zero_output_for_mask and mask is not None:
            seq = seq * mask.reshape(mask.shape + (1,) * (seq.ndim - 2)).to(seq.dtype)
        out = seq if self.return_sequences else seq[:, -1]
        if last:
            out = out.permute(0, 1, *range(3, out.ndim), 2) if self.return_sequences \
                else cu.to_channels_last(out)
            h, c = cu.to_channels_last(h), cu.to_channels_last(c)
        return [out, h, c] if self.return_state else out

    def get_config(self):
        config = {**super().get_config(), **self.cell._args_config(),
                  "activity_regularizer": _ser(self.activity_regularizer)}
        return config


class ConvLSTM1D(ConvLSTM):
    """1D convolutional LSTM: `(batch, time, steps, channels)` ->
    `(batch, new_steps, filters)` (or per time step with `return_sequences`).

    Weights (Keras layout): kernel `(k, channels, 4 * filters)`, recurrent_kernel
    `(k, filters, 4 * filters)`, bias `(4 * filters,)`.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(1, filters, kernel_size, **kwargs)


class ConvLSTM2D(ConvLSTM):
    """2D convolutional LSTM over a sequence of images: `(batch, time, h, w, channels)` ->
    `(batch, new_h, new_w, filters)` (or per time step with `return_sequences`).

    Example:
        >>> ConvLSTM2D(8, 3, padding="same")(Input(shape=(10, 16, 16, 1))).shape
        (None, 16, 16, 8)
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)


class ConvLSTM3D(ConvLSTM):
    """3D convolutional LSTM over a sequence of volumes: `(batch, time, d1, d2, d3, channels)`
    -> `(batch, *new_spatial, filters)` (or per time step with `return_sequences`)."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(3, filters, kernel_size, **kwargs)
