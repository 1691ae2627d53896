"""`plexus.ops`: Keras 3's `keras.ops` on torch tensors.

Every function runs eagerly on torch tensors, NumPy arrays and Python numbers (returning torch
tensors, differentiable through autograd), and records a graph node when given a symbolic
tensor (`plexus.Input` and what layers return), so functional models can use ops between
layers and save them in Keras's `.keras` format.

    from plexus import ops
    y = ops.mean(ops.square(x), axis=-1)
"""
from plexus.ops.core import (  # noqa: F401, A004
    associative_scan, cast, cond, convert_to_numpy, convert_to_tensor, custom_gradient, dtype,
    fori_loop, is_tensor, map_ as map, saturate_cast, scan, scatter, scatter_update, shape,
    slice_ as slice, slice_update, stop_gradient, switch, unstack, vectorized_map, while_loop,
)
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
from plexus.ops.math import (  # noqa: F401, A004
    cdist, erf, erfc, erfinv, extract_sequences, fft, fft2, ifft2, in_top_k, irfft, istft,
    logdet, logsumexp, rfft, rsqrt, segment_max, segment_min, segment_prod, segment_sum, stft,
    top_k, view_as_complex, view_as_real,
)
from plexus.ops.linalg import (  # noqa: F401, A004
    cholesky, cholesky_inverse, det, eig, eigh, inv, jvp, lstsq, lu_factor, matrix_rank, norm,
    pinv, qr, slogdet, solve, solve_triangular, svd,
)
from plexus.ops.nn import (  # noqa: F401, A004
    batch_normalization, binary_crossentropy, categorical_crossentropy, celu,
    dot_product_attention, elu, gelu, glu, hard_shrink, hard_sigmoid, hard_silu, hard_swish,
    hard_tanh, layer_normalization, leaky_relu, log_sigmoid, log_softmax, moments, multi_hot,
    normalize, one_hot, polar, psnr, relu, relu6, rms_normalization, selu, sigmoid, silu,
    soft_shrink, softmax, softplus, softsign, sparse_categorical_crossentropy, sparse_plus,
    sparse_sigmoid, sparsemax, squareplus, swish, tanh_shrink, threshold,
)
from plexus.ops.conv import (  # noqa: F401, A004
    adaptive_average_pool, adaptive_max_pool, average_pool, conv, conv_transpose,
    depth_to_space, depthwise_conv, fold, max_pool, separable_conv, space_to_depth, unfold,
)
from plexus.ops.ctc import (  # noqa: F401, A004
    ctc_decode, ctc_loss,
)
from plexus.ops.einops import (  # noqa: F401, A004
    rearrange, vectorize,
)
from plexus.ops import image, linalg, nn, numpy  # noqa: E402,F401 (Keras's submodules)
from plexus.ops.dtypes import result_type  # noqa: E402,F401
from plexus.ops import operators as _operators  # noqa: E402 (symbolic tensors' Python operators)

# Keras names plexus does not provide, with the reason; asking for one raises AttributeError.
OMITTED = {}


def __getattr__(name):
    if name in OMITTED:
        raise AttributeError(f"plexus.ops.{name} is not available: {OMITTED[name]}")
    raise AttributeError(f"module 'plexus.ops' has no attribute {name!r}")
