"""Reductions, statistics, sorting and searching (`keras.ops.numpy`)."""
import torch

from plexus.graph.tensor import KerasTensor
from plexus.ops.common import all_axes, axes, float_tensor, narrow_float, t
from plexus.ops.dtypes import result_type, standardize_dtype, torch_dtype
from plexus.ops.table import op

_SMALL_INTS = (torch.bool, torch.uint8, torch.int8, torch.int16)
_TO_INT32 = _SMALL_INTS + (torch.int32,)


def _int32_result(out, x):
    """Sums and products of bools and integers up to int32 are int32 (torch gives int64)."""
    return out.to(torch.int32) if x.dtype in _TO_INT32 else out


def _keep(out, x, axis, keepdims):
    """Re-insert reduced axes as size 1 when torch reduced everything without `dim`."""
    if keepdims and axis is None:
        return out.reshape((1,) * x.ndim)
    return out


def _empty_axis(axis):
    return isinstance(axis, (tuple, list)) and len(axis) == 0


@op("numpy", "Sum")
def sum_(x, axis=None, keepdims=False):
    """Sum of elements over `axis` (all axes by default); small integers sum as int32."""
    x = t(x)
    if x.dtype in _SMALL_INTS:
        x = x.to(torch.int32)
    if _empty_axis(axis):
        return x
    if axis is None:
        return _int32_result(_keep(torch.sum(x), x, axis, keepdims), x)
    return _int32_result(torch.sum(x, dim=axes(axis), keepdim=keepdims), x)


@op("numpy", "Prod")
def prod(x, axis=None, keepdims=False, dtype=None):
    """Product of elements over `axis`."""
    x = t(x)
    if dtype is not None:
        x = x.to(torch_dtype(dtype))
    elif x.dtype in _SMALL_INTS:
        x = x.to(torch.int32)
    else:
        x = x.to(torch_dtype(result_type(x.dtype)))  # 64-bit narrowed, as Keras
    if axis is None:
        return _int32_result(_keep(torch.prod(x), x, axis, keepdims), x)
    out = x
    for a in sorted(all_axes(x, axis), reverse=True):
        out = torch.prod(out, dim=a, keepdim=keepdims)
    return _int32_result(out, x)


@op("numpy", "Mean")
def mean(x, axis=None, keepdims=False):
    """Mean over `axis`; integers and bools average as floats."""
    x = float_tensor(x)
    if _empty_axis(axis):
        return x
    if axis is None:
        return _keep(torch.mean(x), x, axis, keepdims)
    return torch.mean(x, dim=axes(axis), keepdim=keepdims)


@op("numpy", "Var")
def var(x, axis=None, keepdims=False):
    """Variance over `axis` (population variance: divided by N)."""
    x = t(x)
    x = x.to(torch_dtype(result_type(x.dtype, float)))
    return torch.var(x, dim=None if axis is None else axes(axis), correction=0, keepdim=keepdims)


@op("numpy", "Std")
def std(x, axis=None, keepdims=False):
    """Standard deviation over `axis` (population: divided by N)."""
    x = float_tensor(x)  # unlike var, float64 stays float64 (as Keras)
    return torch.std(x, dim=None if axis is None else axes(axis), correction=0, keepdim=keepdims)


def _extreme(fn, x, axis, keepdims, initial, pick):
    x = t(x)
    if axis is None:
        out = fn(x, dim=tuple(range(x.ndim)), keepdim=keepdims) if x.ndim else x
    else:
        out = fn(x, dim=axes(axis), keepdim=keepdims)
    if initial is not None:
        out = pick(out, torch.as_tensor(initial, dtype=out.dtype, device=out.device))
    return out


@op("numpy", "Max")
def max_(x, axis=None, keepdims=False, initial=None):
    """Largest element over `axis`; `initial` is a lower bound on the result."""
    return _extreme(torch.amax, x, axis, keepdims, initial, torch.maximum)


@op("numpy", "Min")
def min_(x, axis=None, keepdims=False, initial=None):
    """Smallest element over `axis`; `initial` is an upper bound on the result."""
    return _extreme(torch.amin, x, axis, keepdims, initial, torch.minimum)


@op("numpy", "Amax")
def amax(x, axis=None, keepdims=False):
    """Largest element over `axis`."""
    return _extreme(torch.amax, x, axis, keepdims, None, None)


@op("numpy", "Amin")
def amin(x, axis=None, keepdims=False):
    """Smallest element over `axis`."""
    return _extreme(torch.amin, x, axis, keepdims, None, None)


@op("numpy", "Ptp")
def ptp(x, axis=None, keepdims=False):
    """Range (`max - min`) over `axis`."""
    return amax(x, axis, keepdims) - amin(x, axis, keepdims)


@op("numpy", "All")
def all_(x, axis=None, keepdims=False):
    """Whether every element over `axis` is true."""
    x = t(x).bool()
    if axis is None:
        return _keep(torch.all(x), x, axis, keepdims)
    return torch.all(x, dim=axes(axis), keepdim=keepdims)


@op("numpy", "Any")
def any_(x, axis=None, keepdims=False):
    """Whether some element over `axis` is true."""
    x = t(x).bool()
    if axis is None:
        return _keep(torch.any(x), x, axis, keepdims)
    return torch.any(x, dim=axes(axis), keepdim=keepdims)


@op("numpy", "CountNonzero")
def count_nonzero(x, axis=None):
    """Number of non-zero elements over `axis` (int32)."""
    x = t(x)
    dim = None if axis is None else axes(axis)
    return torch.count_nonzero(x, dim=dim).to(torch.int32)


def _arg(fn, x, axis, keepdims):
    x = t(x)
    if x.dtype is torch.bool:
        x = x.to(torch.uint8)
    if axis is None:
        out = fn(x.reshape(-1), dim=0)
        return (out.reshape((1,) * x.ndim) if keepdims else out).to(torch.int32)
    return fn(x, dim=axis, keepdim=keepdims).to(torch.int32)


@op("numpy", "Argmax")
def argmax(x, axis=None, keepdims=False):
    """Index of the largest element over `axis` (of the flattened tensor by default)."""
    return _arg(torch.argmax, x, axis, keepdims)


@op("numpy", "Argmin")
def argmin(x, axis=None, keepdims=False):
    """Index of the smallest element over `axis` (of the flattened tensor by default)."""
    return _arg(torch.argmin, x, axis, keepdims)


def _nan_fill(x, value):
    return torch.where(torch.isnan(x), torch.as_tensor(value, dtype=x.dtype, device=x.device), x)


@op("numpy", "Nanargmax")
def nanargmax(x, axis=None, keepdims=False):
    """`argmax` ignoring NaNs."""
    x = t(x)
    if x.is_floating_point():
        x = _nan_fill(x, float("-inf"))
    return _arg(torch.argmax, x, axis, keepdims)


@op("numpy", "Nanargmin")
def nanargmin(x, axis=None, keepdims=False):
    """`argmin` ignoring NaNs."""
    x = t(x)
    if x.is_floating_point():
        x = _nan_fill(x, float("inf"))
    return _arg(torch.argmin, x, axis, keepdims)


@op("numpy", "Sort")
def sort(x, axis=-1):
    """Sorted copy along `axis` (None: the flattened tensor)."""
    x = t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return torch.sort(x, dim=axis, stable=True).values


@op("numpy", "Argsort")
def argsort(x, axis=-1):
    """Indices that sort `x` along `axis` (None: the flattened tensor), as int32."""
    x = t(x)
    if x.dtype is torch.bool:
        x = x.to(torch.uint8)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return torch.argsort(x, dim=axis, stable=True).to(torch.int32)


@op("numpy", "Argpartition")
def argpartition(x, kth, axis=-1):
    """Indices that partition `x` around its `kth` smallest element along `axis`."""
    x = t(x)
    if x.dtype is torch.bool:
        x = x.to(torch.uint8)
    return torch.argsort(x, dim=axis, stable=True).to(torch.int32)


def _cumulative(fn, x, axis, dtype):
    x = t(x)
    out_dtype = torch_dtype(result_type(x.dtype if dtype is None else dtype))
    if out_dtype is torch.bool:
        out_dtype = torch.int32
    if axis is None:
        x, axis = x.reshape(-1), 0
    if out_dtype is torch.float16 and x.device.type == "cpu":
        return fn(x, dim=axis, dtype=torch.float32).to(torch.float16)
    return fn(x, dim=axis, dtype=out_dtype)


@op("numpy", "Cumsum")
def cumsum(x, axis=None, dtype=None):
    """Cumulative sum along `axis` (the flattened tensor by default)."""
    return _cumulative(torch.cumsum, x, axis, dtype)


@op("numpy", "Cumprod")
def cumprod(x, axis=None, dtype=None):
    """Cumulative product along `axis` (the flattened tensor by default)."""
    return _cumulative(torch.cumprod, x, axis, dtype)


def _named(impl, name, class_name, doc):
    impl.__name__, impl.__doc__ = name, doc
    return op("numpy", class_name)(impl)


def _nan_reduction(name, class_name, fn, fill, doc):
    """`fn(x, axis, keepdims)` with NaNs replaced by `fill` (its neutral element) first."""
    def impl(x, axis=None, keepdims=False):
        x = t(x)
        return fn.__wrapped__(_nan_fill(x, fill) if x.is_floating_point() else x, axis, keepdims)
    return _named(impl, name, class_name, doc)


def _nan_cumulative(name, class_name, fn, fill, doc):
    """`fn(x, axis, dtype)` with NaNs replaced by `fill` first."""
    def impl(x, axis=None, dtype=None):
        x = t(x)
        return fn.__wrapped__(_nan_fill(x, fill) if x.is_floating_point() else x, axis, dtype)
    return _named(impl, name, class_name, doc)


@op("numpy", "Nanmean")
def nanmean(x, axis=None, keepdims=False):
    """Mean of the non-NaN elements."""
    x = narrow_float(x)
    dim = all_axes(x, axis)
    return torch.nanmean(x, dim=dim, keepdim=keepdims) if dim else x


@op("numpy", "Nanvar")
def nanvar(x, axis=None, keepdims=False):
    """Variance of the non-NaN elements (divided by their count)."""
    x = narrow_float(x)
    dim = all_axes(x, axis)
    m = torch.nanmean(x, dim=dim, keepdim=True)
    return torch.nanmean(torch.square(x - m), dim=dim, keepdim=keepdims)


@op("numpy", "Nanstd")
def nanstd(x, axis=None, keepdims=False):
    """Standard deviation of the non-NaN elements."""
    return torch.sqrt(nanvar(x, axis, keepdims))


@op("numpy", "Nanmax")
def nanmax(x, axis=None, keepdims=False):
    """Largest non-NaN element (NaN where all are NaN)."""
    x = t(x)
    if not x.is_floating_point():
        return amax(x, axis, keepdims)
    out = amax(_nan_fill(x, float("-inf")), axis, keepdims)
    return torch.where(torch.all(torch.isnan(x), dim=all_axes(x, axis), keepdim=keepdims),
                       torch.nan, out)


@op("numpy", "Nanmin")
def nanmin(x, axis=None, keepdims=False):
    """Smallest non-NaN element (NaN where all are NaN)."""
    x = t(x)
    if not x.is_floating_point():
        return amin(x, axis, keepdims)
    out = amin(_nan_fill(x, float("inf")), axis, keepdims)
    return torch.where(torch.all(torch.isnan(x), dim=all_axes(x, axis), keepdim=keepdims),
                       torch.nan, out)


def _quantile(x, q, axis, method, keepdims, nan):
    x = t(x)
    x = x.to(torch_dtype(result_type(x.dtype, float)))
    q = t(q).to(x.dtype, copy=False).to(x.device)
    if x.dtype in (torch.float16, torch.bfloat16):
        out = _quantile(x.float(), q.float(), axis, method, keepdims, nan)
        return out.to(x.dtype)
    dims = all_axes(x, axis)
    keep = [d for d in range(x.ndim) if d not in dims]
    flat = x.permute(*keep, *dims).reshape([x.shape[d] for d in keep] + [-1])
    fn = torch.nanquantile if nan else torch.quantile
    out = fn(flat, q, dim=-1, interpolation=method)
    if keepdims:
        shape = list(x.shape)
        for d in dims:
            shape[d] = 1
        out = out.reshape(tuple(q.shape) + tuple(shape))
    return out


@op("numpy", "Quantile", "x,q")
def quantile(x, q, axis=None, method="linear", keepdims=False):
    """The `q`-th quantiles (0 <= q <= 1) over `axis`; `method` as NumPy's."""
    return _quantile(x, q, axis, method, keepdims, nan=False)


@op("numpy", "Nanquantile", "x,q")
def nanquantile(x, q, axis=None, method="linear", keepdims=False):
    """`quantile` ignoring NaNs."""
    return _quantile(x, q, axis, method, keepdims, nan=True)


@op("numpy", "Percentile", "x,q")
def percentile(x, q, axis=None, method="linear", keepdims=False):
    """The `q`-th percentiles (0 <= q <= 100) over `axis`."""
    return _quantile(x, float_tensor(q) / 100.0, axis, method, keepdims, nan=False)


@op("numpy", "Nanpercentile", "x,q")
def nanpercentile(x, q, axis=None, method="linear", keepdims=False):
    """`percentile` ignoring NaNs."""
    return _quantile(x, float_tensor(q) / 100.0, axis, method, keepdims, nan=True)


@op("numpy", "Median")
def median(x, axis=None, keepdims=False):
    """Median over `axis` (the mean of the two middle values for an even count)."""
    return _quantile(x, 0.5, axis, "linear", keepdims, nan=False)


@op("numpy", "Nanmedian")
def nanmedian(x, axis=None, keepdims=False):
    """Median ignoring NaNs."""
    return _quantile(x, 0.5, axis, "linear", keepdims, nan=True)


@op("numpy", "Average", "x,weights")
def average(x, axis=None, weights=None):
    """Weighted mean over `axis`; `weights` has the shape of `x` or of that axis."""
    x = narrow_float(x)
    if weights is None:
        return mean(x, axis)
    w = t(weights).to(x.device)
    dtype = torch_dtype(result_type(x.dtype, w.dtype, float))
    x, w = x.to(dtype), w.to(dtype)
    if axis is not None and w.ndim == 1 and x.ndim > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        w = w.reshape(shape)
    dim = None if axis is None else axes(axis)
    if dim is None:
        return torch.sum(x * w) / torch.sum(w.expand_as(x))
    return torch.sum(x * w, dim=dim) / torch.sum(w.expand_as(x), dim=dim)


def _bincount_spec(x, weights=None, minlength=0, sparse=False):
    from plexus.ops.dtypes import dtype_of
    w = None if weights is None else standardize_dtype(dtype_of(weights))
    dtype = "int32" if w is None or "int" in w else w
    return KerasTensor(tuple(x.shape[:-1]) + (None,), dtype)


@op("numpy", "Bincount", spec=_bincount_spec)
def bincount(x, weights=None, minlength=0, sparse=False):
    """Count of each non-negative integer value in `x` (weighted sums with `weights`); a 2-D
    `x` counts each row."""
    if sparse:
        raise ValueError("bincount: sparse=True is not supported by plexus (torch tensors are dense).")
    x = t(x)
    w = None if weights is None or isinstance(weights, KerasTensor) else \
        t(weights).to(x.device)
    # as Keras: result_type(x, weights) with weights, else int32
    dtype = torch.int32 if w is None else torch_dtype(result_type(x.dtype, w.dtype))
    if x.ndim == 1:
        return torch.bincount(x, weights=w, minlength=minlength).to(dtype)
    length = max(int(x.max()) + 1 if x.numel() else 0, minlength)
    rows = [torch.bincount(r, weights=None if w is None else w[i], minlength=length)
            for i, r in enumerate(x)]
    return torch.stack(rows).to(dtype)


@op("numpy", "Digitize", "x,bins")
def digitize(x, bins):
    """Index of the bin each element of `x` falls in (`bins` increasing), as int32."""
    x, b = t(x), t(bins)
    return torch.bucketize(x, b.to(x.device), right=True).to(torch.int32)


@op("numpy", "SearchSorted", "sorted_sequence,values")
def searchsorted(sorted_sequence, values, side="left"):
    """Where `values` would be inserted into the 1-D `sorted_sequence` to keep it sorted."""
    s, v = t(sorted_sequence), t(values)
    if s.ndim != 1:
        raise ValueError(f"searchsorted: sorted_sequence must be 1-D; got shape {tuple(s.shape)}.")
    out_dtype = torch.int32 if s.shape[0] < 2**31 else torch.int64
    return torch.searchsorted(s, v.to(s.dtype), side=side).to(out_dtype)


@op("numpy", "Histogram")
def histogram(x, bins=10, range=None):  # noqa: A002 (Keras's argument name)
    """Counts of `x` in `bins` equal bins over `range`; returns `(counts, bin_edges)`."""
    x = float_tensor(x)
    if x.ndim != 1:
        raise ValueError(f"histogram: x must be 1-D; got shape {tuple(x.shape)}.")
    lo, hi = (x.min().item(), x.max().item()) if range is None else range
    edges = torch.linspace(lo, hi, bins + 1, dtype=x.dtype, device=x.device)
    return torch.histc(x, bins=bins, min=lo, max=hi), edges


def _nonzero_spec(x):
    return KerasTensor((len(x.shape), None), "int32")


@op("numpy", "Nonzero", spec=_nonzero_spec)
def nonzero(x):
    """Indices of the non-zero elements, one row per axis: an int32 tensor `(x.ndim, n)`
    (unpack it as `rows, cols = nonzero(x)`)."""
    return torch.nonzero(t(x)).T.to(torch.int32)


def _unique_spec(x, sorted=True, return_index=False, return_inverse=False,  # noqa: A002
                 return_counts=False, axis=None, size=None, fill_value=None):
    n = size
    out = [KerasTensor((n,) if axis is None else x.shape, x.dtype)]
    if return_index:
        out.append(KerasTensor((n,), "int64"))
    if return_inverse:
        out.append(KerasTensor(x.shape if axis is None else (x.shape[axis],), "int64"))
    if return_counts:
        out.append(KerasTensor((n,), "int64"))
    return out[0] if len(out) == 1 else out


@op("numpy", "Unique", spec=_unique_spec)
def unique(x, sorted=True, return_index=False, return_inverse=False,  # noqa: A002
           return_counts=False, axis=None, size=None, fill_value=None):
    """The unique elements of `x` (sorted), optionally with first indices, inverse indices and
    counts; `size` pads or truncates the result to a fixed length with `fill_value`."""
    x = t(x)
    flat = x.reshape(-1) if axis is None else x
    values, inverse, counts = torch.unique(flat, sorted=True, return_inverse=True,
                                           return_counts=True, dim=axis)
    outs = [values]
    if return_index:
        n = flat.shape[0] if axis is None else x.shape[axis]
        idx = torch.full((values.shape[0],), n, dtype=torch.int64, device=x.device)
        idx = idx.scatter_reduce(0, inverse.reshape(-1), torch.arange(n, device=x.device),
                                 reduce="amin")
        outs.append(idx)
    if return_inverse:
        outs.append(inverse.reshape(x.shape if axis is None else (-1,)))
    if return_counts:
        outs.append(counts)
    if size is not None:
        outs = [_fit(o, size, fill_value if i == 0 else 0) if i != (2 if return_index else 1)
                or not return_inverse else o for i, o in enumerate(outs)]
    return outs[0] if len(outs) == 1 else tuple(outs)


def _fit(v, size, fill):
    if v.shape[0] >= size:
        return v[:size]
    pad_value = v[0] if fill is None and v.shape[0] else (fill or 0)
    pad = torch.full((size - v.shape[0],) + tuple(v.shape[1:]), 0, dtype=v.dtype, device=v.device)
    pad = pad + torch.as_tensor(pad_value, dtype=v.dtype, device=v.device)
    return torch.cat([v, pad])



nancumsum = _nan_cumulative("nancumsum", "Nancumsum", cumsum, 0,
                            "Cumulative sum treating NaN as 0.")
nancumprod = _nan_cumulative("nancumprod", "Nancumprod", cumprod, 1,
                             "Cumulative product treating NaN as 1.")
nansum = _nan_reduction("nansum", "Nansum", sum_, 0, "Sum treating NaN as 0.")
nanprod = _nan_reduction("nanprod", "Nanprod", prod, 1, "Product treating NaN as 1.")
