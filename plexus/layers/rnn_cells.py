"""Recurrent cells: one time step of SimpleRNN, LSTM and GRU.

A cell holds the weights of a recurrent layer. Weights are created in Keras's layout at the
boundary (`get_weights`, files) and stored in torch's layout (gates along the rows, torch's gate
order), so torch's fused kernels read them directly, with no conversion per call or per step.

Each cell also runs one step (`call`) for the Python loop that `RNN` uses when a configuration
has no fused kernel (custom activations, GRU with `reset_after=False`, recurrent dropout).
"""
import functools
import inspect

import torch
import torch.nn.functional as F

from plexus import activations, initializers
from plexus.layers.core import _ser, resolve_weight_args
from plexus.layers.layer import Layer


def _transpose(t):
    return t.T


def _transposed():
    """Layout of a `(in, gates*units)` Keras kernel stored as torch's `(gates*units, in)`.

    Layouts are module-level functions or `functools.partial`s of them, never closures, so the
    variables holding them (and every model) can be pickled."""
    return (_transpose, _transpose)


def _gru_swap(t, units, axis):
    """Swap the first two gate blocks along `axis`: Keras's z, r, h <-> torch's r, z, n."""
    z, r, h = torch.split(t, units, dim=axis)
    return torch.cat([r, z, h], dim=axis)


def _gru_kernel_to_torch(units, t):
    return _gru_swap(t, units, 1).T


def _gru_kernel_to_keras(units, t):
    return _gru_swap(t.T, units, 1)


def _gru_bias_swap(units, axis, t):
    return _gru_swap(t, units, axis)


def forget_bias_initializer(base, units):
    """An LSTM bias initializer (gates i, f, c, o) that starts the forget gate at one and the
    other gates from `base` (`unit_forget_bias=True`)."""
    def init(shape, dtype=None):
        ones = torch.ones((units,), dtype=dtype or torch.float32)
        return torch.cat([torch.as_tensor(base((units,), dtype=dtype)), ones,
                          torch.as_tensor(base((2 * units,), dtype=dtype))])
    return init


class DropoutCell(Layer):
    """Common arguments of the built-in cells: units, activations, initializers, dropout."""

    _gates = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(
                f"{type(self).__name__} units must be a positive integer; received {units!r}.")
        for arg, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(
                    f"{type(self).__name__} {arg} must be between 0 and 1; received {rate!r}.")
        self.units = units
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        resolve_weight_args(self, kernel_initializer=kernel_initializer,
                            recurrent_initializer=recurrent_initializer,
                            bias_initializer=bias_initializer,
                            kernel_regularizer=kernel_regularizer,
                            recurrent_regularizer=recurrent_regularizer,
                            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                            recurrent_constraint=recurrent_constraint,
                            bias_constraint=bias_constraint)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def _add_kernels(self, input_dim, layout_in, layout_rec):
        n = self._gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, n), initializer=self.kernel_initializer, name="kernel",
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
            layout=layout_in)
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, n), initializer=self.recurrent_initializer,
            name="recurrent_kernel", regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint, layout=layout_rec)

    def _add_bias(self, shape, initializer, layout=None):
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=shape, initializer=initializer, name="bias",
                regularizer=self.bias_regularizer, constraint=self.bias_constraint, layout=layout)
        # torch's kernels take a second (recurrent) bias; Keras's LSTM and SimpleRNN have one.
        self.register_buffer("_zero_bias", torch.zeros(self._gates * self.units,
                                                       dtype=self.kernel.dtype), persistent=False)

    def _input_dim(self, input_shape):
        dim = input_shape[-1] if input_shape else None
        if dim is None:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) needs the feature size (last "
                f"dimension) of its input to be known; received shape {tuple(input_shape)}.")
        return int(dim)

    def dropout_masks(self, inputs, h, training):
        """Dropout masks for one sequence: on the inputs `(batch, features)` and on the state."""
        dp = rec = None
        if training and 0.0 < self.dropout < 1.0:
            dp = F.dropout(torch.ones_like(inputs), self.dropout, True)
        if training and 0.0 < self.recurrent_dropout < 1.0:
            rec = F.dropout(torch.ones_like(h), self.recurrent_dropout, True)
        return dp, rec

    def call(self, inputs, states, training=None):
        """One step: `(output, new_states)` from inputs `(batch, features)` and the states."""
        training = self.training if training is None else training
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        dp, rec = self.dropout_masks(inputs, states[0], training)
        if dp is not None:
            inputs = inputs * dp
        return self.step(inputs, states, rec)

    def fused_mode(self):
        """Name of torch's fused kernel for this cell, or None when it needs the Python loop."""
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": _ser(self.kernel_regularizer),
                "recurrent_regularizer": _ser(self.recurrent_regularizer),
                "bias_regularizer": _ser(self.bias_regularizer),
                "kernel_constraint": _ser(self.kernel_constraint),
                "recurrent_constraint": _ser(self.recurrent_constraint),
                "bias_constraint": _ser(self.bias_constraint),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed}


class SimpleRNNCell(DropoutCell):
    """One step of a fully connected RNN: `h = activation(x @ kernel + h @ recurrent + bias)`.

    Weights (Keras layout): kernel `(in, units)`, recurrent_kernel `(units, units)`, bias
    `(units,)`.
    """

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def build(self, input_shape):
        self._add_kernels(self._input_dim(input_shape), _transposed(), _transposed())
        self._add_bias((self.units,), self.bias_initializer)
        self.built = True

    def step(self, x, states, rec_mask=None):
        h = states[0]
        if rec_mask is not None:
            h = h * rec_mask
        y = self.activation(F.linear(x, self.kernel, self.bias) + F.linear(h, self.recurrent_kernel))
        return y, [y]

    def fused_mode(self):
        if self.activation is activations.tanh:
            return "rnn_tanh"
        if self.activation is activations.relu:
            return "rnn_relu"
        return None

    def fused_params(self):
        if not self.use_bias:
            return [self.kernel, self.recurrent_kernel]
        return [self.kernel, self.recurrent_kernel, self.bias, self._zero_bias]


class LSTMCell(DropoutCell):
    """One step of a Long Short-Term Memory layer (gates i, f, c, o as in Keras).

    Weights (Keras layout): kernel `(in, 4*units)`, recurrent_kernel `(units, 4*units)`, bias
    `(4*units,)`. `unit_forget_bias=True` starts the forget-gate bias at one.
    """

    _gates = 4

    def __init__(self, units, unit_forget_bias=True, implementation=2, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.implementation = implementation

    @property
    def state_size(self):
        return [self.units, self.units]

    def build(self, input_shape):
        # Keras's gate order i, f, c, o is torch's i, f, g, o: only a transpose is needed.
        self._add_kernels(self._input_dim(input_shape), _transposed(), _transposed())
        init = self.bias_initializer
        if self.unit_forget_bias:
            init = forget_bias_initializer(self.bias_initializer, self.units)
        self._add_bias((4 * self.units,), init)
        self.built = True

    def step(self, x, states, rec_mask=None):
        h, c = states[0], states[1]
        if rec_mask is not None:
            h = h * rec_mask
        z = F.linear(x, self.kernel, self.bias) + F.linear(h, self.recurrent_kernel)
        i, f, g, o = z.chunk(4, dim=-1)
        i, f, o = self.recurrent_activation(i), self.recurrent_activation(f), \
            self.recurrent_activation(o)
        c = f * c + i * self.activation(g)
        h = o * self.activation(c)
        return h, [h, c]

    def fused_mode(self):
        ok = self.activation is activations.tanh and self.recurrent_activation is activations.sigmoid
        return "lstm" if ok else None

    def fused_params(self):
        if not self.use_bias:
            return [self.kernel, self.recurrent_kernel]
        return [self.kernel, self.recurrent_kernel, self.bias, self._zero_bias]

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}


class GRUCell(DropoutCell):
    """One step of a Gated Recurrent Unit (Keras gates z, r, h; `reset_after` both ways).

    Weights (Keras layout): kernel `(in, 3*units)`, recurrent_kernel `(units, 3*units)`, bias
    `(2, 3*units)` (input and recurrent biases) with `reset_after=True`, else `(3*units,)`.
    """

    _gates = 3

    def __init__(self, units, reset_after=True, implementation=2, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)
        self.implementation = implementation

    def build(self, input_shape):
        u = self.units
        # Stored in torch's gate order r, z, n (rows), converted from Keras's z, r, h columns.
        kernel_layout = (functools.partial(_gru_kernel_to_torch, u),
                         functools.partial(_gru_kernel_to_keras, u))
        self._add_kernels(self._input_dim(input_shape), kernel_layout, kernel_layout)
        if self.reset_after:
            swap = functools.partial(_gru_bias_swap, u, 1)
            bias_layout = (swap, swap)
            self._add_bias((2, 3 * u), self.bias_initializer, bias_layout)
        else:
            swap = functools.partial(_gru_bias_swap, u, 0)
            bias_layout = (swap, swap)
            self._add_bias((3 * u,), self.bias_initializer, bias_layout)
        self.built = True

    def _biases(self):
        if self.bias is None:
            return None, None
        if self.reset_after:
            return self.bias[0], self.bias[1]
        return self.bias, None

    def step(self, x, states, rec_mask=None):
        h = states[0]
        hr = h * rec_mask if rec_mask is not None else h
        b_in, b_rec = self._biases()
        gx = F.linear(x, self.kernel, b_in)
        x_r, x_z, x_n = gx.chunk(3, dim=-1)
        u = self.units
        if self.reset_after:
            h_r, h_z, h_n = F.linear(hr, self.recurrent_kernel, b_rec).chunk(3, dim=-1)
            r = self.recurrent_activation(x_r + h_r)
            z = self.recurrent_activation(x_z + h_z)
            n = self.activation(x_n + r * h_n)
        else:
            h_r, h_z = F.linear(hr, self.recurrent_kernel[:2 * u]).chunk(2, dim=-1)
            r = self.recurrent_activation(x_r + h_r)
            z = self.recurrent_activation(x_z + h_z)
            n = self.activation(x_n + F.linear(r * hr, self.recurrent_kernel[2 * u:]))
        h = z * h + (1 - z) * n
        return h, [h]

    def fused_mode(self):
        ok = (self.reset_after and self.activation is activations.tanh
              and self.recurrent_activation is activations.sigmoid)
        return "gru" if ok else None

    def fused_params(self):
        if not self.use_bias:
            return [self.kernel, self.recurrent_kernel]
        b_in, b_rec = self._biases()
        return [self.kernel, self.recurrent_kernel, b_in, b_rec]

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "reset_after": self.reset_after}


class StackedRNNCells(Layer):
    """Several cells run as one: each step feeds each cell's output to the next cell.

    `RNN([cell_1, cell_2])` wraps its list in this class. Built-in cells run layer by layer on
    the fused kernels (the same numbers as stepping the stack).

    Args:
        cells: a list of cells (each with `state_size` and `call(inputs, states)`).
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells)
        for c in cells:
            if not hasattr(c, "state_size") or not callable(getattr(c, "call", None)):
                raise ValueError(
                    f"StackedRNNCells {self.name!r}: every cell needs `state_size` and "
                    f"`call(inputs, states)`; received {c!r}.")
        self.cells = torch.nn.ModuleList(cells)

    def _sublayers(self):
        return [c for c in self.cells if isinstance(c, Layer)]

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @property
    def output_size(self):
        last = self.cells[-1]
        size = getattr(last, "output_size", None)
        if size is None:
            size = last.state_size
            size = size[0] if isinstance(size, (list, tuple)) else size
        return size

    def build(self, input_shape):
        shape = tuple(input_shape)
        for c in self.cells:
            if isinstance(c, Layer) and not c.built:
                c.build(shape)
                c.built = True
            out = getattr(c, "output_size", None) or _first(c.state_size)
            shape = shape[:-1] + (out,)
        self.built = True

    def call(self, inputs, states, training=None):
        """One step of every cell; `states` nested per cell (or flat), returned nested."""
        flat = _flatten(states)
        new, i = [], 0
        for c in self.cells:
            n = len(_flatten(c.state_size))
            kw = {"training": training} if "training" in _call_params(c) else {}
            inputs, s = c.call(inputs, list(flat[i:i + n]), **kw)
            i += n
            s = _flatten(s)
            new.append(s if isinstance(c.state_size, (list, tuple)) else s[0])
        return inputs, new

    def get_config(self):
        cells = [{"class_name": type(c).__name__, "config": c.get_config()} for c in self.cells]
        return {**super().get_config(), "cells": cells}


def _first(size):
    return size[0] if isinstance(size, (list, tuple)) else size


def _flatten(x):
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _flatten(item)]
    return [x]


def _call_params(cell):
    try:
        return inspect.signature(cell.call).parameters
    except (TypeError, ValueError):
        return {}
