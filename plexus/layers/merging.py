"""Merge layers: combine a list of tensors into one."""
import torch

from plexus.layers.layer import Layer


def _fmt(shapes):
    return ", ".join(str(tuple(s)) for s in shapes)


class Merge(Layer):
    """Base of the merge layers: takes a list of at least two tensors."""

    _min_inputs = 2

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _check_list(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not isinstance(
                input_shape[0], (list, tuple)):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) must be called on a list of tensors, "
                f"e.g. {type(self).__name__.lower()}([x, y]); received a single input of shape "
                f"{input_shape}."
            )
        if len(input_shape) < self._min_inputs:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) needs at least {self._min_inputs} "
                f"inputs; received {len(input_shape)}."
            )

    def build(self, input_shape):
        self._check_list(input_shape)
        self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        """Shapes must match, allowing None (unknown) and 1 (broadcast)."""
        self._check_list(input_shape)
        ranks = {len(s) for s in input_shape}
        if len(ranks) != 1:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) needs inputs of the same rank; "
                f"received shapes {_fmt(input_shape)}."
            )
        out = []
        for dims in zip(*input_shape):
            known = {d for d in dims if d is not None and d != 1}
            if len(known) > 1:
                raise ValueError(
                    f"Layer {self.name!r} ({type(self).__name__}) needs inputs of the same shape; "
                    f"received shapes {_fmt(input_shape)}. Bring them to one shape first (for a "
                    "residual connection, a 1x1 Conv2D or a Dense on the shortcut)."
                )
            if known:
                out.append(known.pop())
            elif any(d is None for d in dims):
                out.append(None)
            else:
                out.append(1)
        out[0] = input_shape[0][0] if all(s[0] == input_shape[0][0] for s in input_shape) else None
        return tuple(out)

    def _output_dtype(self, inputs):
        return inputs[0].dtype

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        masks = [m for m in mask if m is not None]
        out = masks[0]
        for m in masks[1:]:
            out = out & m
        return out

    def _merge(self, inputs):
        raise NotImplementedError

    def call(self, inputs):
        return self._merge(list(inputs))


class Add(Merge):
    """Adds a list of tensors of the same shape: `add([x, y])`."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Subtract(Merge):
    """Subtracts two tensors: `subtract([x, y])` is `x - y`."""

    def _check_list(self, input_shape):
        super()._check_list(input_shape)
        if len(input_shape) != 2:
            raise ValueError(
                f"Layer {self.name!r} (Subtract) needs exactly 2 inputs; received {len(input_shape)}."
            )

    def _merge(self, inputs):
        return inputs[0] - inputs[1]


class Multiply(Merge):
    """Multiplies a list of tensors element-wise."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out * x
        return out


class Average(Merge):
    """Averages a list of tensors element-wise."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out / len(inputs)


class Maximum(Merge):
    """Element-wise maximum of a list of tensors."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = torch.maximum(out, x)
        return out


class Minimum(Merge):
    """Element-wise minimum of a list of tensors."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = torch.minimum(out, x)
        return out


class Concatenate(Merge):
    """Concatenates a list of tensors along `axis` (the last by default)."""

    _min_inputs = 1

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def compute_output_shape(self, input_shape):
        self._check_list(input_shape)
        rank = len(input_shape[0])
        if any(len(s) != rank for s in input_shape):
            raise ValueError(
                f"Layer {self.name!r} (Concatenate) needs inputs of the same rank; received "
                f"shapes {_fmt(input_shape)}."
            )
        axis = self.axis % rank if -rank <= self.axis < rank else None
        if axis is None or axis == 0:
            raise ValueError(
                f"Layer {self.name!r} (Concatenate): axis {self.axis} is not a valid feature axis "
                f"for inputs of rank {rank} (shapes {_fmt(input_shape)})."
            )
        out = []
        for i, dims in enumerate(zip(*input_shape)):
            if i == axis:
                out.append(None if any(d is None for d in dims) else sum(dims))
                continue
            known = {d for d in dims if d is not None}
            if len(known) > 1 and i != 0:
                raise ValueError(
                    f"Layer {self.name!r} (Concatenate) needs inputs whose shapes match except on "
                    f"the concatenation axis ({self.axis}); received shapes "
                    f"{_fmt(input_shape)}."
                )
            out.append(known.pop() if len(known) == 1 else None)
        return tuple(out)

    def call(self, inputs):
        return torch.cat(list(inputs), dim=self.axis)

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        full = []
        for x, m in zip(inputs, mask):
            m = torch.ones(x.shape[:-1] if m is None or m.ndim < x.ndim else x.shape,
                           dtype=torch.bool, device=x.device) if m is None else m
            full.append(m.unsqueeze(-1).expand(x.shape) if m.ndim < x.ndim else m)
        return torch.cat(full, dim=self.axis).all(dim=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    """Functional form of `Add`: `add([x, y])`."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of `Concatenate`: `concatenate([x, y], axis=-1)`."""
    return Concatenate(axis=axis, **kwargs)(inputs)
