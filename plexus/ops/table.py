"""The one table of ops: what eager calls run, what symbolic calls record, what files name.

Every `plexus.ops` function is registered here with `@op(module, class_name, call=...)`:

- `module` and `class_name` are where Keras keeps the op (`"numpy"`, `"Mean"`): a saved model
  names it as `{"module": "keras.src.ops.numpy", "class_name": "Mean"}`;
- `call` names the arguments that are tensors (Keras's `Operation.call` arguments, recorded as
  the inputs of a graph node); the other arguments are the op's config, plain data.

Called on data, the function runs its torch implementation directly. Called with a symbolic
tensor (`plexus.KerasTensor`) anywhere among its tensor arguments, it records an `OpLayer`
node whose output shapes and dtypes come from running the implementation on shape-only (meta)
tensors. Loading a file can only create the classes of this table, with plain-data configs.
"""
import functools
import inspect
import itertools

import numpy as np
import torch

from plexus import backend
from plexus.graph import tree
from plexus.graph.node import Node
from plexus.graph.tensor import KerasTensor
from plexus.layers.layer import Layer
from plexus.ops.dtypes import standardize_dtype

OPS = {}  # Keras class name -> OpDef
BY_NAME = {}  # public function name -> OpDef
class _OpClasses(dict):
    """Keras class name -> `OpLayer` subclass (what files can name), each class made on first
    use: `import plexus` does not pay for some 350 classes a program may never record."""

    def __init__(self):
        super().__init__()
        self.aliases = {}  # a second Keras name -> the table's name (`Abs` -> `Absolute`)

    def __missing__(self, name):
        target = self.aliases.get(name, name)
        if target not in OPS:
            raise KeyError(name)
        cls = dict.get(self, target) or _op_class(OPS[target])
        self[target] = self[name] = cls
        return cls

    def __contains__(self, name):
        return name in OPS or name in self.aliases

    def all(self):
        """Every class, made now: name -> class."""
        return {name: self[name] for name in list(OPS) + list(self.aliases)}


OP_CLASSES = _OpClasses()
# Sizes traced for unknown (None) dimensions: two runs, and output sizes that differ between
# them are unknown. Both divide by 2..10 and 12, so splitting an unknown axis into equal
# sections traces as it runs; shape-only tensors make the sizes free.
_STAND_INS = (360, 720)


class OpDef:
    """One op: its Keras location, its tensor arguments and its torch implementation."""

    __slots__ = ("name", "module", "class_name", "impl", "call", "signature", "config_names",
                 "varargs", "varkw", "varkw_call", "before_varargs", "spec", "leading",
                 "public")

    def __init__(self, name, module, class_name, impl, call, spec, varkw_call=False):
        self.name, self.module, self.class_name = name, module, class_name
        self.impl, self.spec = impl, spec
        self.signature = inspect.signature(impl)
        params = self.signature.parameters
        self.call = tuple(call)
        for c in self.call:
            if c not in params:
                raise TypeError(f"op {name}: tensor argument {c!r} is not a parameter")
        self.varargs = next((p for p in self.call
                             if params[p].kind is inspect.Parameter.VAR_POSITIONAL), None)
        self.varkw = next((p for p, v in params.items()
                           if v.kind is inspect.Parameter.VAR_KEYWORD), None)
        self.varkw_call = varkw_call  # `**kwargs` are call arguments (node kwargs), not config
        # config arguments that come before `*varargs` (einsum's `subscripts`): positional
        names = list(params)
        cut = names.index(self.varargs) if self.varargs else 0
        self.before_varargs = tuple(p for p in names[:cut] if p not in self.call)
        self.config_names = tuple(p for p, v in params.items() if p not in self.call
                                  and v.kind is not inspect.Parameter.VAR_KEYWORD)
        # Whether the tensor arguments are the leading positional parameters (then a graph
        # node calls `impl(*tensors, **config)` without building a dict per step).
        self.leading = list(params)[:len(self.call)] == list(self.call)


def op(module, class_name, call=("x",), spec=None, name=None, elementwise=False,
       varkw_call=False):
    """Register a torch implementation as the op `class_name` of Keras's `ops.<module>`.

    Returns the public function: eager on data, recording a graph node on symbolic tensors.
    `spec(*args, **kwargs)`, where given, returns the output `KerasTensor`s of a symbolic call
    (for ops whose output shape depends on values, such as `nonzero`). `elementwise` ops
    broadcast their tensor arguments: their output shape is the broadcast shape, and their
    dtype comes from running them on one-element tensors (cheaper than a shape-only trace,
    which runs some torch kernels through Python decompositions). With `varkw_call`, the
    function's `**kwargs` are recorded as the node's keyword arguments (Keras's `rearrange`
    axis lengths) rather than as its config.
    """
    if isinstance(call, str):
        call = tuple(c.strip() for c in call.split(",") if c.strip())

    def register(impl):
        if elementwise:
            nonlocal spec
            spec = _elementwise_spec(impl, class_name)
        opdef = OpDef(name or impl.__name__.rstrip("_"), module, class_name, impl, call, spec,
                      varkw_call)
        BY_NAME_OF_CLASS.setdefault(class_name, opdef.name)
        if class_name not in OPS:
            OPS[class_name] = opdef
        BY_NAME[opdef.name] = opdef

        @functools.wraps(impl)
        def public(*args, **kwargs):
            if _has_symbolic(args) or (kwargs and _has_symbolic(kwargs.values())):
                return symbolic_call(opdef, args, kwargs)
            return impl(*args, **kwargs)

        public.__wrapped__ = impl
        public.__name__ = public.__qualname__ = opdef.name
        opdef.public = public
        return public

    return register


def alias(name, target, class_name=None):
    """Register `name` as another public name of the op named `target` (`abs`, `absolute`);
    `class_name` is a second Keras class name files may use for it (`Abs`)."""
    BY_NAME[name] = BY_NAME[target]
    if class_name is not None:
        OP_CLASSES.aliases[class_name] = BY_NAME[target].class_name


def _has_symbolic(values):
    """Whether a `KerasTensor` is among `values` or inside a list, tuple or dict of them."""
    for v in values:
        if isinstance(v, KerasTensor):
            return True
        kind = type(v)
        if (kind is list or kind is tuple) and _has_symbolic(v):
            return True
        if kind is dict and _has_symbolic(v.values()):
            return True
    return False


def _broadcast(shapes, what, args, names):
    out = []
    for dims in itertools.zip_longest(*[reversed(s) for s in shapes], fillvalue=1):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(f"{what}: cannot broadcast {_describe(args, names)} together: "
                             f"sizes {sorted(known)} meet on one axis.")
        if known:
            out.append(known.pop())
        else:
            out.append(None if any(d is None for d in dims) else 1)
    return tuple(reversed(out))


def _elementwise_spec(impl, class_name):
    def spec(*args, **kwargs):
        what = f"ops.{BY_NAME_OF_CLASS[class_name]}"
        names = OPS[class_name].call
        shapes = [a.shape for a in args if isinstance(a, KerasTensor)]
        shape = _broadcast(shapes, what, args, names)
        tiny = [torch.ones((1,) * len(a.shape), dtype=_torch_dtype(a.dtype))
                if isinstance(a, KerasTensor) else a for a in args]
        try:
            with torch.no_grad():
                probe = impl(*tiny, **kwargs)
        except Exception as e:  # noqa: any failure here is about the inputs' dtypes
            raise _shape_error(what, args, names, e) from None
        return KerasTensor(shape, standardize_dtype(probe.dtype))
    return spec


BY_NAME_OF_CLASS = {}


# ------------------------------------------------------------------------------ symbolic
def symbolic_call(opdef, args, kwargs):
    """Record `opdef` called on symbolic tensors as a node of the graph; return its outputs."""
    try:
        bound = opdef.signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"ops.{opdef.name}: {e}") from None
    bound.apply_defaults()
    values = bound.arguments
    config = {k: values[k] for k in opdef.config_names if k in values}
    node_kwargs = {}
    if opdef.varkw and opdef.varkw_call:
        node_kwargs = dict(values.get(opdef.varkw, {}))
    elif opdef.varkw:
        config.update(values.get(opdef.varkw, {}))
    for key, value in config.items():
        if _has_symbolic([value]):
            raise TypeError(f"ops.{opdef.name}: argument {key!r} is a setting of the op and "
                            "cannot be a symbolic tensor; pass a fixed value (only "
                            f"{', '.join(opdef.call)} may come from the graph).")
    layer = OP_CLASSES[opdef.class_name](name=None, **config)
    if opdef.varargs:
        call_args = [values[c] for c in opdef.call if c != opdef.varargs]
        call_args += list(values[opdef.varargs])
    else:
        call_args = [values[c] for c in opdef.call]
    return layer.record(call_args, node_kwargs)


def _fake(t, size, device):
    shape = tuple(size if d is None else d for d in t.shape)
    return torch.empty(shape, dtype=_torch_dtype(t.dtype), device=device)


def _torch_dtype(name):
    from plexus.ops.dtypes import torch_dtype
    return torch_dtype(name)


def _describe(args, names):
    parts = []
    for i, a in enumerate(args):
        name = names[i] if i < len(names) else f"argument {i}"
        if isinstance(a, KerasTensor):
            parts.append(f"{name} of shape {a.shape} ({a.dtype})")
        elif isinstance(a, (list, tuple)) and any(isinstance(t, KerasTensor) for t in tree.flatten(a)):
            shapes = [t.shape if isinstance(t, KerasTensor) else type(t).__name__
                      for t in tree.flatten(a)]
            parts.append(f"{name}, a sequence of shapes {shapes}")
        else:
            parts.append(f"{name} = {str(a)[:40]}")
    return ", ".join(parts)


def traced_spec(fn, args, kwargs, what, names=()):
    """Output `KerasTensor`s of `fn(*args, **kwargs)`, traced on shape-only tensors twice with
    different stand-ins for unknown sizes; a size that changes between runs is unknown."""
    runs = [_trace_once(fn, args, kwargs, size, what, names) for size in _STAND_INS]
    specs = []
    flat_a, flat_b = tree.flatten(runs[0]), tree.flatten(runs[1])
    if len(flat_a) != len(flat_b):
        raise ValueError(f"{what}: the number of outputs depends on a size that is unknown "
                         f"for {_describe(args, names)}; give that axis a fixed size.")
    for a, b in zip(flat_a, flat_b):
        if not isinstance(a, torch.Tensor):
            raise ValueError(f"{what}: returned a {type(a).__name__}, not a tensor, so it "
                             "cannot be recorded in a graph.")
        shape = tuple(x if x == y else None for x, y in zip(a.shape, b.shape))
        specs.append(KerasTensor(shape, standardize_dtype(a.dtype)))
    return tree.pack_like(_as_structure(runs[0]), specs)


def _trace_once(fn, args, kwargs, size, what, names):
    fake = lambda t: _fake(t, size, "meta") if isinstance(t, KerasTensor) else t  # noqa: E731
    try:
        with torch.no_grad():
            return fn(*tree.map_structure(fake, list(args)), **tree.map_structure(fake, kwargs))
    except (ValueError, TypeError, NotImplementedError) as e:
        if "meta" not in str(e).lower():
            raise _shape_error(what, args, names, e) from None
    except Exception as e:  # noqa: torch kernels raise RuntimeError and IndexError
        if "meta" not in str(e).lower() and "data-dependent" not in str(e).lower():
            raise _shape_error(what, args, names, e) from None
    return _fake_mode_run(fn, args, kwargs, size, what, names)


def _as_structure(out):
    return list(out) if isinstance(out, tuple) and type(out) is not tuple else out


def _fake_mode_run(fn, args, kwargs, size, what, names):
    from torch._subclasses.fake_tensor import FakeTensorMode
    try:
        with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
            fake = lambda t: _fake(t, size, "cpu") if isinstance(t, KerasTensor) else t  # noqa
            return fn(*tree.map_structure(fake, list(args)), **tree.map_structure(fake, kwargs))
    except Exception as e:  # noqa: any failure of the implementation is the user's input
        raise _shape_error(what, args, names, e) from None


def _shape_error(what, args, names, e):
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    if any(str(s) in detail for s in _STAND_INS):  # torch's words, about traced stand-in sizes
        detail = "the shapes are incompatible"
    return ValueError(f"{what}: cannot be applied to {_describe(args, names)}: {detail}")


# ------------------------------------------------------------------------------ graph nodes
class OpLayer(Layer):
    """One recorded op call in a functional graph (Keras's `Operation`): no weights, no state.

    The subclass for each op is named after Keras's class (`Mean`, `Add`, ...), so a saved model
    names the op as Keras does. Running it calls the torch implementation directly.
    """

    opdef = None
    _is_op = True
    _autocast = False
    _autocast_weights = False

    def __init__(self, name=None, **config):
        super().__init__(name=name or backend.unique_name(backend.to_snake_case(
            self.opdef.class_name)))
        unknown = [k for k in config if k not in self.opdef.config_names]
        if unknown and not self.opdef.varkw:
            raise TypeError(
                f"Op {self.opdef.class_name} ({self.name!r}) does not take "
                f"{', '.join(map(str, unknown))}; it takes {', '.join(self.opdef.config_names)}.")
        if config.get("dtype") is not None and "dtype" in self.opdef.config_names:
            config["dtype"] = standardize_dtype(config["dtype"])
        self.op_config = config
        self.built = True
        self._bind()

    def _bind(self):
        """Bind the config to the implementation once; a graph step then calls `_call_impl`
        (an instance attribute: nn.Module's call machinery is skipped, since an op has no
        hooks, weights or losses)."""
        impl, leading, config = self.opdef.impl, self.opdef.leading, self.op_config
        call_names = self.opdef.call
        if self.opdef.varargs:
            front = [config[k] for k in self.opdef.before_varargs]
            rest = {k: v for k, v in config.items() if k not in self.opdef.before_varargs}
            run = functools.partial(impl, *front, **rest)
        elif leading:
            run = functools.partial(impl, **config) if config else impl
        else:
            def run(*args, **kwargs):
                return impl(**dict(zip(call_names, args)), **kwargs, **config)
        if self.opdef.varkw_call:  # the run loop offers `training`/`mask` to such a call
            inner = run

            def run(*args, training=None, mask=None, **kwargs):
                return inner(*args, **kwargs)
        self.__dict__["_run"] = self.__dict__["_call_impl"] = run

    def __getstate__(self):  # pickling and deepcopy: the bound function is rebuilt
        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(
            self.__dict__)
        state = dict(state)
        state.pop("_run", None)
        state.pop("_call_impl", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._bind()

    @classmethod
    def from_config(cls, config):
        """Re-create from a saved config: only the op's own arguments, as plain data."""
        config = {k: v for k, v in config.items() if k != "trainable"}
        if isinstance(config.get("dtype"), dict) or (
                "dtype" in config and "dtype" not in cls.opdef.config_names):
            config.pop("dtype")  # a layer-style dtype policy, not the op's own argument
        for key, value in config.items():
            for leaf in tree.flatten(value):
                if not isinstance(leaf, (str, int, float, bool, type(None), torch.Tensor,
                                         np.ndarray)):
                    raise TypeError(f"Op {cls.opdef.class_name}: argument {key!r} must be plain "
                                    f"data (numbers, strings, lists); got {type(leaf).__name__}.")
        return cls(**config)

    def get_config(self):
        return {"name": self.name, **self.op_config}

    def call(self, *args, **kwargs):
        return self._run(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        if _has_symbolic(args) or _has_symbolic(kwargs.values()):
            return self.record(list(args), kwargs)
        return self._run(*args, **kwargs)

    def record(self, args, kwargs=None):
        """Record a call on symbolic `args` as a node; return the output symbolic tensors."""
        kwargs = kwargs or {}
        outputs = self.compute_output_spec(*args, **kwargs)
        outputs = tree.map_structure(lambda s: KerasTensor(s.shape, s.dtype), outputs)
        Node(self, tuple(args), kwargs, outputs)
        return outputs

    def compute_output_spec(self, *args, **kwargs):
        if self.opdef.spec is not None:
            return self.opdef.spec(*args, **dict(self.op_config, **kwargs))
        return traced_spec(self._run, args, kwargs, f"ops.{self.opdef.name}", self._arg_names())

    def _arg_names(self):
        names = [c for c in self.opdef.call if c != self.opdef.varargs]
        return names if not self.opdef.varargs else names + [self.opdef.varargs] * 8


def _op_class(opdef):
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(c, inspect.Parameter.VAR_POSITIONAL if c == opdef.varargs
                                 else inspect.Parameter.POSITIONAL_OR_KEYWORD) for c in opdef.call]
    if opdef.varkw_call:
        params.append(inspect.Parameter(opdef.varkw, inspect.Parameter.VAR_KEYWORD))

    def call(self, *args, **kwargs):
        return self._run(*args, **kwargs)

    call.__signature__ = inspect.Signature(params)
    return type(opdef.class_name, (OpLayer,), {
        "opdef": opdef, "call": call, "__module__": "plexus.ops.table",
        "__doc__": f"The `{opdef.name}` op recorded in a graph (Keras's `{opdef.class_name}`)."})


def __getattr__(name):
    """The op classes by Keras name (`plexus.ops.table.Mean`), so pickle finds them."""
    if name in OP_CLASSES:
        return OP_CLASSES[name]
    raise AttributeError(f"module 'plexus.ops.table' has no attribute {name!r}")
