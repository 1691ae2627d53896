"""Core ops (`keras.ops`): casting, conversion, control flow, slicing and scattering."""
import torch

from plexus.graph import tree
from plexus.graph.tensor import KerasTensor
from plexus.ops.common import t
from plexus.ops.dtypes import (  # noqa: F401 (re-exported)
    convert_to_tensor as _convert, standardize_dtype, torch_dtype,
)
from plexus.ops.table import op


@op("core", "Cast")
def cast(x, dtype):
    """`x` converted to `dtype`."""
    return t(x).to(torch_dtype(dtype))


@op("core", "SaturateCast")
def saturate_cast(x, dtype):
    """`x` converted to `dtype`, first clipped to the range that dtype can hold."""
    x = t(x)
    target = torch_dtype(dtype)
    if target.is_floating_point or target is torch.bool:
        if x.is_floating_point() and target.is_floating_point:
            info = torch.finfo(target)
            x = torch.clamp(x, info.min, info.max)
        return x.to(target)
    info = torch.iinfo(target)
    lo, hi = info.min, info.max
    if x.is_floating_point():
        src = torch.finfo(x.dtype)
        lo, hi = max(lo, src.min), min(hi, src.max)
        # the largest float below `hi` that casts safely
        hi_t = torch.tensor(hi, dtype=x.dtype)
        if hi_t.item() > hi:
            hi_t = torch.nextafter(hi_t, torch.tensor(0, dtype=x.dtype))
        return torch.clamp(x, lo, hi_t.item()).to(target)
    src = torch.iinfo(x.dtype) if x.dtype is not torch.bool else torch.iinfo(torch.uint8)
    return torch.clamp(x, max(lo, src.min), min(hi, src.max)).to(target)


@op("core", "ConvertToTensor")
def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """`x` as a torch tensor (see `plexus.ops.dtypes.convert_to_tensor` for dtype rules)."""
    return _convert(x, dtype, sparse, ragged)


def convert_to_numpy(x):
    """`x` as a NumPy array (moved to the CPU and detached from autograd)."""
    if isinstance(x, KerasTensor):
        x.numpy()  # raises the symbolic tensor's own error
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype is torch.bfloat16:
            x = x.float()
        return x.cpu().numpy()
    import numpy as np
    return np.asarray(x)


def is_tensor(x):
    """Whether `x` is a torch tensor (symbolic tensors are not)."""
    return isinstance(x, torch.Tensor)


def shape(x):
    """The shape of `x` as a tuple of ints; `None` for unknown sizes of a symbolic tensor."""
    if isinstance(x, KerasTensor):
        return x.shape
    return tuple(t(x).shape)


def dtype(x):
    """Keras's name of the dtype of `x` (`"float32"`)."""
    if isinstance(x, KerasTensor):
        return x.dtype
    return standardize_dtype(t(x).dtype)


@op("core", "StopGradient", ("variable",))
def stop_gradient(variable):
    """`variable` with no gradient flowing back through it."""
    return t(variable).detach()


# ------------------------------------------------------------------------------ slicing
@op("core", "Slice", "inputs,start_indices")
def slice_(inputs, start_indices, shape):
    """The block of `inputs` of `shape` starting at `start_indices`."""
    x = t(inputs)
    starts = [int(s) for s in (start_indices.tolist() if isinstance(start_indices, torch.Tensor)
                               else start_indices)]
    return x[tuple(slice(s, s + n) for s, n in zip(starts, shape))]


@op("core", "SliceUpdate", "inputs,start_indices,updates")
def slice_update(inputs, start_indices, updates):
    """A copy of `inputs` with the block at `start_indices` replaced by `updates`."""
    x = t(inputs)
    u = t(updates).to(x.device, x.dtype)
    starts = [int(s) for s in (start_indices.tolist() if isinstance(start_indices, torch.Tensor)
                               else start_indices)]
    out = x.clone()
    out[tuple(slice(s, s + n) for s, n in zip(starts, u.shape))] = u
    return out


def _index_tuple(indices):
    idx = t(indices).long()
    return tuple(idx[..., i] for i in range(idx.shape[-1]))


@op("core", "Scatter", "indices,values")
def scatter(indices, values, shape):
    """A zero tensor of `shape` with `values` added at `indices` (`(..., index_depth)`)."""
    v = t(values)
    out = torch.zeros(tuple(shape), dtype=v.dtype, device=v.device)
    return out.index_put(_index_tuple(indices), v, accumulate=True)


@op("core", "ScatterUpdate", "inputs,indices,updates")
def scatter_update(inputs, indices, updates, reduction=None):
    """A copy of `inputs` with `updates` written at `indices`; `reduction` ("add", "mul",
    "max", "min") combines them with the existing values instead."""
    x = t(inputs)
    u = t(updates).to(x.device, x.dtype)
    idx = _index_tuple(indices)
    if reduction is None:
        return x.index_put(idx, u)
    if reduction == "add":
        return x.index_put(idx, u, accumulate=True)
    reduce = {"mul": "prod", "max": "amax", "min": "amin"}.get(reduction)
    if reduce is None:
        raise ValueError(f"scatter_update: reduction must be None, 'add', 'mul', 'max' or 'min'; "
                         f"got {reduction!r}.")
    depth = len(idx)
    flat_index = torch.zeros_like(idx[0])
    for i, ix in enumerate(idx):
        flat_index = flat_index * x.shape[i] + ix
    inner = x.shape[depth:]
    flat = x.reshape((-1,) + tuple(inner))
    src = u.reshape((-1,) + tuple(inner))
    index = flat_index.reshape(-1).reshape((-1,) + (1,) * len(inner)).expand_as(src)
    return flat.scatter_reduce(0, index, src, reduce=reduce).reshape(x.shape)


@op("core", "Unstack")
def unstack(x, num=None, axis=0):
    """The slices of `x` along `axis`, as a list."""
    x = t(x)
    if num is not None and x.shape[axis] != num:
        raise ValueError(f"unstack: num={num} but axis {axis} of x (shape {tuple(x.shape)}) has "
                         f"size {x.shape[axis]}.")
    return list(torch.unbind(x, dim=axis))


# ------------------------------------------------------------------------------ control flow
@op("core", "Cond", "pred,true_fn,false_fn")
def cond(pred, true_fn, false_fn):
    """`true_fn()` if `pred` else `false_fn()`."""
    return true_fn() if bool(t(pred)) else false_fn()


@op("core", "WhileLoop", ("loop_vars",))
def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """Repeat `loop_vars = body(*loop_vars)` while `cond(*loop_vars)` (at most
    `maximum_iterations` times). A single tensor (not a tuple) is passed as itself."""
    single = not isinstance(loop_vars, (list, tuple))
    state = (loop_vars,) if single else tuple(loop_vars)
    steps = 0
    while (maximum_iterations is None or steps < maximum_iterations) and bool(t(cond(*state))):
        out = body(*state)
        state = (out,) if single or not isinstance(out, (list, tuple)) else tuple(out)
        steps += 1
    if single:
        return state[0]
    return list(state) if isinstance(loop_vars, list) else state


@op("core", "ForiLoop", ("init_val",))
def fori_loop(lower, upper, body_fun, init_val):
    """`val = body_fun(i, val)` for `i` in `range(lower, upper)`; returns the final `val`."""
    val = init_val
    for i in range(int(lower), int(upper)):
        val = body_fun(i, val)
    return val


def _leaves(xs):
    return [t(x) for x in tree.flatten(xs)]


@op("core", "Scan", "f,init,xs")
def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """`carry, y = f(carry, x)` over the leading axis of `xs`; returns
    `(final carry, stacked ys)`."""
    flat = _leaves(xs) if xs is not None else []
    n = length if length is not None else (flat[0].shape[0] if flat else None)
    if n is None:
        raise ValueError("scan: give xs or length.")
    carry, ys = init, []
    for i in (reversed(range(n)) if reverse else range(n)):
        x = tree.pack_like(xs, [leaf[i] for leaf in flat]) if xs is not None else None
        carry, y = f(carry, x)
        ys.append(y)
    if reverse:
        ys.reverse()
    if not ys or ys[0] is None:
        return carry, None
    stacked = [torch.stack([t(v) for v in vals]) for vals in zip(*[tree.flatten(y) for y in ys])]
    return carry, tree.pack_like(ys[0], stacked)


@op("core", "AssociativeScan", "f,elems")
def associative_scan(f, elems, reverse=False, axis=0):
    """Inclusive prefix scan of `elems` along `axis` with the associative function `f`
    (`associative_scan(add, x)` is `cumsum`)."""
    flat = [torch.movedim(leaf, axis, 0) for leaf in _leaves(elems)]
    n = flat[0].shape[0]
    order = list(reversed(range(n))) if reverse else list(range(n))
    acc, outs = None, [None] * n
    for i in order:
        cur = tree.pack_like(elems, [leaf[i] for leaf in flat])
        acc = cur if acc is None else f(acc, cur) if not reverse else f(cur, acc)
        outs[i] = acc
    stacked = [torch.movedim(torch.stack(vals), 0, axis)
               for vals in zip(*[tree.flatten(o) for o in outs])]
    return tree.pack_like(elems, stacked)


@op("core", "Map", "f,xs")
def map_(f, xs):
    """`f` applied to each slice of `xs` along its leading axis; results stacked."""
    flat = _leaves(xs)
    outs = [f(tree.pack_like(xs, [leaf[i] for leaf in flat])) for i in range(flat[0].shape[0])]
    stacked = [torch.stack([t(v) for v in vals]) for vals in zip(*[tree.flatten(o) for o in outs])]
    return tree.pack_like(outs[0], stacked)


@op("core", "Switch", "index,branches,operands")
def switch(index, branches, *operands):
    """`branches[index](*operands)`, `index` clamped to the valid range."""
    i = min(max(int(t(index)), 0), len(branches) - 1)
    return branches[i](*operands)


@op("core", "VectorizedMap", ("elements",))
def vectorized_map(function, elements):
    """`function` applied to each slice of `elements` along the leading axis, vectorized
    with `torch.vmap` (falling back to a loop for functions vmap cannot trace)."""
    try:
        return torch.vmap(function)(elements)
    except (RuntimeError, ValueError, TypeError, NotImplementedError):
        return map_.__wrapped__(function, elements)


def custom_gradient(f):
    """Decorator for a function returning `(output, grad_fn)`: gradients flow through
    `grad_fn(upstream)` instead of autograd's own rule.

    Example:
        >>> @custom_gradient
        ... def clip_grad(x):
        ...     return x, lambda upstream: upstream.clamp(-1, 1)
    """
    import inspect

    def wrapped(*args, **kwargs):
        class _Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, *tensors):
                with torch.enable_grad():
                    out, grad_fn = f(*tensors, **kwargs)
                ctx.grad_fn = grad_fn
                return out.detach() if isinstance(out, torch.Tensor) else out

            @staticmethod
            def backward(ctx, *upstream):
                fn = ctx.grad_fn
                try:
                    takes_upstream = "upstream" in inspect.signature(fn).parameters
                except (TypeError, ValueError):
                    takes_upstream = False
                grads = fn(upstream=upstream[0]) if takes_upstream and len(upstream) == 1 \
                    else fn(*upstream)
                grads = grads if isinstance(grads, (list, tuple)) else (grads,)
                return tuple(grads)

        tensors = [t(a) if not isinstance(a, torch.Tensor) else a for a in args]
        return _Fn.apply(*tensors)

    wrapped.__name__ = getattr(f, "__name__", "custom_gradient")
    wrapped.__doc__ = getattr(f, "__doc__", None)
    return wrapped
