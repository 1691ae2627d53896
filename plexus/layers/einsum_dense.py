"""`EinsumDense`: a dense layer whose contraction is written as an einsum equation
(`"abc,cd->abd"`), run by `torch.einsum`; the kernel is stored in Keras's layout, the shape the
equation gives it."""
import math
import re

import torch

from plexus import activations, initializers
from plexus.layers.core import reject_lora, resolve_weight_args, weight_args_config
from plexus.layers.layer import Layer

_FORMS = (  # (pattern on the equation with "..." written as "0", where the ellipsis is)
    (re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$"), None),
    (re.compile(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)$"), "left"),
    (re.compile(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0$"), "right"),
)


class EinsumShapes:
    """What an equation implies for one input shape: the kernel's and bias's shapes, the full
    output shape, and which kernel axes face the input and which the output (their sizes give
    the fans of variance-scaling initializers)."""

    def __init__(self, layer, input_shape):
        equation, partial = layer.equation, layer.partial_output_shape
        spec = None
        for pattern, ellipsis in _FORMS:
            m = pattern.match(equation.replace("...", "0"))
            if m:
                spec = m.groups() + (ellipsis,)
                break
        if spec is None:
            raise ValueError(
                f"EinsumDense: invalid equation {equation!r}. Use the form 'ab,bc->ac', "
                "'...ab,bc->...ac' or 'ab...,bc->ac...'.")
        in_spec, w_spec, out_spec, ellipsis = spec
        input_shape = tuple(input_shape)
        elided = len(input_shape) - len(in_spec)
        if elided < 0 or (ellipsis is None and elided):
            raise ValueError(
                f"Layer {layer.name!r} (EinsumDense): the equation {equation!r} expects inputs "
                f"of rank {len(in_spec)}{' or more' if ellipsis else ''}, but received an input "
                f"of shape {input_shape}.")
        # The full output: the batch dimension (or all the leading dimensions a left
        # ellipsis stands for), `output_shape`, then the dimensions a right ellipsis stands for.
        lead = elided if ellipsis == "left" and elided else 0
        if len(partial) != len(out_spec) - (0 if lead else 1):
            raise ValueError(
                f"Layer {layer.name!r} (EinsumDense): output_shape={partial} must give "
                f"{len(out_spec) - (0 if lead else 1)} size(s), one per output dimension of "
                f"{equation!r} after the batch dimension and the ellipsis (None where the "
                "input decides).")
        if lead:
            full = list(input_shape[:lead]) + list(partial)
        else:
            full = [input_shape[0]] + list(partial) + list(input_shape[len(in_spec):])
        in_at = {c: (elided if ellipsis == "left" else 0) + i for i, c in enumerate(in_spec)}
        out_at = {c: lead + i for i, c in enumerate(out_spec)}
        for c in in_spec:
            if c in out_at:
                want, got = full[out_at[c]], input_shape[in_at[c]]
                if want is None:
                    full[out_at[c]] = got
                elif got is not None and want != got:
                    raise ValueError(
                        f"Layer {layer.name!r} (EinsumDense): dimension '{c}' of {equation!r} "
                        f"is {got} in the input (shape {input_shape}) but {want} in "
                        f"output_shape={partial}.")
        for c in out_spec:
            if c not in in_spec and c not in w_spec:
                raise ValueError(
                    f"Layer {layer.name!r} (EinsumDense): output dimension '{c}' of "
                    f"{equation!r} appears in neither the input nor the kernel.")
        self.kernel_shape, self.input_axes, self.output_axes = [], [], []
        for i, c in enumerate(w_spec):
            if c in out_at:
                size = full[out_at[c]]
                self.output_axes.append(i)
            elif c in in_at:
                size = input_shape[in_at[c]]
                self.input_axes.append(i)
            else:
                raise ValueError(
                    f"Layer {layer.name!r} (EinsumDense): kernel dimension '{c}' of {equation!r} "
                    "appears in neither the input nor the output, so its size is unknown.")
            if size is None:
                raise ValueError(
                    f"Layer {layer.name!r} (EinsumDense): the size of kernel dimension '{c}' of "
                    f"{equation!r} is unknown for inputs of shape {input_shape} and "
                    f"output_shape={partial}. Give it in output_shape or fix it in the Input.")
            self.kernel_shape.append(size)
        self.kernel_shape = tuple(self.kernel_shape)
        self.output_shape = tuple(full)
        self.bias_shape = self._bias_shape(layer, out_spec, out_at, full, ellipsis, elided)

    @staticmethod
    def _bias_shape(layer, out_spec, out_at, full, ellipsis, elided):
        """The bias covers the output from its first biased axis on, with size 1 on axes
        without a bias (so it broadcasts), including axes a trailing ellipsis stands for."""
        axes = layer.bias_axes
        if axes is None:
            return None
        for c in axes:
            if c not in out_spec:
                raise ValueError(
                    f"Layer {layer.name!r} (EinsumDense): bias_axes={axes!r} names '{c}', which "
                    f"is not an output dimension of {layer.equation!r}.")
        first = min(out_spec.index(c) for c in axes)
        shape = [full[out_at[c]] if c in axes else 1 for c in out_spec[first:]]
        if ellipsis != "left":
            shape += [1] * elided
        return tuple(shape)


def _fan_aware(init, shapes):
    """A variance-scaling initializer counts fans from the kernel axes that face the input and
    the output (a `(dim, heads, head_dim)` kernel has fan-in `dim`, not `heads * dim`). The
    values are drawn for the `(fan_in, fan_out)` matrix and laid out in the kernel's shape;
    other initializers see the kernel's own shape."""
    if not isinstance(init, initializers.VarianceScaling) or \
            getattr(init, "input_axes", None) is not None:
        return init
    fan_in = math.prod(shapes.kernel_shape[i] for i in shapes.input_axes)
    fan_out = math.prod(shapes.kernel_shape[i] for i in shapes.output_axes)

    def draw(shape, dtype=None):
        return torch.as_tensor(init((fan_in, fan_out), dtype=dtype)).reshape(tuple(shape))
    return draw


class EinsumDense(Layer):
    """A dense layer written as an einsum: `activation(einsum(equation, inputs, kernel) + bias)`.

    Args:
        equation: `'<input>,<kernel>-><output>'` with one letter per axis, for example
            `'ab,bc->ac'` (a Dense layer), `'abc,cd->abd'` (the same on every step of a
            sequence), `'...x,xy->...y'` (any number of leading axes) or `'ab...,bc->ac...'`.
        output_shape: the output's shape without the batch dimension and without the axes an
            ellipsis stands for; None where the input decides. An int for one axis.
        activation: an activation name or function; none by default.
        bias_axes: the output letters that get a bias (`'c'`); no bias when None.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as for `Dense`.

    Weights: `kernel` with one axis per kernel letter, `bias` over the output from the first
    biased axis on (size 1 on unbiased axes).

    Example:
        >>> layer = EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")
        >>> layer(Input(shape=(32, 128))).shape
        (None, 32, 64)
    """

    def __init__(self, equation, output_shape, activation=None, bias_axes=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, lora_alpha=None, **kwargs):
        quantization_config = kwargs.pop("quantization_config", None)
        super().__init__(**kwargs)
        reject_lora("EinsumDense", lora_rank)
        if quantization_config is not None:
            raise ValueError(
                f"Layer {self.name!r} (EinsumDense): quantization_config is not supported; "
                "plexus runs EinsumDense in floating point. Remove quantization_config.")
        if not isinstance(equation, str):
            raise TypeError(f"EinsumDense: equation must be a string; received {equation!r}.")
        self.equation = equation
        if isinstance(output_shape, int):
            output_shape = (output_shape,)
        self.partial_output_shape = tuple(output_shape)
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        resolve_weight_args(self, kernel_initializer=kernel_initializer,
                            bias_initializer=bias_initializer,
                            kernel_regularizer=kernel_regularizer,
                            bias_regularizer=bias_regularizer,
                            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)

    def build(self, input_shape):
        shapes = EinsumShapes(self, input_shape)
        self.kernel = self.add_weight(shape=shapes.kernel_shape,
                                      initializer=_fan_aware(self.kernel_initializer, shapes),
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.bias = None
        if shapes.bias_shape is not None:
            self.bias = self.add_weight(shape=shapes.bias_shape,
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")
        self.built = True

    def call(self, inputs):
        kernel = self.kernel
        if inputs.dtype != kernel.dtype:  # integer data, or float64 tensors
            inputs = inputs.to(kernel.dtype)
        try:
            y = torch.einsum(self.equation, inputs, kernel)
        except RuntimeError as e:
            self.compute_output_shape(tuple(inputs.shape))  # a ValueError naming the shapes
            raise e
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        shapes = EinsumShapes(self, input_shape)
        if self.built and shapes.kernel_shape != tuple(self.kernel.shape):
            raise ValueError(
                f"Layer {self.name!r} (EinsumDense) was built with a kernel of shape "
                f"{tuple(self.kernel.shape)}, but an input of shape {tuple(input_shape)} needs "
                f"{shapes.kernel_shape} for {self.equation!r}.")
        return shapes.output_shape

    def get_config(self):
        return {**super().get_config(), "output_shape": self.partial_output_shape,
                "equation": self.equation, "activation": activations.serialize(self.activation),
                "bias_axes": self.bias_axes,
                **weight_args_config(self, "kernel_initializer", "bias_initializer",
                                     "kernel_regularizer", "bias_regularizer",
                                     "activity_regularizer", "kernel_constraint",
                                     "bias_constraint")}
