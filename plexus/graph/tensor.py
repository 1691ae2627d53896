"""Symbolic tensors: what `Input` and layers called on `Input` return."""
import torch

_DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64, "int8": torch.int8, "int16": torch.int16, "int32": torch.int32,
    "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool,
    "complex64": torch.complex64, "complex128": torch.complex128,
}
_NAMES = {v: k for k, v in _DTYPES.items()}
_counter = [0]
# `handler(op_name, *operands) -> KerasTensor`: what Python operators on symbolic tensors do
# (`x + 1` is `handler("add", x, 1)`, `x[:, 0]` is `handler("get_item", x, key)`); installed by
# `set_operator_handler` (plexus.ops does it), so the graph imports no layers or ops.
_operator_handler = [None]


def set_operator_handler(handler):
    """Install the function that records Python operators on symbolic tensors as graph
    operations: `handler(op_name, *operands)`, `op_name` a `plexus.ops` function name."""
    _operator_handler[0] = handler


def standardize_dtype(dtype):
    """Keras dtype name (`'float32'`) for a name, a torch dtype or a NumPy dtype; None gives
    `plexus.config.floatx()`."""
    if dtype is None:
        from plexus import config
        return config.floatx()
    if isinstance(dtype, torch.dtype):
        if dtype not in _NAMES:
            raise ValueError(f"Unsupported dtype {dtype}. Use one of: {', '.join(_DTYPES)}.")
        return _NAMES[dtype]
    if isinstance(dtype, type) and dtype.__module__ == "numpy":  # np.int32, np.float64, ...
        dtype = dtype.__name__
    if dtype is str or dtype is bytes or dtype is object:
        return "string"
    name = getattr(dtype, "name", None) or str(dtype)
    name = {"float": "float32", "int": "int64", "double": "float64", "half": "float16",
            "str": "string", "object": "string", "bytes": "string"}.get(name, name)
    name = name.replace("torch.", "")
    if name == "string":  # text: NumPy arrays of str/bytes (torch has no string tensors)
        return name
    if name not in _DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}. Use one of: {', '.join(_DTYPES)}.")
    return name


def torch_dtype(dtype):
    name = standardize_dtype(dtype)
    if name == "string":
        raise TypeError(
            "torch has no string tensors: string data stays a NumPy array of str/bytes until a "
            "layer such as StringLookup, Hashing or TextVectorization turns it into numbers.")
    return _DTYPES[name]


class KerasTensor:
    """A symbolic tensor: a shape with `None` for unknown sizes, a dtype, a name, and the node
    (one layer call) that produced it.

    It holds no data. Layers called on it build themselves and return new symbolic tensors;
    `Model(inputs, outputs)` follows these back to find the graph.
    """

    def __init__(self, shape, dtype="float32", name=None, has_mask=False):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = standardize_dtype(dtype)
        if name is None:
            _counter[0] += 1
            name = f"keras_tensor_{_counter[0]}"
        self.name = name
        self.has_mask = has_mask
        self.node = None  # the Node that produced this tensor; None for a bare spec
        self.index = 0  # position among that node's outputs

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def _keras_history(self):
        return (self.node.layer if self.node else None,
                self.node.index if self.node else 0, self.index)

    @property
    def _keras_mask(self):
        """The mask this symbolic tensor carries, as Keras shows it: a boolean symbolic tensor
        (one value per timestep of a sequence of vectors, else one per element), or None."""
        if not self.has_mask:
            return None
        shape = self.shape[:-1] if len(self.shape) >= 3 else self.shape
        return KerasTensor(shape, "bool", name=f"{self.name}_mask")

    @_keras_mask.setter
    def _keras_mask(self, mask):
        self.has_mask = mask is not None

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __len__(self):
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"len() of a symbolic tensor of shape {self.shape} is not known.")
        return self.shape[0]

    def __bool__(self):
        raise TypeError(
            "A symbolic tensor has no value, so it cannot be used as a Python bool. Symbolic "
            "tensors describe a graph; call the model on real data to get values."
        )

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"Symbolic tensor {self.name!r} (shape {self.shape}) has no data to turn into a NumPy "
            "array. Build a Model from it and call `model.predict(data)` instead."
        )

    def numpy(self):
        self.__array__()

    # Python operators record the same op nodes as the `plexus.ops` functions (`x + 1` is
    # `ops.add(x, 1)`), through the handler `plexus.ops` installs.
    def __add__(self, o): return _apply("add", self, o)
    def __radd__(self, o): return _apply("add", o, self)
    def __sub__(self, o): return _apply("subtract", self, o)
    def __rsub__(self, o): return _apply("subtract", o, self)
    def __mul__(self, o): return _apply("multiply", self, o)
    def __rmul__(self, o): return _apply("multiply", o, self)
    def __truediv__(self, o): return _apply("true_divide", self, o)
    def __rtruediv__(self, o): return _apply("true_divide", o, self)
    def __floordiv__(self, o): return _apply("floor_divide", self, o)
    def __rfloordiv__(self, o): return _apply("floor_divide", o, self)
    def __mod__(self, o): return _apply("mod", self, o)
    def __rmod__(self, o): return _apply("mod", o, self)
    def __pow__(self, o): return _apply("power", self, o)
    def __rpow__(self, o): return _apply("power", o, self)
    def __matmul__(self, o): return _apply("matmul", self, o)
    def __rmatmul__(self, o): return _apply("matmul", o, self)
    def __neg__(self): return _apply("negative", self)
    def __abs__(self): return _apply("absolute", self)
    def __lt__(self, o): return _apply("less", self, o)
    def __le__(self, o): return _apply("less_equal", self, o)
    def __gt__(self, o): return _apply("greater", self, o)
    def __ge__(self, o): return _apply("greater_equal", self, o)
    def __ne__(self, o): return _apply("not_equal", self, o)
    def __and__(self, o): return _apply("logical_and", self, o)
    def __rand__(self, o): return _apply("logical_and", o, self)
    def __or__(self, o): return _apply("logical_or", self, o)
    def __ror__(self, o): return _apply("logical_or", o, self)
    def __xor__(self, o): return _apply("logical_xor", self, o)
    def __rxor__(self, o): return _apply("logical_xor", o, self)
    def __invert__(self): return _apply("logical_not", self)
    def __round__(self, ndigits=None): return _apply("round", self, ndigits or 0)
    def __getitem__(self, key): return _apply("get_item", self, key)

    __hash__ = object.__hash__


def _apply(name, *operands):
    hook = _operator_handler[0]
    if hook is None:
        raise RuntimeError(f"Operator {name!r} on a symbolic tensor needs plexus.ops; "
                           "`import plexus` (or `plexus.ops`) first.")
    return hook(name, *operands)


def is_keras_tensor(x):
    return isinstance(x, KerasTensor)
