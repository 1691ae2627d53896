"""Argument cases for the generated `keras.ops` parity suite: name -> list of `Case`s.

Arrays are described, not built: `F(2, 3)` is a float32 array of normal values, `P` positive,
`U` inside (-0.9, 0.9), `I` small non-negative int32, `B` bool; `Case` holds the arguments.
Each case runs through `keras.ops.<name>` and `plexus.ops.<name>` (eagerly and, where the op
takes tensors, symbolically) and the results are compared.
"""
import numpy as np


class Arr:
    """A deterministic array: `kind` picks the value distribution."""

    def __init__(self, kind, shape, dtype=None, hi=5):
        self.kind, self.shape, self.hi = kind, tuple(shape), hi
        self.dtype = dtype or {"I": "int32", "B": "bool", "Z": "complex64"}.get(kind, "float32")

    def make(self, rng):
        s = self.shape
        if self.kind == "F":
            v = rng.normal(size=s)
        elif self.kind == "P":
            v = rng.uniform(0.5, 2.0, size=s)
        elif self.kind == "U":
            v = rng.uniform(-0.9, 0.9, size=s)
        elif self.kind == "I":
            v = rng.integers(0, self.hi, size=s)
        elif self.kind == "LABEL":  # class ids 1 .. hi-1 (0 is the CTC blank)
            v = rng.integers(1, self.hi, size=s)
        elif self.kind == "Z":
            v = rng.normal(size=s) + 1j * rng.normal(size=s)
        elif self.kind == "B":
            v = rng.uniform(size=s) > 0.5
        elif self.kind == "SPD":
            a = rng.normal(size=s)
            v = a @ np.swapaxes(a, -1, -2) + s[-1] * np.eye(s[-1])
        elif self.kind == "PROB":
            v = rng.uniform(0.05, 1.0, size=s)
            v = v / v.sum(-1, keepdims=True)
        elif self.kind == "ONEHOT":
            v = np.eye(s[-1])[rng.integers(0, s[-1], size=s[:-1])]
        elif self.kind == "SORTED":
            v = np.sort(rng.normal(size=s))
        else:
            raise ValueError(self.kind)
        return np.asarray(v).astype(self.dtype)

    def __repr__(self):
        return f"{self.kind}{self.shape}:{self.dtype}"


def F(*shape, dtype="float32"):
    return Arr("F", shape, dtype)


def P(*shape, dtype="float32"):
    return Arr("P", shape, dtype)


def U(*shape, dtype="float32"):
    return Arr("U", shape, dtype)


def I(*shape, hi=5, dtype="int32"):  # noqa: E743
    return Arr("I", shape, dtype, hi)


def B(*shape):
    return Arr("B", shape)


class Case:
    """One call: positional and keyword arguments (arrays as `Arr`), and options:
    `tol` (rtol=atol), `symbolic=False` to skip the symbolic comparison, `values=False` to
    compare only shapes and dtypes."""

    def __init__(self, *args, tol=1e-5, symbolic=True, values=True, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.tol, self.symbolic, self.values = tol, symbolic, values

    def __repr__(self):
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return ", ".join([repr(a) for a in self.args] + ([kw] if kw else []))


C = Case
f23, f34 = F(2, 3), F(3, 4)

UNARY_FLOAT = ["exp", "exp2", "expm1", "sin", "cos", "tan", "arctan", "sinh", "cosh", "tanh",
               "arcsinh", "deg2rad", "rad2deg", "sinc", "erf", "erfc", "negative", "square",
               "sign", "signbit", "isfinite", "isinf", "isnan", "isneginf", "isposinf", "isreal",
               "floor", "ceil", "trunc", "abs", "absolute", "fabs", "relu", "relu6", "sigmoid",
               "softplus", "softsign", "silu", "swish", "log_sigmoid", "selu", "tanh_shrink",
               "hard_tanh", "hard_sigmoid", "hard_silu", "hard_swish", "sparse_plus",
               "sparse_sigmoid", "logical_not", "copy", "ravel", "i0", "cbrt", "nan_to_num",
               "size", "stop_gradient"]
UNARY_POSITIVE = ["log", "log10", "log2", "log1p", "sqrt", "rsqrt", "reciprocal", "arccosh"]
UNARY_UNIT = ["arcsin", "arccos", "arctanh", "erfinv"]
BINARY = ["add", "subtract", "multiply", "divide", "true_divide", "maximum", "minimum", "fmax",
          "fmin", "arctan2", "hypot", "logaddexp", "logaddexp2", "equal", "not_equal",
          "greater", "greater_equal", "less", "less_equal", "logical_and", "logical_or",
          "logical_xor", "divide_no_nan", "heaviside", "nextafter", "power", "isclose",
          "allclose"]
BINARY_INT = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
              "bitwise_right_shift", "left_shift", "right_shift", "gcd", "lcm"]
REDUCE = ["sum", "mean", "max", "min", "amax", "amin", "prod", "std", "var", "all", "any",
          "ptp", "nansum", "nanmean", "nanmax", "nanmin", "nanprod", "nanstd", "nanvar",
          "median", "nanmedian", "logsumexp", "argmax", "argmin", "nanargmax", "nanargmin"]

CASES = {}
# Keras's torch backend fails on integer inputs to these (torch has no integer kernel).
FLOAT_ONLY = {"hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid", "selu", "silu", "swish",
              "softplus"}
for _n in UNARY_FLOAT:
    CASES[_n] = [C(f23), C(F(4))] + ([] if _n in FLOAT_ONLY else [C(I(2, 3))])
for _n in ["imag", "real", "conj", "conjugate", "angle"]:
    CASES[_n] = [C(Arr("Z", (2, 3)))] + ([] if _n == "imag" else [C(f23)])
for _n in UNARY_POSITIVE:
    CASES[_n] = [C(P(2, 3)), C(P(4, dtype="float16"), tol=2e-3)]
CASES["arccosh"] = [C(Arr("P", (2, 3)))]
for _n in UNARY_UNIT:
    CASES[_n] = [C(U(2, 3))]
for _n in BINARY:
    CASES[_n] = [C(f23, F(2, 3)), C(F(2, 3), F(3)), C(F(4, 1), I(1, 3)), C(F(2, 3), 2.0),
                 C(I(2, 3), 3), C(I(2, 3), 1.5), C(1.5, F(2, 3)), C(2, I(2, 3))]
CASES["power"] = [C(P(2, 3), F(2, 3)), C(P(2, 3), 2.0), C(I(2, 3), 2), C(P(2, 3), I(3)),
                  C(2.0, F(2, 3))]
CASES["divide_no_nan"] = [C(F(2, 3), I(2, 3, hi=3)), C(F(2, 3), 0.0)]
CASES["nextafter"] = [C(f23, F(2, 3))]
for _n in ["logical_and", "logical_or", "logical_xor"]:
    CASES[_n] = [C(B(2, 3), B(2, 3)), C(F(2, 3), B(3))]
for _n in BINARY_INT:
    CASES[_n] = [C(I(2, 3, hi=9), I(2, 3, hi=3)), C(I(4, hi=9), 2)]
CASES["floor_divide"] = [C(F(2, 3), P(2, 3)), C(I(2, 3, hi=9), 2)]
CASES["mod"] = [C(F(2, 3), P(2, 3)), C(I(2, 3, hi=9), 4)]
CASES["fmod"] = CASES["mod"]
CASES["ldexp"] = [C(F(2, 3), I(2, 3))]
CASES["bitwise_invert"] = [C(I(2, 3, hi=9)), C(B(4))]
CASES["bitwise_not"] = CASES["bitwise_invert"]
CASES["clip"] = [C(F(2, 3), -0.5, 0.5), C(I(2, 3), 1, 3)]
CASES["round"] = [C(F(2, 3)), C(F(2, 3), decimals=1), C(I(2, 3))]
for _n in REDUCE:
    CASES[_n] = [C(F(2, 3, 4)), C(F(2, 3, 4), axis=1), C(F(2, 3, 4), axis=(0, 2), keepdims=True),
                 C(F(2, 3), axis=-1, keepdims=True)]
for _n in ["argmax", "argmin", "nanargmax", "nanargmin"]:
    CASES[_n] = [C(F(2, 3, 4)), C(F(2, 3, 4), axis=1), C(F(2, 3, 4), axis=-1, keepdims=True)]
for _n in ["sum", "prod", "max", "min", "mean", "all", "any"]:
    CASES[_n] += [C(I(2, 3)), C(B(2, 3), axis=0)]
CASES["count_nonzero"] = [C(I(2, 3, hi=2)), C(I(2, 3, hi=2), axis=1)]
CASES["cumsum"] = [C(F(2, 3)), C(F(2, 3), axis=1), C(B(2, 3), axis=0), C(I(2, 3), axis=0)]
CASES["cumprod"] = CASES["cumsum"]
CASES["nancumsum"] = [C(F(2, 3), axis=1)]
CASES["nancumprod"] = [C(F(2, 3), axis=0)]
CASES["sort"] = [C(F(3, 4)), C(F(3, 4), axis=0)]
CASES["argsort"] = CASES["sort"]
CASES["quantile"] = [C(F(3, 4), 0.3), C(F(3, 4), [0.2, 0.7], axis=1),
                     C(F(3, 4), 0.5, axis=0, keepdims=True), C(F(3, 4), 0.5, method="nearest")]
CASES["nanquantile"] = [C(F(3, 4), 0.3), C(F(3, 4), [0.2, 0.7], axis=1)]
CASES["percentile"] = [C(F(3, 4), 30.0), C(F(3, 4), [20.0, 70.0], axis=1)]
CASES["nanpercentile"] = [C(F(3, 4), 30.0)]
CASES["average"] = [C(F(2, 3)), C(F(2, 3), axis=1, weights=P(3))]
CASES["bincount"] = [C(I(8, hi=5)), C(I(8, hi=5), weights=P(8), symbolic=False),  # a setting
                     C(I(8, hi=3), minlength=6)]
CASES["digitize"] = [C(F(6), np.array([-1.0, 0.0, 1.0], "float32"))]
CASES["searchsorted"] = [C(Arr("SORTED", (6,)), F(4)), C(Arr("SORTED", (6,)), F(4), side="right")]
CASES["histogram"] = [C(F(20), symbolic=False), C(F(20), bins=4, range=(-1.0, 1.0),
                                                  symbolic=False)]
CASES["nonzero"] = [C(I(3, 4, hi=2), symbolic=False)]
CASES["unique"] = [C(I(8, hi=4), symbolic=False),
                   C(I(8, hi=4), return_counts=True, return_inverse=True, symbolic=False)]
CASES["argpartition"] = [C(F(6), 2, values=False)]

# ------------------------------------------------------------------------------ shapes
CASES.update({
    "reshape": [C(F(2, 6), (3, 4)), C(F(2, 6), (-1, 3)), C(F(2, 6), (12,))],
    "transpose": [C(F(2, 3, 4)), C(F(2, 3, 4), axes=(1, 0, 2))],
    "expand_dims": [C(F(2, 3), 0), C(F(2, 3), -1), C(F(2, 3), (0, 2))],
    "squeeze": [C(F(1, 3, 1)), C(F(1, 3, 1), axis=0), C(F(1, 3, 1), axis=(0, 2))],
    "broadcast_to": [C(F(3), (2, 3)), C(F(2, 1), (2, 4))],
    "moveaxis": [C(F(2, 3, 4), 0, -1), C(F(2, 3, 4), (0, 1), (2, 0))],
    "swapaxes": [C(F(2, 3, 4), 0, 2)],
    "concatenate": [C([F(2, 3), F(1, 3)]), C([F(2, 3), F(2, 2)], axis=1),
                    C([F(2, 3), I(2, 3)], axis=0)],
    "append": [C(F(2, 3), F(2, 3)), C(F(2, 3), F(2, 3), axis=0)],
    "stack": [C([F(2, 3), F(2, 3)]), C([F(2, 3), F(2, 3)], axis=-1)],
    "hstack": [C([F(2, 3), F(2, 2)])],
    "vstack": [C([F(2, 3), F(1, 3)])],
    "dstack": [C([F(2, 3), F(2, 3)])],
    "split": [C(F(6, 2), 3), C(F(6, 2), [1, 4]), C(F(2, 6), 2, axis=1)],
    "array_split": [C(F(7, 2), 3), C(F(2, 7), 3, axis=1)],
    "hsplit": [C(F(2, 6), 3)],
    "vsplit": [C(F(6, 2), 2)],
    "dsplit": [C(F(2, 2, 6), 3)],
    "tile": [C(F(2, 3), 2), C(F(2, 3), (2, 1)), C(F(3), (2, 2))],
    "repeat": [C(F(2, 3), 2), C(F(2, 3), 2, axis=1)],
    "flip": [C(F(2, 3)), C(F(2, 3), axis=1)],
    "fliplr": [C(F(2, 3))],
    "flipud": [C(F(2, 3))],
    "roll": [C(F(2, 3), 1), C(F(2, 3), -1, axis=1), C(F(2, 3), (1, 2), axis=(0, 1))],
    "rot90": [C(F(2, 3)), C(F(2, 3, 4), k=2, axes=(1, 2))],
    "tril": [C(F(3, 3)), C(F(2, 3, 3), k=1)],
    "triu": [C(F(3, 3)), C(F(2, 3, 3), k=-1)],
    "diag": [C(F(3)), C(F(3, 3)), C(F(3, 3), k=1)],
    "diagflat": [C(F(3)), C(F(2, 2), k=-1)],
    "diagonal": [C(F(3, 3)), C(F(2, 3, 3), offset=1, axis1=1, axis2=2)],
    "trace": [C(F(3, 3)), C(F(2, 3, 3), axis1=1, axis2=2), C(I(3, 3))],
    "diff": [C(F(2, 5)), C(F(2, 5), n=2, axis=-1), C(F(3, 2), axis=0)],
    "matmul": [C(F(2, 3), F(3, 4)), C(F(5, 2, 3), F(3, 4)), C(F(3), F(3, 2)), C(I(2, 3), I(3, 2)),
               C(F(2, 3), I(3, 2))],
    "dot": [C(F(3), F(3)), C(F(2, 3), F(3, 4)), C(F(2, 3), 2.0)],
    "tensordot": [C(F(2, 3, 4), F(3, 4, 5)), C(F(2, 3), F(3, 4), axes=1),
                  C(F(2, 3, 4), F(4, 3), axes=([1, 2], [1, 0]))],
    "inner": [C(F(2, 3), F(4, 3))],
    "outer": [C(F(3), F(4))],
    "vdot": [C(F(3), F(3))],
    "kron": [C(F(2, 2), F(2, 3))],
    "cross": [C(F(4, 3), F(4, 3)), C(F(3, 4), F(3, 4), axis=0)],
    "einsum": [C("ij,jk->ik", F(2, 3), F(3, 4)), C("bij->bji", F(2, 3, 4)),
               C("i,i->", F(3), F(3))],
    "correlate": [C(F(5), F(3)), C(F(5), F(3), mode="same"), C(F(5), F(3), mode="full")],
    "pad": [C(F(2, 3), ((1, 1), (1, 1))), C(F(2, 3), ((1, 0), (0, 2))), C(F(2, 3), ((0, 0), (1, 1)),
                                                           constant_values=2.0),
            C(F(3, 4), ((1, 1), (2, 2)), mode="reflect")],
    "get_item": [C(F(3, 4), 1), C(F(3, 4), (slice(None), 0))],
    "take": [C(F(3, 4), I(2, hi=3)), C(F(3, 4), I(2, hi=4), axis=1), C(F(3, 4), I(3, hi=12))],
    "take_along_axis": [C(F(3, 4), I(3, 2, hi=4), axis=1), C(F(3, 4), I(1, 4, hi=3), axis=0)],
    "where": [C(B(2, 3), F(2, 3), F(2, 3)), C(B(2, 3), F(2, 3), 0.0), C(B(2, 3), I(2, 3), 1.5),
              C(B(2, 3), symbolic=False)],
    "select": [C([B(4), B(4)], [F(4), F(4)]), C([B(2, 3)], [F(2, 3)], default=1.0)],
    "isin": [C(I(2, 3, hi=6), I(3, hi=6)), C(I(2, 3, hi=6), I(3, hi=6), invert=True)],
    "unravel_index": [C(I(4, hi=12), (3, 4))],
    "view": [C(F(2, 3), "int32"), C(I(2, 3), "float32")],
    "trapezoid": [C(F(2, 5)), C(F(2, 5), dx=0.5), C(F(5), x=Arr("SORTED", (5,)), symbolic=False)],
    "vander": [C(F(3)), C(F(3), N=4, increasing=True)],
    "meshgrid": [C(F(3), F(2)), C(F(3), F(2), indexing="ij")],
    "corrcoef": [C(F(3, 5))],
    "slogdet": [C(Arr("SPD", (3, 3)))],
})

# ------------------------------------------------------------------------------ creation
CASES.update({
    "zeros": [C((2, 3)), C((2,), dtype="int32")],
    "ones": [C((2, 3)), C(4, dtype="bool")],
    "empty": [C((2, 3), values=False)],
    "full": [C((2, 3), 1.5), C((2, 3), 2), C((2,), 1, dtype="float32")],
    "zeros_like": [C(F(2, 3)), C(I(2, 3), dtype="float32")],
    "ones_like": [C(F(2, 3)), C(I(2, 3))],
    "empty_like": [C(F(2, 3), values=False)],
    "full_like": [C(F(2, 3), 2), C(I(2, 3), 1.5), C(F(2, 3), 2, dtype="int32")],
    "array": [C([1, 2, 3]), C([1.0, 2.0]), C(F(2, 3), dtype="float16", tol=1e-3)],
    "arange": [C(5), C(1, 7, 2), C(0.0, 1.0, 0.25), C(5, dtype="float32")],
    "linspace": [C(0.0, 1.0, 5), C(0.0, 1.0, 5, endpoint=False), C(1, 3, num=4)],
    "logspace": [C(0.0, 2.0, 5), C(0.0, 2.0, 4, base=2)],
    "geomspace": [C(1.0, 100.0, 5)],
    "eye": [C(3), C(3, 4, k=1), C(2, dtype="int32")],
    "identity": [C(3), C(2, dtype="int32")],
    "tri": [C(3), C(3, 4, k=-1)],
    "bartlett": [C(5)], "blackman": [C(5)], "hamming": [C(5)], "hanning": [C(5)],
    "kaiser": [C(6, 2.0)],
})

# ------------------------------------------------------------------------------ nn
CASES.update({
    "leaky_relu": [C(f23), C(f23, negative_slope=0.1)],
    "elu": [C(f23), C(f23, alpha=0.5)],
    "celu": [C(f23), C(f23, alpha=0.5)],
    "gelu": [C(f23), C(f23, approximate=False)],
    "glu": [C(F(2, 4)), C(F(4, 3), axis=0)],
    "hard_shrink": [C(f23), C(f23, threshold=0.2)],
    "soft_shrink": [C(f23), C(f23, threshold=0.2)],
    "threshold": [C(f23, 0.1, -1.0)],
    "squareplus": [C(f23), C(f23, b=2)],
    "softmax": [C(F(2, 5)), C(F(2, 5), axis=0), C(F(2, 3, 4), axis=(1, 2))],
    "log_softmax": [C(F(2, 5)), C(F(2, 5), axis=0)],
    "one_hot": [C(I(4, hi=3), 3), C(I(2, 3, hi=4), 4, axis=0), C(I(4, hi=3), 3, dtype="int32")],
    "multi_hot": [C(I(2, 3, hi=5), 5), C(I(3, hi=5), 5)],
    "moments": [C(F(4, 3), axes=0), C(F(2, 3, 4), axes=(0, 1), keepdims=True)],
    "batch_normalization": [C(F(4, 3), F(3), P(3), axis=-1),
                            C(F(4, 3), F(3), P(3), axis=1, offset=F(3), scale=F(3))],
    "layer_normalization": [C(F(2, 5)), C(F(2, 5), F(5), F(5)), C(F(2, 3, 4), axis=(1, 2))],
    "rms_normalization": [C(F(2, 5)), C(F(2, 5), F(5)), C(F(2, 5), axis=-1, epsilon=1e-3)],
    "normalize": [C(F(2, 5)), C(F(2, 5), axis=0), C(F(2, 5), order=1)],
    "categorical_crossentropy": [C(Arr("ONEHOT", (4, 3)), Arr("PROB", (4, 3))),
                                 C(Arr("ONEHOT", (4, 3)), F(4, 3), from_logits=True)],
    "sparse_categorical_crossentropy": [C(I(4, hi=3), Arr("PROB", (4, 3))),
                                        C(I(4, hi=3), F(4, 3), from_logits=True)],
    "binary_crossentropy": [C(Arr("I", (4, 3), "float32", 2), Arr("PROB", (4, 3))),
                            C(Arr("I", (4, 3), "float32", 2), F(4, 3), from_logits=True)],
    "psnr": [C(P(2, 4, 4, 1), P(2, 4, 4, 1), 2.0)],
    "polar": [C(P(3), F(3))],
    "dot_product_attention": [
        C(F(2, 4, 2, 8), F(2, 5, 2, 8), F(2, 5, 2, 8)),
        C(F(2, 4, 2, 8), F(2, 4, 2, 8), F(2, 4, 2, 8), is_causal=True),
        C(F(2, 4, 2, 8), F(2, 5, 2, 8), F(2, 5, 2, 8), mask=Arr("I", (2, 2, 4, 5), "bool", 2),
          scale=0.5, tol=1e-4),
        C(F(2, 4, 2, 8), F(2, 5, 2, 8), F(2, 5, 2, 8), bias=F(2, 2, 4, 5)),
    ],
    "conv": [C(F(2, 8, 3), F(3, 3, 4)), C(F(2, 6, 6, 3), F(3, 3, 3, 4), padding="same"),
             C(F(2, 7, 7, 2), F(3, 3, 2, 4), strides=2, padding="same"),
             C(F(2, 3, 6, 6), F(2, 2, 3, 2), data_format="channels_first"),
             C(F(2, 8, 8, 4), F(3, 3, 2, 6), dilation_rate=2),
             C(F(1, 5, 5, 5, 2), F(2, 2, 2, 2, 3))],
    "depthwise_conv": [C(F(2, 6, 6, 3), F(3, 3, 3, 2)),
                       C(F(2, 7, 7, 3), F(3, 3, 3, 1), strides=2, padding="same"),
                       C(F(2, 8, 3), F(3, 3, 2))],
    "separable_conv": [C(F(2, 6, 6, 3), F(3, 3, 3, 2), F(1, 1, 6, 4)),
                       C(F(2, 6, 6, 3), F(3, 3, 3, 1), F(1, 1, 3, 5), padding="same")],
    "conv_transpose": [C(F(2, 4, 4, 3), F(3, 3, 5, 3)),
                       C(F(2, 4, 4, 3), F(3, 3, 5, 3), strides=2, padding="same"),
                       C(F(2, 5, 3), F(3, 2, 3), strides=2),
                       C(F(2, 4, 4, 3), F(3, 3, 2, 3), strides=2, padding="same",
                         output_padding=1)],
    "max_pool": [C(F(2, 6, 6, 3), 2), C(F(2, 7, 7, 3), 3, strides=2, padding="same"),
                 C(F(2, 8, 3), 2), C(F(2, 3, 6, 6), (2, 3), data_format="channels_first")],
    "average_pool": [C(F(2, 6, 6, 3), 2), C(F(2, 7, 7, 3), 3, strides=2, padding="same"),
                     C(F(2, 8, 3), 3, strides=1)],
    "adaptive_average_pool": [C(F(2, 6, 6, 3), (2, 3)), C(F(2, 7, 3), 3)],
    "adaptive_max_pool": [C(F(2, 6, 6, 3), (2, 3)), C(F(2, 7, 3), 3)],
    "depth_to_space": [C(F(2, 2, 3, 8), 2), C(F(2, 8, 2, 3), 2, data_format="channels_first")],
    "space_to_depth": [C(F(2, 4, 6, 3), 2), C(F(2, 3, 4, 6), 2, data_format="channels_first")],
    "unfold": [C(F(2, 3, 5, 5), 2), C(F(2, 3, 5, 5), 3, stride=2, padding=1)],
    "fold": [C(F(2, 12, 16), (5, 5), 2)],
    "ctc_loss": [C(Arr("LABEL", (2, 3), "int32", 5), F(2, 6, 5), np.array([3, 2], "int32"),
                   np.array([6, 5], "int32"), tol=1e-4)],
    "ctc_decode": [C(F(2, 6, 5), np.array([6, 4], "int32"))],
})

# ------------------------------------------------------------------------------ core
CASES.update({
    "cast": [C(F(2, 3), "int32"), C(I(2, 3), "float16"), C(F(2, 3), "bool")],
    "saturate_cast": [C(F(2, 3), "int8"), C(Arr("I", (2, 3), "int32", 400), "uint8")],
    "convert_to_tensor": [C(F(2, 3)), C([1, 2]), C(F(2, 3), dtype="float16", tol=1e-3)],
    "slice": [C(F(4, 5), (1, 2), (2, 3))],
    "slice_update": [C(F(4, 5), (1, 2), F(2, 3))],
    "scatter": [C(np.array([[0, 1], [2, 0], [0, 1]], "int32"), F(3), (3, 2))],
    "scatter_update": [C(F(3, 2), np.array([[0, 1], [2, 0]], "int32"), F(2))],
    "unstack": [C(F(3, 2)), C(F(3, 2), axis=1)],
    "top_k": [C(F(3, 6), 2), C(F(6), 3)],
    "in_top_k": [C(I(3, hi=5), F(3, 5), 2)],
    "segment_sum": [C(F(6, 2), np.array([0, 0, 1, 2, 2, 2], "int32")),
                    C(F(6), np.array([0, 0, 1, 2, 2, 2], "int32"), num_segments=4,
                      symbolic=False)],
    "segment_max": [C(F(6, 2), np.array([0, 0, 1, 2, 2, 2], "int32"))],
    "erf": [C(f23)], "erfc": [C(f23)],
    "fft": [C((F(2, 4), F(2, 4)))],
    "fft2": [C((F(2, 4, 4), F(2, 4, 4)), tol=1e-4)],
    "ifft2": [C((F(2, 4, 4), F(2, 4, 4)), tol=1e-4)],
    "rfft": [C(F(2, 8)), C(F(2, 8), fft_length=6)],
    "irfft": [C((F(2, 5), F(2, 5))), C((F(2, 5), F(2, 5)), fft_length=8)],
    "stft": [C(F(2, 32), 8, 4, 8, tol=1e-4), C(F(32), 6, 3, 8, window="hamming", center=False,
                                               tol=1e-4)],
    "istft": [C((F(2, 9, 5), F(2, 9, 5)), 8, 4, 8, tol=1e-4, values=False)],
    "extract_sequences": [C(F(2, 10), 4, 2)],
    "logdet": [C(Arr("SPD", (3, 3)))],
    "cdist": [C(F(4, 3), F(5, 3))],
    "view_as_complex": [C(F(3, 2), symbolic=False)],
    "view_as_real": [C(Arr("Z", (3,)), symbolic=False)],
    "rearrange": [C(F(2, 6, 3), "b (h w) c -> b h w c", h=2),
                  C(F(2, 3, 4), "a b c -> c (a b)")],
})

# ------------------------------------------------------------------------------ linalg
CASES.update({
    "cholesky": [C(Arr("SPD", (3, 3))), C(Arr("SPD", (2, 3, 3)), upper=True)],
    "cholesky_inverse": [C(np.tril(np.eye(3) * 2 + 0.1).astype("float32"))],
    "det": [C(F(3, 3)), C(F(2, 3, 3))],
    "inv": [C(Arr("SPD", (3, 3)), tol=1e-4)],
    "eigh": [C(Arr("SPD", (3, 3)), tol=1e-4)],
    "norm": [C(F(2, 3)), C(F(2, 3), axis=1), C(F(2, 3), ord=1, axis=0), C(F(3, 3), ord="fro"),
             C(F(2, 3), axis=-1, keepdims=True)],
    "qr": [C(F(4, 3), values=False)],
    "solve": [C(Arr("SPD", (3, 3)), F(3, 2), tol=1e-4)],
    "solve_triangular": [C(np.triu(np.ones((3, 3))).astype("float32"), F(3, 2)),
                         C(np.tril(np.ones((3, 3))).astype("float32"), F(3, 2), lower=True)],
    "svd": [C(F(4, 3), values=False), C(F(4, 3), compute_uv=False)],
    "lstsq": [C(F(5, 3), F(5, 2), tol=1e-4)],
    "matrix_rank": [C(F(4, 3))],
    "pinv": [C(F(4, 3), tol=1e-4)],
    "lu_factor": [C(F(3, 3), values=False)],
    "eig": [C(Arr("SPD", (3, 3)), values=False, symbolic=False)],
})

# ------------------------------------------------------------------------------ image
_IMG = F(2, 6, 8, 3)
_U8 = Arr("I", (2, 6, 8, 3), "uint8", 255)
_SHEAR = np.array([[1.0, 0.2, -1.0, 0.1, 1.0, 2.0, 0, 0]] * 2, "float32")
CASES.update({
    # (shape-only traces of image ops are slow: a few cases per op are traced symbolically)
    "image.resize": [C(_IMG, (3, 4)), C(_IMG, (12, 10), interpolation="nearest", symbolic=False),
                     C(_IMG, (4, 5), interpolation="bicubic", tol=1e-4, symbolic=False),
                     C(_IMG, (3, 4), antialias=True, symbolic=False),
                     C(_IMG, (4, 4), crop_to_aspect_ratio=True),
                     C(_IMG, (4, 4), pad_to_aspect_ratio=True, symbolic=False),
                     C(_U8, (3, 4), symbolic=False),
                     C(F(3, 6, 8), (3, 4), data_format="channels_first")],
    "image.affine_transform": [
        C(_IMG, np.array([[1.0, 0.1, 0.5, -0.1, 1.0, 0.3, 0, 0]] * 2, "float32")),
        C(_IMG, np.array([[0.9, 0, 1.2, 0, 1.1, -0.5, 0, 0]] * 2, "float32"),
          interpolation="nearest", fill_mode="reflect"),
        C(_IMG, _SHEAR, fill_mode="wrap", symbolic=False),
        C(_IMG, _SHEAR, fill_mode="mirror", symbolic=False),
        C(_IMG, _SHEAR, fill_mode="nearest", fill_value=1.0, symbolic=False),
        C(F(6, 8, 3), _SHEAR[0])],
    "image.map_coordinates": [C(F(5, 6), np.array([[0.5, 3.2, -1.0], [1.5, 4.9, 2.0]],
                                                   "float32"), 1),
                              C(F(5, 6), np.array([[0.5, 3.2, 7.0], [1.5, 4.9, 2.0]],
                                                   "float32"), 0, fill_mode="wrap")],
    "image.extract_patches": [C(_IMG, 2), C(_IMG, (3, 3), strides=2, padding="same"),
                              C(_IMG, (2, 3), dilation_rate=1, strides=(1, 2))],
    "image.extract_patches_3d": [C(F(2, 4, 4, 4, 2), 2)],
    "image.rgb_to_grayscale": [C(_IMG), C(F(3, 6, 8), data_format="channels_first")],
    "image.rgb_to_hsv": [C(Arr("P", (2, 4, 4, 3)))],
    "image.hsv_to_rgb": [C(Arr("P", (2, 4, 4, 3)))],
    "image.crop_images": [C(_IMG, 1, 2, target_height=3, target_width=4),
                          C(_IMG, top_cropping=1, bottom_cropping=2, left_cropping=0,
                            right_cropping=3)],
    "image.pad_images": [C(_IMG, 1, 2, target_height=9, target_width=12),
                         C(_IMG, top_padding=1, bottom_padding=2, left_padding=0,
                           right_padding=3)],
    # Keras 3.15 reads data_format=None as channels-first here, so the format is explicit.
    "image.gaussian_blur": [C(_IMG, data_format="channels_last"),
                            C(_IMG, kernel_size=(5, 5), sigma=(2.0, 2.0),
                              data_format="channels_last")],
    "image.sobel_edges": [C(_IMG)],
    "image.ssim": [C(Arr("P", (2, 16, 16, 3)), Arr("P", (2, 16, 16, 3)), max_val=2.0)],
    "image.elastic_transform": [C(_IMG, seed=1, values=False, symbolic=False)],
    "image.perspective_transform": [
        C(_IMG, np.array([[0, 0], [7, 0], [0, 5], [7, 5]], "float32"),
          np.array([[1, 0], [7, 1], [0, 4], [6, 5]], "float32"), tol=1e-3)],
    "image.scale_and_translate": [
        C(F(2, 6, 8, 3), (2, 3, 4, 3), np.array([0.5, 0.5], "float32"),
          np.array([0.0, 0.0], "float32"), (1, 2), "linear", symbolic=False)],
})

# Names whose behaviour takes Python functions or is tested by hand in test_ops_core.py.
NO_CASE = {
    "cond": "control flow: tested in test_ops_core.py",
    "while_loop": "control flow: tested in test_ops_core.py",
    "fori_loop": "control flow: tested in test_ops_core.py",
    "scan": "control flow: tested in test_ops_core.py",
    "associative_scan": "control flow: tested in test_ops_core.py",
    "map": "control flow: tested in test_ops_core.py",
    "switch": "control flow: tested in test_ops_core.py",
    "vectorized_map": "control flow: tested in test_ops_core.py",
    "vectorize": "takes a Python function: tested in test_ops_core.py",
    "custom_gradient": "gradients: tested in test_ops_core.py",
    "jvp": "takes a Python function: tested in test_ops_core.py",
    "convert_to_numpy": "returns NumPy: tested in test_ops_core.py",
    "is_tensor": "a predicate: tested in test_ops_core.py",
    "shape": "returns a tuple: tested in test_ops_core.py",
    "dtype": "returns a name: tested in test_ops_core.py",
    "segment_prod": "Keras 3.15's torch backend fails on it; tested by hand",
    "segment_min": "same rules as segment_max; tested by hand",
    "ndim": "returns a Python int: tested in test_ops_core.py",
    "sparsemax": "Keras 3.15's torch sparsemax is wrong when 2+ entries are kept (its outputs do "
                 "not sum to 1); tested against a NumPy reference in test_ops_core.py",
}

# Where plexus follows NumPy's documented behaviour and Keras 3.15's torch backend does not
# (kept out of the parity cases; each is tested by hand in test_ops_core.py):
# - pad(x, 1): NumPy pads every axis; Keras pads only the last one.
# - average(x, axis=None, weights=w): NumPy gives a scalar; Keras reduces only axis 0.
# - cross with 2-vectors: NumPy returns the z component; Keras raises.
# - repeat(x, [1, 2], axis=0): list repeats work; Keras raises.
