"""Shape, joining, splitting and indexing ops (`keras.ops.numpy`)."""
import torch
import torch.nn.functional as F

from plexus.ops.common import operands, pair, promoted, t, tensor_list
from plexus.ops.dtypes import result_type, torch_dtype
from plexus.ops.table import op


@op("numpy", "Reshape")
def reshape(x, newshape):
    """`x` with shape `newshape` (one entry may be -1)."""
    if isinstance(newshape, int):
        newshape = (newshape,)
    elif None in newshape:  # an unknown size (`ops.shape(x)[0]` of a symbolic tensor)
        if sum(1 for d in newshape if d is None or d == -1) > 1:
            raise ValueError(f"reshape: newshape {tuple(newshape)} leaves more than one size "
                             "to infer (None is an unknown size, inferred like -1); give all "
                             "sizes but one, for example (-1, 40) instead of (batch, -1).")
        newshape = tuple(-1 if d is None else d for d in newshape)
    return torch.reshape(t(x), newshape)


@op("numpy", "Transpose")
def transpose(x, axes=None):
    """Permute the axes (reverse them by default)."""
    x = t(x)
    if axes is None:
        return x.permute(*range(x.ndim - 1, -1, -1))
    return x.permute(*axes)


@op("numpy", "ExpandDims")
def expand_dims(x, axis):
    """Insert size-1 axes at `axis` (an int or a tuple)."""
    x = t(x)
    if isinstance(axis, int):
        return torch.unsqueeze(x, axis)
    out_ndim = x.ndim + len(axis)
    for a in sorted(a % out_ndim for a in axis):
        x = torch.unsqueeze(x, a)
    return x


@op("numpy", "Squeeze")
def squeeze(x, axis=None):
    """Remove size-1 axes (all of them, or those in `axis`)."""
    x = t(x)
    if axis is None:
        return torch.squeeze(x)
    dims = (axis,) if isinstance(axis, int) else tuple(axis)
    for d in dims:
        if x.shape[d] != 1:
            raise ValueError(f"squeeze: axis {d} of x (shape {tuple(x.shape)}) has size "
                             f"{x.shape[d]}, not 1.")
    return torch.squeeze(x, dims)


@op("numpy", "Ravel")
def ravel(x):
    """`x` flattened to 1-D."""
    return torch.reshape(t(x), (-1,))


@op("numpy", "BroadcastTo")
def broadcast_to(x, shape):
    """`x` broadcast to `shape`."""
    return torch.broadcast_to(t(x), tuple(shape))


@op("numpy", "Moveaxis")
def moveaxis(x, source, destination):
    """Move axes `source` to positions `destination`."""
    return torch.movedim(t(x), source, destination)


@op("numpy", "Swapaxes")
def swapaxes(x, axis1, axis2):
    """Exchange two axes."""
    return torch.swapaxes(t(x), axis1, axis2)


def ndim(x):
    """Number of axes of `x` (a Python int; known for symbolic tensors too)."""
    from plexus.graph.tensor import KerasTensor
    return len(x.shape) if isinstance(x, KerasTensor) else t(x).ndim


@op("numpy", "Ndim", name="_ndim_node")
def _ndim_node(x):
    """What a Keras file's `Ndim` node computes: the number of axes as an int32 tensor."""
    return torch.tensor(t(x).ndim, dtype=torch.int32)


@op("numpy", "Size")
def size(x):
    """Number of elements, as an int64 scalar tensor."""
    x = t(x)
    return torch.prod(torch.tensor(tuple(x.shape), dtype=torch.int64, device=x.device))


@op("numpy", "Copy")
def copy(x):
    """A copy of `x`."""
    return torch.clone(t(x))


@op("numpy", "Concatenate", ("xs",))
def concatenate(xs, axis=0):
    """Join tensors along an existing `axis` (None: flatten them first)."""
    xs = tensor_list(xs)
    if axis is None:
        return torch.cat([x.reshape(-1) for x in xs])
    return torch.cat(xs, dim=axis)


@op("numpy", "Append", "x1,x2")
def append(x1, x2, axis=None):
    """`x2` appended to `x1` along `axis` (flattened when None)."""
    a, b = pair(x1, x2)
    if axis is None:
        return torch.cat((a.reshape(-1), b.reshape(-1)))
    return torch.cat((a, b), dim=axis)


@op("numpy", "Stack", ("x",))
def stack(x, axis=0):
    """Join tensors along a new `axis`."""
    return torch.stack(tensor_list(x), dim=axis)


@op("numpy", "Hstack", ("xs",))
def hstack(xs):
    """Stack horizontally (along axis 1; axis 0 for 1-D tensors)."""
    return torch.hstack(tensor_list(xs))


@op("numpy", "Vstack", ("xs",))
def vstack(xs):
    """Stack vertically (along axis 0, 1-D tensors as rows)."""
    return torch.vstack(tensor_list(xs))


@op("numpy", "Dstack", ("xs",))
def dstack(xs):
    """Stack along the third axis."""
    return torch.dstack(tensor_list(xs))


def _check_sections(x, sections, axis, what):
    if isinstance(sections, int) and x.shape[axis] % sections:
        raise ValueError(f"{what}: axis {axis} of x (shape {tuple(x.shape)}) has size "
                         f"{x.shape[axis]}, which does not divide into {sections} equal "
                         "sections. Use `array_split` for unequal sections.")


def _split_at(x, sections, axis):
    if isinstance(sections, int):
        return list(torch.tensor_split(x, sections, dim=axis))
    return list(torch.tensor_split(x, [int(i) for i in sections], dim=axis))


@op("numpy", "Split")
def split(x, indices_or_sections, axis=0):
    """Split into equal sections (an int) or at the given indices along `axis`; a list."""
    x = t(x)
    _check_sections(x, indices_or_sections, axis, "split")
    return _split_at(x, indices_or_sections, axis)


@op("numpy", "ArraySplit")
def array_split(x, indices_or_sections, axis=0):
    """Split into `n` nearly equal sections (the first ones one larger) along `axis`."""
    return _split_at(t(x), indices_or_sections, axis)


@op("numpy", "Hsplit")
def hsplit(x, indices_or_sections):
    """Split along axis 1 (axis 0 for 1-D tensors)."""
    x = t(x)
    axis = 0 if x.ndim == 1 else 1
    _check_sections(x, indices_or_sections, axis, "hsplit")
    return _split_at(x, indices_or_sections, axis)


@op("numpy", "Vsplit")
def vsplit(x, indices_or_sections):
    """Split along axis 0."""
    x = t(x)
    _check_sections(x, indices_or_sections, 0, "vsplit")
    return _split_at(x, indices_or_sections, 0)


@op("numpy", "Dsplit")
def dsplit(x, indices_or_sections):
    """Split along axis 2."""
    x = t(x)
    _check_sections(x, indices_or_sections, 2, "dsplit")
    return _split_at(x, indices_or_sections, 2)


@op("numpy", "Tile")
def tile(x, repeats):
    """Repeat the whole of `x` `repeats` times along each axis."""
    x = t(x)
    if hasattr(repeats, "tolist"):  # a tensor or array of counts
        repeats = repeats.tolist()
    reps = (repeats,) if isinstance(repeats, int) else tuple(int(r) for r in repeats)
    return torch.tile(x, reps)


@op("numpy", "Repeat")
def repeat(x, repeats, axis=None):
    """Repeat each element `repeats` times along `axis` (the flattened tensor by default)."""
    x = t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    if isinstance(repeats, int):
        axis = axis % x.ndim
        shape = list(x.shape)
        y = x.unsqueeze(axis + 1).expand(*shape[:axis + 1], repeats, *shape[axis + 1:])
        shape[axis] *= repeats
        return y.reshape(shape)
    reps = torch.as_tensor(repeats, device=x.device)
    total = int(sum(repeats)) if isinstance(repeats, (list, tuple)) else None
    return torch.repeat_interleave(x, reps, dim=axis, output_size=total)


@op("numpy", "Flip")
def flip(x, axis=None):
    """Reverse the order of elements along `axis` (all axes by default)."""
    x = t(x)
    dims = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    return torch.flip(x, dims)


@op("numpy", "Fliplr")
def fliplr(x):
    """Reverse along axis 1."""
    return torch.fliplr(t(x))


@op("numpy", "Flipud")
def flipud(x):
    """Reverse along axis 0."""
    return torch.flipud(t(x))


@op("numpy", "Roll")
def roll(x, shift, axis=None):
    """Shift elements cyclically by `shift` along `axis` (the flattened tensor by default)."""
    x = t(x)
    if axis is None:
        return torch.roll(x.reshape(-1), shift).reshape(x.shape)
    return torch.roll(x, shift, dims=axis)


@op("numpy", "Rot90", ("array",))
def rot90(array, k=1, axes=(0, 1)):
    """Rotate by 90 degrees `k` times in the plane of `axes`."""
    x = t(array)
    if x.ndim < 2:
        raise ValueError(f"rot90: array must have at least 2 axes; got shape {tuple(x.shape)}.")
    return torch.rot90(x, k, tuple(axes))


@op("numpy", "Tril")
def tril(x, k=0):
    """Lower triangle of the last two axes (zeros above diagonal `k`)."""
    return torch.tril(t(x), diagonal=k)


@op("numpy", "Triu")
def triu(x, k=0):
    """Upper triangle of the last two axes (zeros below diagonal `k`)."""
    return torch.triu(t(x), diagonal=k)


@op("numpy", "Diag")
def diag(x, k=0):
    """The `k`-th diagonal of a 2-D tensor, or a 2-D tensor with 1-D `x` on that diagonal."""
    x = t(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"diag: x must be 1-D or 2-D; got shape {tuple(x.shape)}.")
    return torch.diag(x, k)


@op("numpy", "Diagflat")
def diagflat(x, k=0):
    """A 2-D tensor with the flattened `x` on diagonal `k`."""
    return torch.diagflat(t(x), offset=k)


@op("numpy", "Diagonal")
def diagonal(x, offset=0, axis1=0, axis2=1):
    """The diagonal over axes `axis1`/`axis2`, as the last axis."""
    return torch.diagonal(t(x), offset=offset, dim1=axis1, dim2=axis2)


@op("numpy", "Trace")
def trace(x, offset=0, axis1=0, axis2=1):
    """Sum along a diagonal; small integers sum as int32."""
    x = t(x)
    small = x.dtype in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32)
    out = torch.sum(torch.diagonal(x, offset=offset, dim1=axis1, dim2=axis2), dim=-1)
    return out.to(torch.int32) if small else out


@op("numpy", "Diff", ("a",))
def diff(a, n=1, axis=-1):
    """The `n`-th discrete difference along `axis`."""
    return torch.diff(t(a), n=n, dim=axis)


# ------------------------------------------------------------------------------ padding
@op("numpy", "Pad", "x,constant_values")
def pad(x, pad_width, mode="constant", constant_values=None):
    """Pad each axis by `pad_width` (`((before, after), ...)` or one pair for all axes).

    `mode`: `"constant"` (with `constant_values`), `"reflect"` or `"symmetric"`.
    """
    x = t(x)
    widths = _pad_widths(pad_width, x.ndim)
    if mode == "constant":
        flat = [p for w in reversed(widths) for p in w]
        value = 0 if constant_values is None else constant_values
        if isinstance(value, torch.Tensor):
            value = value.item()
        if x.dtype is torch.bool:
            return F.pad(x.to(torch.uint8), flat, value=int(value)).bool()
        return F.pad(x, flat, value=value)
    if constant_values is not None:
        raise ValueError(f"pad: constant_values can only be given with mode='constant'; "
                         f"got mode={mode!r}.")
    if mode not in ("reflect", "symmetric"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect' or 'symmetric'; got {mode!r}.")
    for axis, (before, after) in enumerate(widths):
        if before or after:
            x = _mirror(x, axis, before, after, mode == "symmetric")
    return x


def _mirror(x, axis, before, after, symmetric):
    n = x.shape[axis]
    skip = 0 if symmetric else 1
    if before > n - skip or after > n - skip:
        raise ValueError(f"pad: mode {'symmetric' if symmetric else 'reflect'} can pad axis "
                         f"{axis} of size {n} by at most {n - skip}; got ({before}, {after}).")
    head = torch.flip(torch.narrow(x, axis, skip, before), (axis,)) if before else None
    tail = torch.flip(torch.narrow(x, axis, n - after - skip, after), (axis,)) if after else None
    return torch.cat([p for p in (head, x, tail) if p is not None], dim=axis)


def _pad_widths(pad_width, ndim):
    if isinstance(pad_width, int):
        return [(pad_width, pad_width)] * ndim
    widths = [tuple(int(v) for v in (w if isinstance(w, (list, tuple)) else (w, w)))
              for w in pad_width]
    if len(widths) == 1:
        widths = widths * ndim
    if len(widths) != ndim:
        raise ValueError(f"pad: pad_width has {len(widths)} entries for a tensor of {ndim} axes; "
                         "give one (before, after) pair per axis.")
    return widths


# ------------------------------------------------------------------------------ indexing
def _get_item_key(key):
    if isinstance(key, list):
        key = tuple(key)
    if isinstance(key, tuple):
        return tuple(_get_item_key(k) if isinstance(k, list) else k for k in key)
    return key


@op("numpy", "GetItem", "x,key")
def get_item(x, key):
    """`x[key]` (ints, slices, `None`, `...` and index tensors)."""
    x = t(x)
    if isinstance(key, tuple):
        key = tuple(k.long() if isinstance(k, torch.Tensor) and not k.dtype.is_floating_point
                    and k.dtype is not torch.bool else k for k in key)
    elif isinstance(key, list):
        key = _get_item_key(key)
    return x[key]


@op("numpy", "Take", "x,indices")
def take(x, indices, axis=None):
    """Elements of `x` at `indices` along `axis` (of the flattened tensor by default);
    negative indices count from the end."""
    x = t(x)
    idx = t(indices).to(x.device).long()
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = axis % x.ndim
    n = x.shape[axis]
    idx = torch.where(idx < 0, idx + n, idx)
    out = torch.index_select(x, axis, idx.reshape(-1))
    return out.reshape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])


@op("numpy", "TakeAlongAxis", "x,indices")
def take_along_axis(x, indices, axis=None):
    """Elements of `x` at `indices` matched along `axis` (see NumPy's `take_along_axis`)."""
    x = t(x)
    idx = t(indices).to(x.device).long()
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = axis % x.ndim
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    shape = list(torch.broadcast_shapes(
        x.shape[:axis] + (1,) + x.shape[axis + 1:], idx.shape[:axis] + (1,) + idx.shape[axis + 1:]))
    x_shape, i_shape = list(shape), list(shape)
    x_shape[axis], i_shape[axis] = x.shape[axis], idx.shape[axis]
    return torch.gather(x.expand(x_shape), axis, idx.expand(i_shape))


@op("numpy", "Where", "condition,x1,x2")
def where(condition, x1=None, x2=None):
    """`x1` where `condition` holds, else `x2`; with only `condition`, the indices where it
    holds (like `nonzero`)."""
    c = t(condition).bool()
    if x1 is None and x2 is None:
        return torch.nonzero(c).T
    if x1 is None or x2 is None:
        raise ValueError("where: give both x1 and x2, or neither.")
    a, b = operands(x1, x2)
    if type(a) is not torch.Tensor or type(b) is not torch.Tensor:  # a weak Python number
        a, b = pair(a, b)
    return torch.where(c.to(a.device), a, b)


@op("numpy", "Select", "condlist,choicelist,default")
def select(condlist, choicelist, default=0):
    """Elements of the first choice whose condition holds, else `default`."""
    if len(condlist) != len(choicelist):
        raise ValueError(f"select: condlist has {len(condlist)} entries but choicelist has "
                         f"{len(choicelist)}; they must match.")
    choices = tensor_list(list(choicelist))
    out = torch.broadcast_to(t(default).to(choices[0].dtype).to(choices[0].device),
                             torch.broadcast_shapes(*[c.shape for c in choices],
                                                    *[t(c).shape for c in condlist]))
    for cond, choice in reversed(list(zip(condlist, choices))):
        out = torch.where(t(cond).bool(), choice, out)
    return out


@op("numpy", "IsIn", "x1,x2")
def isin(x1, x2, assume_unique=False, invert=False):
    """Whether each element of `x1` is in `x2`."""
    a, b = pair(x1, x2)
    return torch.isin(a, b, assume_unique=assume_unique, invert=invert)


@op("numpy", "UnravelIndex", ("indices",))
def unravel_index(indices, shape):
    """Flat `indices` as a tuple of coordinate tensors for a tensor of `shape`."""
    idx = t(indices)
    dtype = torch_dtype(result_type(idx.dtype)) if not idx.is_floating_point() else torch.int32
    return tuple(c.to(dtype) for c in torch.unravel_index(idx.long(), tuple(shape)))


@op("numpy", "View")
def view(x, dtype=None):
    """The same memory read as another `dtype` (same itemsize, or last axis rescaled)."""
    x = t(x)
    return x if dtype is None else x.view(torch_dtype(dtype))


@op("numpy", "Trapezoid", ("y",))
def trapezoid(y, x=None, dx=1.0, axis=-1):
    """Integral of `y` along `axis` by the trapezoidal rule (at points `x`, or spacing `dx`)."""
    from plexus.ops.common import float_tensor
    y = float_tensor(y)
    if x is None:
        return torch.trapezoid(y, dx=dx, dim=axis)
    return torch.trapezoid(y, float_tensor(x).to(y.device), dim=axis)


@op("numpy", "Vander")
def vander(x, N=None, increasing=False):  # noqa: N803 (Keras's argument name)
    """Vandermonde matrix: columns are powers of the 1-D `x`."""
    x = t(x)
    if x.ndim != 1:
        raise ValueError(f"vander: x must be 1-D; got shape {tuple(x.shape)}.")
    return torch.vander(x, N=N, increasing=increasing)


@op("numpy", "Meshgrid", ("x",))
def meshgrid(*x, indexing="xy"):
    """Coordinate grids from 1-D coordinate vectors (`indexing` "xy" or "ij"); a list."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij'; got {indexing!r}.")
    return list(torch.meshgrid(*tensor_list(x), indexing=indexing))


@op("numpy", "Corrcoef")
def corrcoef(x):
    """Pearson correlation coefficients of the rows of `x`."""
    x = t(x)
    if not x.is_floating_point():
        x = x.float()
    centred = x - x.mean(dim=-1, keepdim=True)
    cov = centred @ centred.transpose(-1, -2)
    d = torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1))
    return torch.clamp(cov / d[..., :, None] / d[..., None, :], -1, 1)

