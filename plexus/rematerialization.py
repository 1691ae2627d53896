"""`remat`: rematerialization (gradient checkpointing), as `keras.remat`."""
import functools

import torch
import torch.utils.checkpoint

from plexus import tree
from plexus.graph.tensor import KerasTensor


def remat(f):
    """`f` wrapped so that its intermediate results are not kept for the backward pass but
    recomputed during it (`torch.utils.checkpoint`, non-reentrant): less memory for more
    compute. Without gradients (inference), or on symbolic tensors, it simply calls `f`.

    Example:
        >>> class Block(plexus.layers.Layer):
        ...     def __init__(self, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.inner = plexus.remat(self.intermediate)
        ...     def intermediate(self, x):
        ...         return plexus.ops.relu(x) * 2.0
        ...     def call(self, x):
        ...         return self.inner(x)
    """
    @functools.wraps(f)
    def wrapped(*args, **kwargs):
        if not torch.is_grad_enabled() or any(
                isinstance(v, KerasTensor) for v in tree.flatten((args, kwargs))):
            return f(*args, **kwargs)
        return torch.utils.checkpoint.checkpoint(f, *args, use_reentrant=False, **kwargs)
    return wrapped
