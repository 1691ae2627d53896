"""Layer wrappers: the `Wrapper` base, Bidirectional (a recurrent layer run both ways) and
TimeDistributed."""
import copy

import torch

from plexus.graph import tree
from plexus.graph.tensor import KerasTensor
from plexus.layers.layer import Layer
from plexus.layers.recurrent import RNN, _BuiltinRNN, _state_sizes
from plexus.layers.rnn_cells import DropoutCell
from plexus.layers.rnn_kernels import _FUSED, _kernel_train_flag

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _recreate(layer, name, go_backwards):
    """A fresh copy of a recurrent layer (new weights), renamed, running in the given direction."""
    if type(layer) is RNN or not isinstance(layer, _BuiltinRNN):
        clone = copy.deepcopy(layer)
        clone.name, clone.go_backwards = name, go_backwards
        return clone
    config = {**layer.get_config(), "name": name, "go_backwards": go_backwards}
    return type(layer).from_config(config)


class Wrapper(Layer):
    """Base class of layers that wrap another layer and change how it runs
    (`TimeDistributed`, `SpectralNormalization`); not a layer to use by itself.

    Args:
        layer: the layer to wrap; it becomes the sublayer `self.layer`, built with the
            wrapper, and its config is saved inside the wrapper's.
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"{type(self).__name__} needs a plexus layer to wrap; received {layer!r}. Wrap "
                "a torch module in layers.TorchModuleWrapper first.")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
            self.layer.built = True
        self.built = True

    def get_config(self):
        from plexus.saving.serialization import serialize_layer
        return {**super().get_config(), "layer": serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layer = config.pop("layer")
        if not isinstance(layer, Layer):
            from plexus.saving.serialization import deserialize_keras_object
            layer = deserialize_keras_object(layer, custom_objects=custom_objects,
                                             category="layers")
        return cls(layer, **config)


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy of it backwards, and merges their outputs.

    Args:
        layer: a recurrent layer (`LSTM`, `GRU`, `SimpleRNN`, `RNN`); it is copied, not shared.
        merge_mode: how to combine the two outputs: `"concat"` (default), `"sum"`, `"mul"`,
            `"ave"`, or None for a list `[forward, backward]`.
        backward_layer: an optional layer for the backward direction (`go_backwards=True`).

    The weights are the forward layer's followed by the backward layer's, as in Keras. The
    backward outputs are flipped back to the input's time order before merging. Without a mask,
    an LSTM or GRU pair runs as one bidirectional fused kernel.

    Input shape: `(batch, time, features)`. Output shape: `(batch, 2*units)` with `"concat"`
    (`(batch, time, 2*units)` with `return_sequences`); with `return_state`, the output followed
    by the forward states and then the backward states.

    Example:
        >>> y = Bidirectional(LSTM(8))(Input(shape=(10, 4)))
        >>> y.shape
        (None, 16)
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, RNN):
            raise ValueError(
                f"Bidirectional {self.name!r} needs a recurrent layer (LSTM, GRU, SimpleRNN or "
                f"RNN); received {layer!r}.")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Bidirectional {self.name!r}: merge_mode must be one of 'concat', 'sum', "
                f"'mul', 'ave' or None; received {merge_mode!r}.")
        base = layer.name[len("forward_"):] if layer.name.startswith("forward_") else layer.name
        self.forward_layer = _recreate(layer, f"forward_{base}", layer.go_backwards)
        if backward_layer is None:
            self.backward_layer = _recreate(layer, f"backward_{base}", not layer.go_backwards)
        else:
            if not isinstance(backward_layer, RNN):
                raise ValueError(f"Bidirectional {self.name!r}: backward_layer must be a "
                                 f"recurrent layer; received {backward_layer!r}.")
            self.backward_layer = backward_layer
        self._check_pair()
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = False
        self.supports_masking = True
        self._initial_weights = weights

    def _check_pair(self):
        fw, bw = self.forward_layer, self.backward_layer
        if fw.go_backwards == bw.go_backwards:
            raise ValueError(
                f"Bidirectional {self.name!r}: the forward and backward layers must have "
                f"different go_backwards values; both have {fw.go_backwards}.")
        for attr in ("return_sequences", "return_state"):
            if getattr(fw, attr) != getattr(bw, attr):
                raise ValueError(
                    f"Bidirectional {self.name!r}: the forward and backward layers must agree on "
                    f"{attr}; got {getattr(fw, attr)} and {getattr(bw, attr)}.")

    def build(self, input_shape):
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub.build(input_shape)
                sub.built = True
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            shape, states = shape[0], list(shape[1:])
        if self.merge_mode == "concat":
            shape = tuple(shape[:-1]) + (shape[-1] * 2,)
            outputs = [shape]
        elif self.merge_mode is None:
            outputs = [tuple(shape), tuple(shape)]
        else:
            outputs = [tuple(shape)]
        if not self.return_state and len(outputs) == 1:
            return outputs[0]
        return outputs + states + states

    def _symbolic_mask(self, inputs, in_masked):
        return bool(self.return_sequences and in_masked and in_masked[0])

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        outs = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            n = 2 * len(_state_sizes(self.forward_layer.cell))
            return outs + [None] * n
        return outs if len(outs) > 1 else outs[0]

    def call(self, inputs, initial_state=None, mask=None, training=None):
        training = self.training if training is None else bool(training)
        if isinstance(inputs, (list, tuple)):
            inputs, initial_state = inputs[0], (list(inputs[1:]) or initial_state)
        fused = self._fused_mode(mask, training)
        if fused is not None:
            y, y_rev, states = self._call_fused(fused, inputs, initial_state)
        else:
            fw_state = bw_state = None
            if initial_state is not None:
                half = len(initial_state) // 2
                fw_state, bw_state = initial_state[:half], initial_state[half:]
            y = self.forward_layer(inputs, initial_state=fw_state, mask=mask, training=training)
            y_rev = self.backward_layer(inputs, initial_state=bw_state, mask=mask,
                                        training=training)
            states = []
            if self.return_state:
                states = list(y[1:]) + list(y_rev[1:])
                y, y_rev = y[0], y_rev[0]
            if self.return_sequences:
                y_rev = y_rev.flip(1)
        merged = self._merge(y, y_rev)
        if self.return_state:
            return merged + states
        return merged[0] if len(merged) == 1 else merged

    def _merge(self, y, y_rev):
        mode = self.merge_mode
        if mode == "concat":
            return [torch.cat([y, y_rev], dim=-1)]
        if mode == "sum":
            return [y + y_rev]
        if mode == "ave":
            return [(y + y_rev) / 2]
        if mode == "mul":
            return [y * y_rev]
        return [y, y_rev]

    def _fused_mode(self, mask, training):
        """The fused kernel that can run both directions at once, or None."""
        fw, bw = self.forward_layer, self.backward_layer
        if mask is not None or fw.go_backwards or type(fw) is not type(bw):
            return None
        cf, cb = fw.cell, bw.cell
        if not (isinstance(cf, DropoutCell) and isinstance(cb, DropoutCell)):
            return None
        if cf.units != cb.units or cf.use_bias != cb.use_bias:
            return None
        if training and (cf.dropout or cb.dropout or cf.recurrent_dropout or cb.recurrent_dropout):
            return None
        mode = cf.fused_mode()
        return mode if mode is not None and mode == cb.fused_mode() else None

    def _call_fused(self, mode, x, initial_state):
        fw, bw = self.forward_layer, self.backward_layer
        params = fw.cell.fused_params() + bw.cell.fused_params()
        dtype = params[0].dtype
        x = x.to(dtype) if x.dtype != dtype else x
        n_states = 2 if mode == "lstm" else 1
        if initial_state is None:
            zeros = x.new_zeros((2, x.shape[0], fw.cell.units))
            hx = (zeros, zeros) if mode == "lstm" else zeros
        else:
            init = [torch.as_tensor(s).to(dtype) for s in initial_state]
            pairs = [torch.stack([init[i], init[n_states + i]]) for i in range(n_states)]
            hx = tuple(pairs) if mode == "lstm" else pairs[0]
        out = _FUSED[mode](x, hx, params, len(params) == 8, 1, 0.0, _kernel_train_flag(), True,
                           True)
        seq, units = out[0], fw.cell.units
        if self.return_sequences:
            y, y_rev = seq[..., :units], seq[..., units:]
        else:
            y, y_rev = seq[:, -1, :units], seq[:, 0, units:]
        states = [s[0] for s in out[1:]] + [s[1] for s in out[1:]]
        return y, y_rev, states

    def get_config(self):
        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": {"class_name": type(self.forward_layer).__name__,
                          "config": self.forward_layer.get_config()},
                "backward_layer": {"class_name": type(self.backward_layer).__name__,
                                   "config": self.backward_layer.get_config()}}


class TimeDistributed(Wrapper):
    """Applies a layer to every time step of its input (the same weights at every step).

    Args:
        layer: any layer; it sees inputs of shape `(batch * time, ...)`.

    Input shape: `(batch, time, ...)`. Output shape: `(batch, time, ...)` where `...` is the
    inner layer's output shape for one step.

    Example:
        >>> y = TimeDistributed(Dense(8))(Input(shape=(10, 16)))
        >>> y.shape
        (None, 10, 8)
    """

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    def _check(self, input_shape):
        if not tree.is_shape(input_shape) or len(input_shape) < 3:
            raise ValueError(
                f"TimeDistributed {self.name!r} expects an input of shape (batch, time, ...) "
                f"with at least 3 dimensions; received {input_shape}.")
        return tuple(input_shape)

    def build(self, input_shape):
        input_shape = self._check(input_shape)
        if not self.layer.built:
            self.layer.build((input_shape[0],) + input_shape[2:])
            self.layer.built = True
        self.built = True

    def compute_output_shape(self, input_shape):
        input_shape = self._check(input_shape)
        child = (input_shape[0],) + input_shape[2:]
        try:
            out = self.layer.compute_output_shape(child)
        except NotImplementedError:
            out = self.layer.compute_output_spec(KerasTensor(child)).shape
        return (out[0], input_shape[1]) + tuple(out[1:])

    def _output_dtype(self, inputs):
        return self.layer._output_dtype(inputs)

    def call(self, inputs, training=None, mask=None):
        batch, steps = inputs.shape[0], inputs.shape[1]
        flat = inputs.reshape((batch * steps,) + tuple(inputs.shape[2:]))
        kwargs = {}
        from plexus.graph.functional import call_accepts
        if training is not None and call_accepts(self.layer, "training"):
            kwargs["training"] = training
        if mask is not None and call_accepts(self.layer, "mask"):
            kwargs["mask"] = mask.reshape((batch * steps,) + tuple(mask.shape[2:]))
        out = self.layer(flat, **kwargs)
        return out.reshape((batch, steps) + tuple(out.shape[1:]))
