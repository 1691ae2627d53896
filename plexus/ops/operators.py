"""Python operators on symbolic tensors (`x + 1`, `x[:, 0]`, `a < b`) record op nodes."""
from plexus.graph import tensor as _tensor
from plexus.ops.table import BY_NAME


def record_operator(name, *operands):
    """`KerasTensor.__add__` and friends: the public op of that name on the operands."""
    return BY_NAME[name].public(*operands)


_tensor.set_operator_handler(record_operator)
