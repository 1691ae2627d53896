"""Generated parity suite: every `keras.ops` function against plexus.ops, eager and symbolic.

The cases live in `ops_cases.py`; each runs through Keras (torch backend) and plexus with the
same arrays. Eager results must match in values, dtype and shape; symbolic calls (on
`KerasTensor`s) must give the shapes and dtypes Keras gives.
"""
import zlib

import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import ops
from tests.parity.ops_cases import CASES, NO_CASE, Arr

SUBMODULES = ("image", "linalg", "nn", "numpy")


def _keras_fn(name):
    mod, _, fn = name.rpartition(".")
    return getattr(getattr(keras.ops, mod) if mod else keras.ops, fn)


def _plexus_fn(name):
    mod, _, fn = name.rpartition(".")
    return getattr(getattr(ops, mod) if mod else ops, fn)


def _materialize(value, rng, make):
    if isinstance(value, Arr):
        return make(value.make(rng))
    if isinstance(value, list):
        return [_materialize(v, rng, make) for v in value]
    if isinstance(value, tuple):
        return tuple(_materialize(v, rng, make) for v in value)
    if isinstance(value, np.ndarray):
        return make(value.copy())  # Keras writes into some arguments (affine_transform)
    return value


def _args(name, index, case, make):
    rng = np.random.default_rng(zlib.crc32(f"{name}:{index}".encode()))
    args = [_materialize(a, rng, make) for a in case.args]
    kwargs = {k: _materialize(v, rng, make) for k, v in case.kwargs.items()}
    return args, kwargs


def _flat(out):
    if isinstance(out, (list, tuple)):
        return [leaf for item in out for leaf in _flat(item)]
    return [out]


def _np(x):
    if isinstance(x, torch.Tensor):
        x = x.detach()
        return (x.float() if x.dtype is torch.bfloat16 else x).cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(x))


def _dtype(x):
    if isinstance(x, torch.Tensor):
        return ops.dtype(x)
    return keras.backend.standardize_dtype(x.dtype)


NAMES = sorted(CASES)


@pytest.mark.parametrize("name", NAMES)
def test_eager_matches_keras(name):
    for index, case in enumerate(CASES[name]):
        try:
            _check_eager(name, index, case)
        except AssertionError as e:
            raise AssertionError(f"{name}({case!r}): {e}") from None


def _check_eager(name, index, case):
    k_args, k_kwargs = _args(name, index, case, torch.from_numpy)
    p_args, p_kwargs = _args(name, index, case, torch.from_numpy)
    expected = _keras_fn(name)(*k_args, **k_kwargs)
    got = _plexus_fn(name)(*p_args, **p_kwargs)
    k_flat, p_flat = _flat(expected), _flat(got)
    assert len(p_flat) == len(k_flat), f"{len(p_flat)} outputs, Keras gives {len(k_flat)}"
    for p, k in zip(p_flat, k_flat):
        assert isinstance(p, torch.Tensor), f"returned {type(p).__name__}, not a tensor"
        assert _dtype(p) == _dtype(k), f"dtype {_dtype(p)}, Keras gives {_dtype(k)}"
        pv, kv = _np(p), _np(k)
        assert pv.shape == kv.shape, f"shape {pv.shape}, Keras gives {kv.shape}"
        if not case.values:
            continue
        if pv.dtype == bool or kv.dtype == bool:
            np.testing.assert_array_equal(pv, kv)
        else:
            wide = np.complex128 if np.iscomplexobj(pv) else np.float64
            np.testing.assert_allclose(pv.astype(wide), kv, rtol=case.tol, atol=case.tol,
                                       equal_nan=True)


def _symbolic(value, lib, batch):
    """Arrays as symbolic tensors of their shapes; with `batch`, arrays of 2+ axes whose first
    axis is that size get an unknown (None) first axis, as tensors flowing from an `Input`."""
    if isinstance(value, torch.Tensor):
        value = value.numpy()
    if isinstance(value, np.ndarray) and value.ndim:
        unknown = batch is not None and value.ndim >= 2 and value.shape[0] == batch
        return lib.KerasTensor((None,) + value.shape[1:] if unknown else value.shape,
                               dtype=str(value.dtype))
    if isinstance(value, list):
        return [_symbolic(v, lib, batch) for v in value]
    if isinstance(value, tuple) and any(isinstance(v, np.ndarray) for v in value):
        return tuple(_symbolic(v, lib, batch) for v in value)
    if isinstance(value, dict):
        return {k: _symbolic(v, lib, batch) for k, v in value.items()}
    return value


_NOT_SYMBOLIC = {"zeros", "ones", "empty", "full", "eye", "identity", "tri", "arange",
                 "linspace", "logspace", "geomspace", "bartlett", "blackman", "hamming",
                 "hanning", "kaiser", "array", "convert_to_tensor"}
# Calls that are only valid with the first axis known (square matrices, fixed reshapes, or
# another argument of that same fixed size); they are traced with exact shapes only.
_FIXED_FIRST_AXIS = {"cholesky", "cholesky_inverse", "det", "eigh", "inv", "logdet", "slogdet", "solve",
                     "solve_triangular", "squeeze", "unstack", "broadcast_to", "reshape",
                     "cross", "ctc_decode", "dot_product_attention", "in_top_k", "matmul",
                     "image.rgb_to_grayscale", "conv", "corrcoef", "diag", "diagonal",
                     "rot90", "adaptive_average_pool", "adaptive_max_pool"}
SYMBOLIC = [n for n in NAMES if n not in _NOT_SYMBOLIC and any(
    c.symbolic and any(isinstance(a, (Arr, list, tuple, np.ndarray)) for a in c.args)
    for c in CASES[n])]


@pytest.mark.parametrize("name", SYMBOLIC)
def test_symbolic_matches_keras(name):
    """Shapes and dtypes of symbolic calls agree with Keras, and with plexus's own eager run;
    also with the first (batch) axis unknown."""
    for index, case in enumerate(CASES[name]):
        if not case.symbolic:
            continue
        args, kwargs = _args(name, index, case, lambda a: a)
        first = next((a for a in _flat(args) if isinstance(a, np.ndarray) and a.ndim >= 2), None)
        batches = [None] + ([first.shape[0]] if first is not None and name not in
                            _FIXED_FIRST_AXIS else [])
        for batch in batches:
            try:
                _check_symbolic(name, args, kwargs, batch)
            except AssertionError as e:
                raise AssertionError(f"{name}({case!r}), batch unknown: {batch is not None}: "
                                     f"{e}") from None


def _check_symbolic(name, args, kwargs, batch):
    eager = _flat(_plexus_fn(name)(*[torch.from_numpy(a.copy()) if isinstance(a, np.ndarray)
                                     else a for a in args], **kwargs))
    p_out = _flat(_plexus_fn(name)(*_symbolic(args, plexus, batch),
                                   **_symbolic(kwargs, plexus, batch)))
    assert len(p_out) == len(eager)
    k_out, exact = _keras_symbolic(name, args, kwargs, eager, batch)
    for p, k, e in zip(p_out, k_out, eager):
        assert isinstance(p, plexus.KerasTensor)
        if exact:
            assert p.shape == k, f"shape {p.shape}, Keras gives {k}"
        else:  # against the eager shape: plexus may leave value-dependent sizes unknown
            assert len(p.shape) == len(k) and all(
                a is None or a == b for a, b in zip(p.shape, k)), f"shape {p.shape} vs {k}"
        assert p.dtype == _dtype(e), f"symbolic dtype {p.dtype} but eager gives {_dtype(e)}"


def _keras_symbolic(name, args, kwargs, eager, batch):
    """`(shapes, exact)`: Keras's symbolic output shapes; where Keras 3.15's own symbolic rule
    fails or contradicts its eager result (a Keras bug), the eager shapes, not exact."""
    try:
        out = _flat(_keras_fn(name)(*_symbolic(args, keras, batch),
                                    **_symbolic(kwargs, keras, batch)))
        shapes = [tuple(k.shape) for k in out]
    except Exception:  # noqa: Keras's symbolic rules reject some valid calls
        shapes = None
    real = [tuple(e.shape) for e in eager]
    if shapes is None or len(shapes) != len(real) or any(
            len(s) != len(r) or any(a is not None and a != b for a, b in zip(s, r))
            for s, r in zip(shapes, real)):
        return real, False
    return shapes, True


def _public(module):
    return {n for n in dir(module) if not n.startswith("_")}


def test_every_keras_name_exists_or_is_listed():
    missing = []
    for name in sorted(_public(keras.ops) - set(SUBMODULES)):
        if not hasattr(ops, name) and name not in ops.OMITTED:
            missing.append(name)
    for sub in SUBMODULES:
        for name in sorted(_public(getattr(keras.ops, sub))):
            if not hasattr(getattr(ops, sub), name) and name not in ops.OMITTED:
                missing.append(f"{sub}.{name}")
    assert not missing, f"keras.ops names missing from plexus.ops: {missing}"
    for name, reason in ops.OMITTED.items():
        assert "TensorFlow" in reason or "JAX" in reason, (name, reason)


def test_every_keras_name_has_a_case():
    names = {n for n in _public(keras.ops) - set(SUBMODULES)}
    names |= {f"image.{n}" for n in _public(keras.ops.image)}
    uncovered = sorted(n for n in names if n not in CASES and n not in NO_CASE
                       and n not in ops.OMITTED)
    assert not uncovered, f"no parity case for: {uncovered}"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_an_op'"):
        ops.not_an_op  # noqa: B018


SWEEP_DTYPES = ("float16", "float64", "int8", "int64", "bool")
# Inputs where plexus's result dtype differs from Keras 3.15's torch backend (or plexus
# refuses what Keras computes): integer or bool data fed to convolutions, image filters,
# bitwise shifts and a few others, which Keras runs in the input dtype.
KNOWN_DTYPE_GAPS = {
    "average_pool": "int64", "bitwise_left_shift": "bool", "bitwise_right_shift": "bool",
    "left_shift": "bool", "right_shift": "bool", "conv": "int8 int64", "conv_transpose": "int64",
    "depthwise_conv": "int8 int64", "separable_conv": "int8 int64", "corrcoef": "int64",
    "fold": "bool", "unfold": "bool", "heaviside": "bool", "image.sobel_edges": "int8 int64",
    "image.ssim": "bool int8 int64", "inner": "bool", "tensordot": "bool", "vdot": "bool",
    "isin": "bool", "segment_max": "bool", "select": "bool int8 int64", "cdist": "float16",
    "polar": "float16", "vander": "bool float64 int8 int64", "view_as_complex": "float16",
}


def _retyped(value, dtype):
    import copy
    if isinstance(value, Arr) and value.dtype in ("float32", "int32"):
        value = copy.copy(value)
        value.dtype = dtype
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_retyped(v, dtype) for v in value)
    return value


@pytest.mark.parametrize("dtype", SWEEP_DTYPES)
def test_result_dtypes_follow_keras_for_other_input_dtypes(dtype):
    """The first case of every op, its float32/int32 arrays given as `dtype` instead: where
    Keras computes a result, plexus computes one of the same dtype."""
    import copy
    wrong = []
    for name in NAMES:
        if dtype in KNOWN_DTYPE_GAPS.get(name, "").split():
            continue
        case = copy.copy(CASES[name][0])
        case.args = _retyped(case.args, dtype)
        case.kwargs = {k: _retyped(v, dtype) for k, v in case.kwargs.items()}
        try:
            k_args, k_kwargs = _args(name, 0, case, torch.from_numpy)
            expected = _flat(_keras_fn(name)(*k_args, **k_kwargs))
        except Exception:  # noqa: Keras refuses this dtype; nothing to compare
            continue
        p_args, p_kwargs = _args(name, 0, case, torch.from_numpy)
        try:
            got = _flat(_plexus_fn(name)(*p_args, **p_kwargs))
        except Exception as e:  # noqa: reported below
            wrong.append(f"{name}: raised {type(e).__name__}")
            continue
        for p, k in zip(got, expected):
            if isinstance(p, torch.Tensor) and hasattr(k, "dtype") and _dtype(p) != _dtype(k):
                wrong.append(f"{name}: {_dtype(p)}, Keras {_dtype(k)}")
                break
    assert not wrong, wrong
