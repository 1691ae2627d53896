"""Walking a functional graph from its symbolic tensors."""
from plexus.graph.tensor import KerasTensor


def get_source_inputs(tensor):
    """The `Input` tensors that `tensor` is computed from, in the order they are first met.

    Args:
        tensor: a symbolic tensor (the output of a layer called on `Input`s).

    Returns:
        A list of symbolic tensors made by `plexus.Input`; `[tensor]` for an `Input` itself.
        Anything that is not a symbolic tensor is returned as it is.

    Example:

        a, b = plexus.Input((3,)), plexus.Input((3,))
        out = plexus.layers.Add()([a, plexus.layers.Dense(3)(b)])
        plexus.utils.get_source_inputs(out)    # [a, b]
    """
    if not isinstance(tensor, KerasTensor):
        return tensor
    sources, seen, stack = [], set(), [tensor]
    while stack:
        t = stack.pop()
        node = t.node
        if node is None or node.is_input:
            if id(t) not in seen:
                seen.add(id(t))
                sources.append(t)
            continue
        stack.extend(reversed(node.input_tensors))
    return sources
