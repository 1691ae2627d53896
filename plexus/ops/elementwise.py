"""Element-wise NumPy-style ops (`keras.ops.numpy`): arithmetic, comparisons, math functions."""
import torch

from plexus.ops.common import float_tensor, floatx_dtype, operands, pair, promoted, strong, t
from plexus.ops.dtypes import result_type, torch_dtype
from plexus.ops.table import alias, op

B = "x1,x2"


# ------------------------------------------------------------------------------ arithmetic
@op("numpy", "Add", B, elementwise=True)
def add(x1, x2):
    """Add two tensors element-wise (broadcasting)."""
    a, b = operands(x1, x2)
    return torch.add(a, b)


@op("numpy", "Subtract", B, elementwise=True)
def subtract(x1, x2):
    """Subtract `x2` from `x1` element-wise."""
    a, b = operands(x1, x2)
    if type(a) is not torch.Tensor:  # a Python number minus a tensor
        return torch.rsub(b, a)
    if type(b) is not torch.Tensor:
        return torch.subtract(a, b)
    if a.dtype is torch.bool:
        a = a.to(b.dtype)
    if b.dtype is torch.bool:
        b = b.to(a.dtype)
    return torch.subtract(a, b)


@op("numpy", "Multiply", B, elementwise=True)
def multiply(x1, x2):
    """Multiply two tensors element-wise."""
    a, b = operands(x1, x2)
    return torch.multiply(a, b)


def _divide(x1, x2):
    if isinstance(x1, (int, float)) and not isinstance(x1, bool) and isinstance(x2, torch.Tensor):
        return torch.true_divide(x1, x2)
    if isinstance(x2, (int, float)) and not isinstance(x2, bool) and isinstance(x1, torch.Tensor):
        return torch.true_divide(x1, x2)
    a, b = pair(x1, x2)
    return torch.true_divide(a, b)


@op("numpy", "Divide", B, elementwise=True)
def divide(x1, x2):
    """Divide `x1` by `x2` element-wise (true division: integers give floats)."""
    return _divide(x1, x2)


@op("numpy", "TrueDivide", B, elementwise=True)
def true_divide(x1, x2):
    """Alias of `divide`."""
    return _divide(x1, x2)


@op("numpy", "DivideNoNan", B, elementwise=True)
def divide_no_nan(x1, x2):
    """`x1 / x2`, with 0 where `x2` is 0."""
    a, b = promoted(x1, x2, float)
    zero = b == 0
    return torch.where(zero, torch.zeros((), dtype=a.dtype, device=a.device),
                       a / torch.where(zero, torch.ones_like(b), b))


@op("numpy", "FloorDivide", B, elementwise=True)
def floor_divide(x1, x2):
    """Largest integer not above `x1 / x2`, element-wise."""
    dtype = torch_dtype(result_type(_dt(x1), _dt(x2)))
    a, b = operands(x1, x2)
    if type(a) is not torch.Tensor:
        a = torch.as_tensor(a, device=b.device)
    return torch.floor_divide(a, b).to(dtype)


def _remainder(name, class_name, fn, doc):
    def impl(x1, x2):
        a, b = pair(x1, x2)
        if a.dtype is torch.bool and b.dtype is torch.bool:
            a, b = a.int(), b.int()
        return fn(a, b)
    impl.__name__, impl.__doc__ = name, doc
    return op("numpy", class_name, B, elementwise=True)(impl)


mod = _remainder("mod", "Mod", torch.remainder,
                 "Remainder of division, with the sign of the divisor (as NumPy).")
fmod = _remainder("fmod", "Fmod", torch.fmod,
                  "Remainder of division, with the sign of the dividend (C's `fmod`).")


@op("numpy", "Power", B, elementwise=True)
def power(x1, x2):
    """`x1 ** x2`, element-wise."""
    a, b = operands(x1, x2)
    return torch.pow(a, b)


@op("numpy", "Negative", ("x",), elementwise=True)
def negative(x):
    """`-x`, element-wise."""
    return torch.negative(t(x))


@op("numpy", "Absolute", elementwise=True)
def absolute(x):
    """Absolute value, element-wise."""
    x = t(x)
    return x if x.dtype is torch.bool else torch.abs(x)


abs_ = absolute
alias("abs", "absolute", "Abs")


@op("numpy", "Fabs", elementwise=True)
def fabs(x):
    """Absolute value as floats."""
    return torch.abs(float_tensor(x))


@op("numpy", "Square", elementwise=True)
def square(x):
    """`x * x`, element-wise."""
    x = t(x)
    if x.dtype is torch.bool:
        x = x.to(torch.int32)
    return torch.square(x)


@op("numpy", "Sqrt", elementwise=True)
def sqrt(x):
    """Square root, element-wise (integers give floats)."""
    return torch.sqrt(float_tensor(x))


@op("numpy", "Cbrt", elementwise=True)
def cbrt(x):
    """Cube root, element-wise."""
    x = t(x)
    x = x.to(torch.float64) if x.dtype is torch.int64 else float_tensor(x)
    return torch.sign(x) * torch.abs(x) ** (1.0 / 3.0)


@op("numpy", "Reciprocal", elementwise=True)
def reciprocal(x):
    """`1 / x`, element-wise."""
    return torch.reciprocal(float_tensor(x))


@op("numpy", "Sign", elementwise=True)
def sign(x):
    """-1, 0 or 1 by the sign of each element."""
    x = t(x)
    return x if x.dtype is torch.bool else torch.sign(x)


@op("numpy", "Signbit", elementwise=True)
def signbit(x):
    """Whether the sign bit is set (True for -0.0 and negative numbers)."""
    x = t(x)
    return torch.zeros_like(x, dtype=torch.bool) if x.dtype is torch.bool else torch.signbit(x)


def _rounded_float(x):
    """Floor and ceil give floats: int64 -> floatx, else `result_type(dtype, float)`."""
    x = t(x)
    if x.dtype is torch.int64:
        return x.to(floatx_dtype())
    return x.to(torch_dtype(result_type(x.dtype, float)))


@op("numpy", "Floor", elementwise=True)
def floor(x):
    """Round down, element-wise."""
    return torch.floor(_rounded_float(x))


@op("numpy", "Ceil", elementwise=True)
def ceil(x):
    """Round up, element-wise."""
    return torch.ceil(_rounded_float(x))


@op("numpy", "Trunc", elementwise=True)
def trunc(x):
    """Round towards zero, element-wise."""
    x = t(x)
    return torch.trunc(x) if x.is_floating_point() else x


@op("numpy", "Round", elementwise=True)
def round_(x, decimals=0):
    """Round to `decimals` decimal places (halves to even, as NumPy)."""
    x = t(x)
    if not x.is_floating_point():
        if decimals >= 0:
            return x
        f = 10 ** (-decimals)
        return (torch.round(x.double() / f) * f).to(x.dtype)
    return torch.round(x, decimals=decimals)


@op("numpy", "Clip", ("x",), elementwise=True)
def clip(x, x_min, x_max):
    """Limit values to `[x_min, x_max]`."""
    x = t(x)
    if x.dtype is torch.bool:
        x = x.to(torch.int32)
    return torch.clamp(x, min=x_min, max=x_max)


# ------------------------------------------------------------------------------ floats
def unary_float(name, class_name, fn, doc, module="numpy", wide_int=False):
    """Register `fn` as an element-wise op on floats (integers and bools cast to floatx;
    with `wide_int`, int64 to float64, as Keras does for these)."""
    def impl(x):
        if wide_int and isinstance(x, torch.Tensor) and x.dtype is torch.int64:
            return fn(x.to(torch.float64))
        return fn(float_tensor(x))
    impl.__name__ = name
    impl.__doc__ = doc
    return op(module, class_name, elementwise=True)(impl)


exp = unary_float("exp", "Exp", torch.exp, "`e ** x`, element-wise.")
exp2 = unary_float("exp2", "Exp2", torch.exp2, "`2 ** x`, element-wise.")
expm1 = unary_float("expm1", "Expm1", torch.expm1, "`exp(x) - 1`, accurate near 0.")
log = unary_float("log", "Log", torch.log, "Natural logarithm, element-wise.")
log10 = unary_float("log10", "Log10", torch.log10, "Base-10 logarithm, element-wise.")
log2 = unary_float("log2", "Log2", torch.log2, "Base-2 logarithm, element-wise.")
log1p = unary_float("log1p", "Log1p", torch.log1p, "`log(1 + x)`, accurate near 0.")
sin = unary_float("sin", "Sin", torch.sin, "Sine, element-wise.")
cos = unary_float("cos", "Cos", torch.cos, "Cosine, element-wise.")
tan = unary_float("tan", "Tan", torch.tan, "Tangent, element-wise.")
arcsin = unary_float("arcsin", "Arcsin", torch.asin, "Inverse sine, element-wise.")
arccos = unary_float("arccos", "Arccos", torch.acos, "Inverse cosine, element-wise.")
arctan = unary_float("arctan", "Arctan", torch.atan, "Inverse tangent, element-wise.")
sinh = unary_float("sinh", "Sinh", torch.sinh, "Hyperbolic sine, element-wise.")
cosh = unary_float("cosh", "Cosh", torch.cosh, "Hyperbolic cosine, element-wise.")
tanh = unary_float("tanh", "Tanh", torch.tanh, "Hyperbolic tangent, element-wise.")
arcsinh = unary_float("arcsinh", "Arcsinh", torch.asinh, "Inverse hyperbolic sine.")
arccosh = unary_float("arccosh", "Arccosh", torch.acosh, "Inverse hyperbolic cosine.")
arctanh = unary_float("arctanh", "Arctanh", torch.atanh, "Inverse hyperbolic tangent.")
deg2rad = unary_float("deg2rad", "Deg2rad", torch.deg2rad, "Degrees to radians.",
                      wide_int=True)
rad2deg = unary_float("rad2deg", "Rad2deg", torch.rad2deg, "Radians to degrees.",
                      wide_int=True)
i0 = unary_float("i0", "I0", torch.special.i0, "Modified Bessel function of order 0.",
                 wide_int=True)


@op("numpy", "Sinc", elementwise=True)
def sinc(x):
    """Normalized sinc: `sin(pi x) / (pi x)`, 1 at 0."""
    return torch.sinc(float_tensor(x))


def _binary_float(name, class_name, fn, doc):
    def impl(x1, x2):
        a, b = strong(x1, x2, float)
        return fn(a, b) if a.dtype is not torch.float16 or a.device.type != "cpu" else \
            fn(a.float(), b.float()).to(torch.float16)
    impl.__name__ = name
    impl.__doc__ = doc
    return op("numpy", class_name, B, elementwise=True)(impl)


arctan2 = _binary_float("arctan2", "Arctan2", torch.atan2, "Angle of the point `(x2, x1)`.")
hypot = _binary_float("hypot", "Hypot", torch.hypot, "`sqrt(x1**2 + x2**2)`, element-wise.")
logaddexp = _binary_float("logaddexp", "Logaddexp", torch.logaddexp,
                          "`log(exp(x1) + exp(x2))`, computed stably.")
logaddexp2 = _binary_float("logaddexp2", "Logaddexp2", torch.logaddexp2,
                           "`log2(2**x1 + 2**x2)`, computed stably.")


@op("numpy", "Nextafter", B, elementwise=True)
def nextafter(x1, x2):
    """The next float after `x1` towards `x2`."""
    dtype = torch_dtype(result_type(*[_dt(v) for v in (x1, x2)], float))
    a, b = pair(x1, x2)
    return torch.nextafter(a.double(), b.double()).to(dtype)


def _dt(v):
    return v.dtype if isinstance(v, torch.Tensor) else type(v) if isinstance(
        v, (int, float)) else t(v).dtype


@op("numpy", "Ldexp", B, elementwise=True)
def ldexp(x1, x2):
    """`x1 * 2 ** x2`, element-wise."""
    a, b = pair(x1, x2)
    if b.is_floating_point():
        raise TypeError(f"ldexp: the exponent x2 must be an integer tensor; got {b.dtype}.")
    dtype = torch_dtype(result_type(a.dtype, b.dtype, float))
    return (a.to(dtype) * torch.pow(torch.tensor(2.0, dtype=dtype, device=a.device), b))


@op("numpy", "Heaviside", B, elementwise=True)
def heaviside(x1, x2):
    """0 where `x1 < 0`, `x2` where `x1 == 0`, 1 where `x1 > 0`."""
    dtype = torch_dtype(result_type(_dt(x1), _dt(x2)))
    if dtype in (torch.int32, torch.int64, torch.bool, torch.int8, torch.int16, torch.uint8):
        dtype = floatx_dtype()
    a, b = pair(x1, x2)
    return torch.heaviside(a.to(dtype), b.to(dtype))


def _binary(name, class_name, fn, doc, convert=promoted):
    def impl(x1, x2):
        a, b = convert(x1, x2)
        return fn(a, b)
    impl.__name__ = name
    impl.__doc__ = doc
    return op("numpy", class_name, B, elementwise=True)(impl)


maximum = _binary("maximum", "Maximum", torch.maximum, "Element-wise maximum (NaN wins).")
minimum = _binary("minimum", "Minimum", torch.minimum, "Element-wise minimum (NaN wins).")
fmax = _binary("fmax", "Fmax", torch.fmax, "Element-wise maximum, ignoring NaNs.")
fmin = _binary("fmin", "Fmin", torch.fmin, "Element-wise minimum, ignoring NaNs.")
gcd = _binary("gcd", "Gcd", torch.gcd, "Greatest common divisor, element-wise.", pair)
lcm = _binary("lcm", "Lcm", torch.lcm, "Least common multiple, element-wise.", pair)


# ------------------------------------------------------------------------------ comparisons
def _compare(name, class_name, fn, doc):
    def impl(x1, x2):
        a, b = operands(x1, x2)
        if type(a) is not torch.Tensor:  # `2 < x` is `x > 2`
            return _SWAPPED[fn](b, a)
        return fn(a, b)
    impl.__name__ = name
    impl.__doc__ = doc
    return op("numpy", class_name, B, elementwise=True)(impl)


_SWAPPED = {torch.eq: torch.eq, torch.ne: torch.ne, torch.gt: torch.lt, torch.ge: torch.le,
            torch.lt: torch.gt, torch.le: torch.ge}
equal = _compare("equal", "Equal", torch.eq, "`x1 == x2`, element-wise.")
not_equal = _compare("not_equal", "NotEqual", torch.ne, "`x1 != x2`, element-wise.")
greater = _compare("greater", "Greater", torch.gt, "`x1 > x2`, element-wise.")
greater_equal = _compare("greater_equal", "GreaterEqual", torch.ge, "`x1 >= x2`, element-wise.")
less = _compare("less", "Less", torch.lt, "`x1 < x2`, element-wise.")
less_equal = _compare("less_equal", "LessEqual", torch.le, "`x1 <= x2`, element-wise.")


def _logical(name, class_name, fn, doc):
    def impl(x1, x2):
        a, b = pair(x1, x2)
        return fn(a.bool(), b.bool())
    impl.__name__ = name
    impl.__doc__ = doc
    return op("numpy", class_name, B, elementwise=True)(impl)


logical_and = _logical("logical_and", "LogicalAnd", torch.logical_and, "Element-wise AND.")
logical_or = _logical("logical_or", "LogicalOr", torch.logical_or, "Element-wise OR.")
logical_xor = _logical("logical_xor", "LogicalXor", torch.logical_xor, "Element-wise XOR.")


@op("numpy", "LogicalNot", elementwise=True)
def logical_not(x):
    """Element-wise NOT."""
    return torch.logical_not(t(x).bool())


@op("numpy", "Isclose", "x1,x2,rtol,atol", elementwise=True)
def isclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    """Whether `|x1 - x2| <= atol + rtol * |x2|`, element-wise."""
    a, b = promoted(x1, x2)
    return torch.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


@op("numpy", "AllClose", B)
def allclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    """Whether every element pair is close (see `isclose`); a scalar bool tensor."""
    a, b = promoted(x1, x2)
    return torch.all(torch.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def _test(name, class_name, fn, doc, ints):
    def impl(x):
        x = t(x)
        if not (x.is_floating_point() or x.is_complex()):
            return torch.full(x.shape, ints, dtype=torch.bool, device=x.device)
        return fn(x)
    impl.__name__ = name
    impl.__doc__ = doc
    return op("numpy", class_name, elementwise=True)(impl)


isfinite = _test("isfinite", "Isfinite", torch.isfinite, "Whether each element is finite.", True)
isinf = _test("isinf", "Isinf", torch.isinf, "Whether each element is infinite.", False)
isnan = _test("isnan", "Isnan", torch.isnan, "Whether each element is NaN.", False)
isneginf = _test("isneginf", "Isneginf", torch.isneginf, "Whether each element is -inf.", False)
isposinf = _test("isposinf", "Isposinf", torch.isposinf, "Whether each element is +inf.", False)


@op("numpy", "Isreal", elementwise=True)
def isreal(x):
    """Whether each element has no imaginary part."""
    return torch.isreal(t(x))


@op("numpy", "NanToNum", elementwise=True)
def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """Replace NaN by `nan`, infinities by `posinf`/`neginf` (the dtype's extremes)."""
    x = t(x)
    if not x.is_floating_point():
        return x
    return torch.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


# ------------------------------------------------------------------------------ complex
@op("numpy", "Conjugate", elementwise=True)
def conjugate(x):
    """Complex conjugate, element-wise."""
    x = t(x)
    return torch.conj(x).resolve_conj() if x.is_complex() else x


conj = conjugate
alias("conj", "conjugate", "Conj")


@op("numpy", "Real", elementwise=True)
def real(x):
    """Real part, element-wise."""
    x = t(x)
    return torch.real(x) if x.is_complex() else x


@op("numpy", "Imag", elementwise=True)
def imag(x):
    """Imaginary part, element-wise (0 for real input)."""
    x = t(x)
    return torch.imag(x) if x.is_complex() else torch.zeros_like(x)


@op("numpy", "Angle", elementwise=True)
def angle(x):
    """Argument (angle) of complex numbers; 0 or pi for real ones."""
    x = t(x)
    if not (x.is_floating_point() or x.is_complex()):
        x = x.to(floatx_dtype())
    return torch.angle(x)


# ------------------------------------------------------------------------------ bitwise
def _bitwise(name, class_name, fn, doc):
    def impl(x, y):
        a, b = pair(x, y)
        return fn(a, b)
    impl.__name__ = name
    impl.__doc__ = doc
    return op("numpy", class_name, "x,y", elementwise=True)(impl)


bitwise_and = _bitwise("bitwise_and", "BitwiseAnd", torch.bitwise_and, "Bitwise AND.")
bitwise_or = _bitwise("bitwise_or", "BitwiseOr", torch.bitwise_or, "Bitwise OR.")
bitwise_xor = _bitwise("bitwise_xor", "BitwiseXor", torch.bitwise_xor, "Bitwise XOR.")
bitwise_left_shift = _bitwise("bitwise_left_shift", "BitwiseLeftShift",
                              torch.bitwise_left_shift, "Shift bits of `x` left by `y`.")
bitwise_right_shift = _bitwise("bitwise_right_shift", "BitwiseRightShift",
                               torch.bitwise_right_shift, "Shift bits of `x` right by `y`.")
left_shift = _bitwise("left_shift", "LeftShift", torch.bitwise_left_shift,
                      "Shift bits of `x` left by `y`.")
right_shift = _bitwise("right_shift", "RightShift", torch.bitwise_right_shift,
                       "Shift bits of `x` right by `y`.")


@op("numpy", "BitwiseInvert", elementwise=True)
def bitwise_invert(x):
    """Bitwise NOT."""
    return torch.bitwise_not(t(x))


@op("numpy", "BitwiseNot", elementwise=True)
def bitwise_not(x):
    """Bitwise NOT."""
    return torch.bitwise_not(t(x))

