"""`plexus.ops.numpy`: the NumPy-style ops, as Keras's `keras.ops.numpy` lists them."""
from plexus.ops.elementwise import (  # noqa: F401, A004
    abs_ as abs, absolute, add, allclose, angle, arccos, arccosh, arcsin, arcsinh, arctan,
    arctan2, arctanh, bitwise_and, bitwise_invert, bitwise_left_shift, bitwise_not, bitwise_or,
    bitwise_right_shift, bitwise_xor, cbrt, ceil, clip, conj, conjugate, cos, cosh, deg2rad,
    divide, divide_no_nan, equal, exp, exp2, expm1, fabs, floor, floor_divide, fmax, fmin,
    fmod, gcd, greater, greater_equal, heaviside, hypot, i0, imag, isclose, isfinite, isinf,
    isnan, isneginf, isposinf, isreal, lcm, ldexp, left_shift, less, less_equal, log, log10,
    log1p, log2, logaddexp, logaddexp2, logical_and, logical_not, logical_or, logical_xor,
    maximum, minimum, mod, multiply, nan_to_num, negative, nextafter, not_equal, power,
    rad2deg, real, reciprocal, right_shift, round_ as round, sign, signbit, sin, sinc, sinh,
    sqrt, square, subtract, tan, tanh, true_divide, trunc,
)
from plexus.ops.reductions import (  # noqa: F401, A004
    all_ as all, amax, amin, any_ as any, argmax, argmin, argpartition, argsort, average,
    bincount, count_nonzero, cumprod, cumsum, digitize, histogram, max_ as max, mean, median,
    min_ as min, nanargmax, nanargmin, nancumprod, nancumsum, nanmax, nanmean, nanmedian,
    nanmin, nanpercentile, nanprod, nanquantile, nanstd, nansum, nanvar, nonzero, percentile,
    prod, ptp, quantile, searchsorted, sort, std, sum_ as sum, unique, var,
)
from plexus.ops.shapes import (  # noqa: F401, A004
    append, array_split, broadcast_to, concatenate, copy, corrcoef, diag, diagflat, diagonal,
    diff, dsplit, dstack, expand_dims, flip, fliplr, flipud, get_item, hsplit, hstack, isin,
    meshgrid, moveaxis, ndim, pad, ravel, repeat, reshape, roll, rot90, select, size, split,
    squeeze, stack, swapaxes, take, take_along_axis, tile, trace, transpose, trapezoid, tril,
    triu, unravel_index, vander, view, vsplit, vstack, where,
)
from plexus.ops.products import (  # noqa: F401, A004
    correlate, cross, dot, einsum, inner, kron, matmul, outer, tensordot, vdot,
)
from plexus.ops.creation import (  # noqa: F401, A004
    arange, array, bartlett, blackman, empty, empty_like, eye, full, full_like, geomspace,
    hamming, hanning, identity, kaiser, linspace, logspace, ones, ones_like, tri, zeros,
    zeros_like,
)
from plexus.ops.linalg import (  # noqa: F401, A004
    slogdet,
)
from plexus.ops.einops import (  # noqa: F401, A004
    vectorize,
)
