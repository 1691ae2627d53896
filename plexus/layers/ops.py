"""Layers recorded when symbolic tensors meet Python operators (`x + y`, `2 * x`, `x[:, 0]`)."""
import torch

from plexus.graph.tensor import KerasTensor, set_operator_handler
from plexus.layers.layer import Layer

_FNS = {
    "add": torch.add, "subtract": torch.sub, "multiply": torch.mul, "divide": torch.div,
    "power": torch.pow, "matmul": torch.matmul,
}


class TensorOp(Layer):
    """`x <op> constant` (or `constant <op> x` when `reverse`), and unary `-x`, `abs(x)`."""

    _is_op = True

    def __init__(self, op, constant=None, reverse=False, **kwargs):
        super().__init__(**kwargs)
        self.op, self.constant, self.reverse = op, constant, reverse

    def call(self, x):
        if self.op == "negative":
            return -x
        if self.op == "abs":
            return torch.abs(x)
        c = torch.as_tensor(self.constant, dtype=x.dtype, device=x.device)
        return _FNS[self.op](c, x) if self.reverse else _FNS[self.op](x, c)

    def get_config(self):
        return {**super().get_config(), "op": self.op, "constant": self.constant,
                "reverse": self.reverse}


class BinaryOp(Layer):
    """`x <op> y` for two symbolic tensors."""

    _is_op = True

    def __init__(self, op, **kwargs):
        super().__init__(**kwargs)
        self.op = op

    def call(self, inputs):
        return _FNS[self.op](inputs[0], inputs[1])

    def get_config(self):
        return {**super().get_config(), "op": self.op}


class GetItem(Layer):
    """`x[key]` on a symbolic tensor."""

    _is_op = True

    def __init__(self, key, **kwargs):
        super().__init__(**kwargs)
        self.key = key

    def call(self, x):
        return x[self.key]


def apply_op(op, x, other=None, reverse=False):
    """Record `x <op> other` on symbolic tensors as an operator layer's call."""
    if op == "getitem":
        return GetItem(other)(x)
    if isinstance(other, KerasTensor):
        return BinaryOp(op)([other, x] if reverse else [x, other])
    return TensorOp(op, constant=other, reverse=reverse)(x)


set_operator_handler(apply_op)
