"""`keras.ops` calls recorded in Keras functional configs, as plexus layers.

Keras 3 writes `x + 1`, `ops.mean(x, axis=1)` or the mask of `Embedding(mask_zero=True)`
(`NotEqual(x, 0)`) into a model's config as operation nodes with `"module":
"keras.src.ops.numpy"`. Each class here replays one of them on torch tensors. Only the names
in `OPS` can be created from a file; their arguments are plain numbers, axes and shapes.
"""
import inspect

import torch

from plexus.graph import tree
from plexus.graph.node import Node
from plexus.graph.tensor import KerasTensor, torch_dtype
from plexus.layers.layer import Layer


def _t(x, like=None):
    if isinstance(x, torch.Tensor):
        return x
    dtype = like.dtype if isinstance(like, torch.Tensor) and isinstance(x, (int, float)) and \
        like.is_floating_point() else None
    return torch.as_tensor(x, dtype=dtype, device=like.device if like is not None else None)


def _first_tensor(args):
    return next((a for a in tree.flatten(list(args)) if isinstance(a, torch.Tensor)), None)


def _binary(fn):
    def run(x, y):
        like = x if isinstance(x, torch.Tensor) else y
        return fn(_t(x, like), _t(y, like))
    return run


def _unary(fn):
    def run(x):
        return fn(x)
    return run


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _reduce(fn):
    def run(x, axis=None, keepdims=False):
        if axis is None:
            out = fn(x)
            return out.reshape((1,) * x.ndim) if keepdims else out
        return fn(x, dim=_axis(axis), keepdim=keepdims)
    return run


def _max(x, axis=None, keepdims=False, initial=None):
    if axis is None:
        return torch.amax(x, dim=tuple(range(x.ndim)), keepdim=keepdims)
    return torch.amax(x, dim=_axis(axis), keepdim=keepdims)


def _min(x, axis=None, keepdims=False, initial=None):
    if axis is None:
        return torch.amin(x, dim=tuple(range(x.ndim)), keepdim=keepdims)
    return torch.amin(x, dim=_axis(axis), keepdim=keepdims)


def _get_item(x, key):
    if isinstance(key, list):
        key = tuple(key)
    return x[key]


OPS = {
    "Add": _binary(torch.add), "Subtract": _binary(torch.sub),
    "Multiply": _binary(torch.mul), "Divide": _binary(torch.true_divide),
    "TrueDivide": _binary(torch.true_divide), "Power": _binary(torch.pow),
    "Matmul": _binary(torch.matmul), "Maximum": _binary(torch.maximum),
    "Minimum": _binary(torch.minimum), "NotEqual": _binary(torch.ne),
    "Equal": _binary(torch.eq), "Greater": _binary(torch.gt),
    "GreaterEqual": _binary(torch.ge), "Less": _binary(torch.lt), "LessEqual": _binary(torch.le),
    "Negative": _unary(torch.neg), "Absolute": _unary(torch.abs), "Abs": _unary(torch.abs),
    "Sqrt": _unary(torch.sqrt), "Square": _unary(torch.square), "Exp": _unary(torch.exp),
    "Log": _unary(torch.log), "Tanh": _unary(torch.tanh), "Sigmoid": _unary(torch.sigmoid),
    "Relu": _unary(torch.relu),
    "Mean": _reduce(torch.mean), "Sum": _reduce(torch.sum), "Max": _max, "Min": _min,
    "Reshape": lambda x, newshape: x.reshape(tuple(newshape)),
    "Transpose": lambda x, axes=None: x.permute(*axes) if axes is not None else x.permute(
        *reversed(range(x.ndim))),
    "ExpandDims": lambda x, axis: torch.unsqueeze(x, axis),
    "Squeeze": lambda x, axis=None: torch.squeeze(x) if axis is None else torch.squeeze(
        x, _axis(axis)),
    "Concatenate": lambda xs, axis=0: torch.cat(list(xs), dim=axis),
    "Stack": lambda xs, axis=0: torch.stack(list(xs), dim=axis),
    "Cast": lambda x, dtype: x.to(torch_dtype(dtype)),
    "GetItem": _get_item,
}


class KerasOp(Layer):
    """One recorded `keras.ops` call; the class is chosen by the op's name in the config."""

    op_name = None
    _is_op = True

    def __init__(self, name=None, **op_config):
        super().__init__(name=name)
        params = inspect.signature(OPS[self.op_name]).parameters
        unknown = [k for k in op_config if k not in params]
        if unknown:
            raise TypeError(f"Op {self.op_name} ({name!r}) does not take {', '.join(unknown)}.")
        self.op_config = op_config

    @classmethod
    def from_config(cls, config):
        config = {k: v for k, v in config.items() if k not in ("trainable", "dtype")}
        return cls(**config)

    def call(self, *args):
        return OPS[self.op_name](*args, **self.op_config)

    def __call__(self, *args, **kwargs):
        if any(isinstance(t, KerasTensor) for t in tree.flatten((list(args), kwargs))):
            return self._op_symbolic_call(args, kwargs)
        return super().__call__(*args, **kwargs)

    def _op_symbolic_call(self, args, kwargs):
        """Record the call: operands may be constants in any position (`1.0 + x`)."""
        self.built = True
        outputs = self._traced_output_spec(*args, **kwargs)
        outputs = tree.map_structure(lambda s: KerasTensor(s.shape, s.dtype), outputs)
        Node(self, args, kwargs, outputs)
        return outputs

    def get_config(self):
        return {"name": self.name, **self.op_config}


def _make(op_name):
    return type(op_name, (KerasOp,), {"op_name": op_name, "__module__": __name__,
                                      "__doc__": f"The `{op_name}` op of a Keras graph."})


OP_CLASSES = {name: _make(name) for name in OPS}
