"""`rearrange` (einops-style axis notation) and `vectorize` (NumPy's), on torch."""
import re

import torch

from plexus.ops.common import t
from plexus.ops.table import op

_TOKEN = re.compile(r"\(|\)|[A-Za-z_][A-Za-z0-9_]*|\d+|\.\.\.")


def _side(text, what):
    groups, current = [], None
    for tok in _TOKEN.findall(text):
        if tok == "(":
            if current is not None:
                raise ValueError(f"{what}: nested parentheses in {text!r}.")
            current = []
        elif tok == ")":
            if current is None:
                raise ValueError(f"{what}: unbalanced parentheses in {text!r}.")
            groups.append(current)
            current = None
        elif current is not None:
            current.append(tok)
        else:
            groups.append([tok])
    if current is not None:
        raise ValueError(f"{what}: unbalanced parentheses in {text!r}.")
    return groups


@op("einops", "Rearrange", ("tensor", "pattern"), varkw_call=True)
def rearrange(tensor, pattern, **axes_lengths):
    """Reorder, split and merge axes as described by `pattern`, for example
    `"b (h w) c -> b h w c"` with `h=4`."""
    what = "rearrange"
    x = t(tensor)
    if "->" not in pattern:
        raise ValueError(f"{what}: pattern must contain '->'; got {pattern!r}.")
    left, right = (_side(s, what) for s in pattern.split("->"))
    if sum(1 for g in left if g == ["..."]) or sum(1 for g in right if g == ["..."]):
        n_named = len(left) - 1
        extra = x.ndim - n_named
        names = [f"_e{i}" for i in range(extra)]
        left = [g for grp in left for g in ([[n] for n in names] if grp == ["..."] else [grp])]
        right = [g for grp in right for g in ([[n] for n in names] if grp == ["..."] else [grp])]
    if len(left) != x.ndim:
        raise ValueError(f"{what}: the pattern's left side has {len(left)} axes but the tensor "
                         f"has shape {tuple(x.shape)}.")
    sizes = dict(axes_lengths)
    for group, n in zip(left, x.shape):
        unknown = [a for a in group if a not in sizes and not a.isdigit()]
        known = 1
        for a in group:
            known *= int(a) if a.isdigit() else sizes.get(a, 1)
        if len(unknown) > 1:
            raise ValueError(f"{what}: cannot split an axis of size {n} into {group}; give the "
                             f"sizes of all but one of {unknown}.")
        if unknown:
            if n % known:
                raise ValueError(f"{what}: axis of size {n} does not divide into {group}.")
            sizes[unknown[0]] = n // known
        elif known != n:
            raise ValueError(f"{what}: axis group {group} has size {known}, but the axis is {n}.")
    flat_left = [a for g in left for a in g if not a.isdigit()]
    elementary = x.reshape([int(a) if a.isdigit() else sizes[a] for g in left for a in g])
    keep = [i for i, a in enumerate(a for g in left for a in g) if not a.isdigit()]
    elementary = elementary.reshape([elementary.shape[i] for i in keep])
    flat_right = [a for g in right for a in g if not a.isdigit()]
    if sorted(flat_left) != sorted(flat_right):
        raise ValueError(f"{what}: both sides of {pattern!r} must name the same axes.")
    moved = elementary.permute(*[flat_left.index(a) for a in flat_right])
    shape = []
    for g in right:
        size = 1
        for a in g:
            size *= int(a) if a.isdigit() else sizes[a]
        shape.append(size)
    return moved.reshape(shape)


def vectorize(pyfunc, *, excluded=None, signature=None):
    """Turn a function of scalars (or of core arrays, per `signature` such as
    `"(n),(n)->()"`) into one that maps over the leading axes of tensors (`torch.vmap`)."""
    excluded = set(excluded or ())
    core = _parse_signature(signature) if signature else None

    def wrapped(*args, **kwargs):
        tensors = [i for i, a in enumerate(args) if i not in excluded]
        values = [t(a) if i in tensors else a for i, a in enumerate(args)]
        core_dims = core or [0] * len(values)
        loop_shapes = [values[i].shape[:values[i].ndim - core_dims[k]]
                       for k, i in enumerate(tensors)]
        loop = torch.broadcast_shapes(*loop_shapes)
        for k, i in enumerate(tensors):
            v = values[i]
            values[i] = v.expand(loop + v.shape[v.ndim - core_dims[k]:])
        fn = lambda *vs: pyfunc(*vs, **kwargs)  # noqa: E731
        dims = tuple(0 if i in tensors else None for i in range(len(values)))
        for _ in range(len(loop)):
            fn = torch.vmap(fn, in_dims=dims)
        return fn(*values)

    return wrapped


def _parse_signature(signature):
    inputs = signature.split("->")[0]
    return [len([d for d in grp.split(",") if d.strip()])
            for grp in re.findall(r"\(([^)]*)\)", inputs)]
