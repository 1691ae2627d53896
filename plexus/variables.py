"""`Variable`: a layer's weight, a real `torch.nn.Parameter` that also speaks Keras's variable API.

    layer = plexus.layers.Dense(3)
    layer.build((None, 4))
    layer.kernel.path                 # 'dense/kernel'
    layer.kernel.assign(np.ones((4, 3)))
    layer.kernel.numpy().shape        # (4, 3)
    layer.kernel.value.grad           # the tensor itself: torch's attributes work

Departures from Keras, for torch's sake:
- `v.dtype` is torch's dtype (`torch.float32`); everything in plexus that takes a dtype accepts it.
- `v.shape` is the tensor's shape. Weights that plexus stores in torch's layout (convolution
  kernels `(out, in, *kernel)`, recurrent kernels `(4 * units, in)`) report that layout there,
  and in `v.value`; `v.numpy()`, `v.keras_shape`, `get_weights()` and saved files use Keras's
  layout (`(*kernel, in, out)`, `(in, 4 * units)`). `v.assign(x)` takes a torch tensor of
  `v.shape` as it is, and anything else (NumPy arrays, lists, tensors of `v.keras_shape`) in
  Keras's layout. For every other weight the two layouts are the same.
- Non-trainable weights are registered as torch buffers (`named_buffers()`), trainable ones as
  parameters; both are `Variable`s.
"""
import copy

import numpy as np
import torch
from torch import nn

_AGGREGATIONS = (None, "none", "mean", "sum", "only_first_replica")


def _identity(t):
    return t


class Weight:
    """How one weight is stored in a layer: its attribute, its Keras name, path and shape, how to
    convert between Keras's layout (files, `get_weights`) and torch's (kernels), and the Keras
    properties of `add_weight` (regularizer, constraint, ...)."""

    __slots__ = ("attr", "name", "path", "keras_shape", "to_keras", "to_torch", "trainable",
                 "regularizer", "constraint", "autocast", "aggregation", "synchronization",
                 "overwrite_with_gradient")

    def __init__(self, attr, name, keras_shape, to_keras=_identity, to_torch=_identity,
                 trainable=True, regularizer=None, constraint=None, path=None):
        self.attr, self.name, self.keras_shape = attr, name, tuple(keras_shape)
        self.to_keras, self.to_torch, self.trainable = to_keras, to_torch, bool(trainable)
        self.regularizer, self.constraint = regularizer, constraint
        self.path = path or name
        self.autocast, self.aggregation, self.synchronization = True, "none", "auto"
        self.overwrite_with_gradient = False

    def copy(self, attr):
        """The same description under another attribute (a weight shared by a second layer)."""
        other = copy.copy(self)
        other.attr = attr
        return other


def _is_differentiable(t):
    return t.is_floating_point() or t.is_complex()


def to_numpy(t):
    """A detached CPU NumPy copy of `t` (bfloat16 becomes float32: NumPy has no bfloat16). A
    weight FSDP shards (`plexus.distribution.ModelParallel`) is gathered whole first: every
    process must ask for it together."""
    t = t.detach()
    if hasattr(t, "full_tensor"):
        t = t.full_tensor()
    if t.dtype is torch.bfloat16:
        t = t.float()
    return t.cpu().numpy()


def _described(field, doc, convert=None):
    """A property reading (and, with `convert`, writing) a field of the variable's `Weight`."""
    def get(self):
        return getattr(self._spec, field)

    def put(self, value):
        setattr(self._spec, field, convert(value))

    return property(get, put if convert is not None else None, doc=doc)


def _resolve(module, value):
    """`plexus.<module>.get(value)` (imported late: those modules import layers)."""
    import importlib
    return importlib.import_module(f"plexus.{module}").get(value)


class Variable(nn.Parameter):
    """A weight: a `torch.nn.Parameter` with Keras's variable API.

    Layers create them with `add_weight`; you can also make one directly, as `keras.Variable`.

    Args:
        initializer: the initial value (a tensor, an array, a number), or an initializer (a name
            such as `"glorot_uniform"`, an instance or a callable `(shape, dtype)`), which then
            needs `shape`.
        shape: the shape, required with an initializer; checked against a given value.
        dtype: a dtype name or a torch/NumPy dtype; `plexus.config.floatx()` for floating
            values by default, the value's own for others.
        trainable: whether gradients update it (`requires_grad` for floating variables; integer
            variables are never trainable).
        autocast: whether mixed-precision layers cast it to their compute dtype in `call`.
        aggregation: how a multi-replica custom loop should combine it (`"none"`, `"mean"`,
            `"sum"`, `"only_first_replica"`); recorded for such loops.
        synchronization: recorded for compatibility (`"auto"`).
        name: the variable's name (`"variable"`, `"variable_1"`, ... by default, as Keras).

    Example:

        v = plexus.Variable(np.zeros((2, 2)), name="counts")
        v.assign_add(np.ones((2, 2)))
        v.numpy()          # array of ones
    """

    def __new__(cls, initializer=None, shape=None, dtype=None, trainable=True, autocast=True,
                aggregation="none", synchronization="auto", name=None):
        if isinstance(shape, bool):  # torch's own call style: type(p)(data, requires_grad)
            shape, trainable = None, shape
        value = _initial_value(initializer, shape, dtype, name)
        if name is None:
            from plexus import backend  # noqa: (backend imports the graph, which imports this)
            name = backend.unique_name("variable")  # as Keras: variable, variable_1, ...
        spec = Weight(None, name, tuple(value.shape), trainable=trainable)
        spec.autocast = bool(autocast)
        spec.aggregation = _check_aggregation(aggregation)
        spec.synchronization = synchronization
        return cls._from_tensor(value, spec)

    def __init__(self, *args, **kwargs):
        pass  # everything happens in __new__ (a tensor's data is set there)

    @classmethod
    def _from_tensor(cls, value, spec):
        """A Variable holding `value` (not copied), described by `spec` (a `Weight`)."""
        requires = spec.trainable and _is_differentiable(value)
        v = torch.Tensor._make_subclass(cls, value.detach(), requires)
        v._spec = spec
        return v

    # ------------------------------------------------------------------ Keras's attributes
    @property
    def value(self):
        """The variable's current value: the tensor itself (so `v.value.grad` works)."""
        return self

    @property
    def name(self):
        """The name given at creation (`"kernel"`)."""
        return self._spec.name

    @property
    def path(self):
        """Where the variable was created: the names of the layers being built, then its own
        (`"dense/kernel"`, `"sequential/dense/kernel"`)."""
        return self._spec.path

    @property
    def keras_shape(self):
        """The shape in Keras's layout (what `numpy()` returns); `shape` is the tensor's."""
        return self._spec.keras_shape

    @property
    def trainable(self):
        """Whether training updates the variable (settable; the same as `requires_grad`)."""
        return self.requires_grad

    @trainable.setter
    def trainable(self, value):
        if _is_differentiable(self):
            self.requires_grad_(bool(value))
        elif value:
            raise ValueError(
                f"Variable {self.path!r} has dtype {self.dtype}, which cannot be trained; only "
                "floating variables can be trainable.")

    autocast = _described("autocast", "Whether mixed-precision layers cast it in `call`.")
    aggregation = _described("aggregation", "How multi-replica loops combine it (recorded).")
    synchronization = _described("synchronization", "Recorded for compatibility (`'auto'`).")
    regularizer = _described("regularizer", "The penalty added to the owning layer's losses.",
                             lambda value: _resolve("regularizers", value))
    constraint = _described("constraint", "Applied to the variable after optimizer updates.",
                            lambda value: _resolve("constraints", value))
    overwrite_with_gradient = _described(
        "overwrite_with_gradient",
        "Whether the optimizer replaces this variable by its gradient instead of updating it.",
        bool)

    # ------------------------------------------------------------------ reading and writing
    def numpy(self):
        """The value as a NumPy array in Keras's layout (detached: works on trainable weights)."""
        return to_numpy(self._spec.to_keras(self.detach()))

    def assign(self, value):
        """Set the value in place (no gradient flows through it); returns the variable."""
        t = self._as_torch_layout(value, "assign")
        with torch.no_grad():
            self.copy_(t)
        return self

    def assign_add(self, value):
        """Add `value` in place; returns the variable."""
        t = self._as_torch_layout(value, "assign_add")
        with torch.no_grad():
            self.add_(t)
        return self

    def assign_sub(self, value):
        """Subtract `value` in place; returns the variable."""
        t = self._as_torch_layout(value, "assign_sub")
        with torch.no_grad():
            self.sub_(t)
        return self

    def _as_torch_layout(self, value, what):
        """`value` as a tensor in this variable's torch layout: a torch tensor of `self.shape`
        is taken as it is, anything else is read in Keras's layout."""
        spec = self._spec
        if isinstance(value, torch.Tensor):
            t = value.detach()
            if tuple(t.shape) == tuple(self.shape) or t.ndim == 0:
                return t.to(device=self.device, dtype=self.dtype)
        else:
            t = torch.as_tensor(np.asarray(value))
        if t.ndim == 0:
            return t.to(device=self.device, dtype=self.dtype)
        if tuple(t.shape) != spec.keras_shape:
            expected = f"{spec.keras_shape}"
            if tuple(self.shape) != spec.keras_shape:
                expected += f" (or a torch tensor of the stored layout {tuple(self.shape)})"
            raise ValueError(
                f"{what}() on variable {self.path!r}: the value has shape {tuple(t.shape)}, but "
                f"the variable has shape {expected}.")
        return spec.to_torch(t.to(device=self.device, dtype=self.dtype))

    def __float__(self):  # a Keras habit: `float(v)`, without torch's warning about gradients
        return float(self.detach())

    def __int__(self):
        return int(self.detach())

    # ------------------------------------------------------------------ copies and pickles
    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        data = self.data.clone(memory_format=torch.preserve_format)
        result = type(self)._from_tensor(data, copy.deepcopy(self._spec, memo))
        result.requires_grad_(self.requires_grad)
        memo[id(self)] = result
        extra = {k: v for k, v in self.__dict__.items() if k != "_spec"}
        result.__dict__.update(copy.deepcopy(extra, memo))
        return result

    def __reduce_ex__(self, proto):
        return (_rebuild_variable, (type(self), self.data, self.requires_grad, self.__dict__))

    def __repr__(self):
        value = np.array2string(self.numpy(), threshold=10, edgeitems=2)
        return (f"<Variable path={self.path}, shape={tuple(self.shape)}, "
                f"dtype={str(self.dtype).replace('torch.', '')}, value={value}>")

    __str__ = __repr__


def _rebuild_variable(cls, data, requires_grad, state):
    v = cls._from_tensor(data, state["_spec"])
    v.requires_grad_(requires_grad)
    v.__dict__.update(state)
    return v


def _check_aggregation(aggregation):
    if aggregation not in _AGGREGATIONS:
        raise ValueError(
            f"Invalid aggregation {aggregation!r}: expected one of "
            f"{', '.join(repr(a) for a in _AGGREGATIONS)}.")
    return "none" if aggregation is None else aggregation


def _initial_value(initializer, shape, dtype, name):
    """The first value of a variable from a value or an initializer (see `Variable`)."""
    from plexus import config, initializers
    from plexus.graph.tensor import standardize_dtype, torch_dtype
    what = f"Variable {name or 'variable'!r}"
    is_value = isinstance(initializer, (torch.Tensor, np.ndarray, np.generic, list, tuple,
                                        int, float, bool))
    if is_value:
        value = torch.as_tensor(initializer.detach() if isinstance(initializer, torch.Tensor)
                                else np.asarray(initializer))
        if dtype is None and value.is_floating_point():
            dtype = config.floatx() if not isinstance(initializer, torch.Tensor) \
                else value.dtype
        if dtype is not None:
            value = value.to(torch_dtype(standardize_dtype(dtype)))
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ValueError(
                f"{what}: the initial value has shape {tuple(value.shape)}, but shape={shape} "
                "was given.")
        return value.clone() if isinstance(initializer, torch.Tensor) else value
    if initializer is None or shape is None:
        raise ValueError(
            f"{what}: pass an initial value, or an initializer together with `shape` "
            f"(received initializer={initializer!r}, shape={shape!r}).")
    init = initializers.get(initializer)
    shape = tuple(int(d) for d in shape)
    dt = torch_dtype(standardize_dtype(dtype or config.floatx()))
    value = torch.as_tensor(init(shape, dtype=dt), dtype=dt)
    if tuple(value.shape) != shape:
        raise ValueError(
            f"{what}: the initializer returned shape {tuple(value.shape)}, expected {shape}.")
    return value
