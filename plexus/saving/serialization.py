"""Objects to and from Keras 3's JSON config format, resolving names only through the registry.

A serialized object is `{"module": ..., "class_name": ..., "config": {...},
"registered_name": ...}`. `deserialize_keras_object` turns such dicts back into objects by looking
`class_name` up in `plexus.saving.registry`; it never imports a module, never evaluates text and
never unmarshals code. Lambda layers holding Python bytecode are refused (see `_lambda_function`).
"""
import contextlib
import contextvars
import inspect
import math

import numpy as np
import torch

from plexus.graph.tensor import KerasTensor
from plexus.saving import registry
from plexus.saving.errors import LoadError

# Largest array a config may spell out inline (`__numpy__`), and longest name it may use.
MAX_INLINE_ARRAY_ELEMENTS = 1 << 24
MAX_NAME_LENGTH = 512

_context = contextvars.ContextVar("plexus_load_context", default=None)


class LoadContext:
    """What a load needs everywhere: the caller's objects, `safe_mode`, the file for messages."""

    def __init__(self, custom_objects=None, safe_mode=True, source=None):
        self.custom_objects = dict(custom_objects or {})
        self.safe_mode = safe_mode
        self.source = source

    def where(self):
        return f" in {self.source}" if self.source else ""


@contextlib.contextmanager
def load_context(custom_objects=None, safe_mode=True, source=None):
    """Make `custom_objects`, `safe_mode` and the file name visible to nested `from_config`s."""
    outer = _context.get()
    if outer is not None:
        merged = {**outer.custom_objects, **(custom_objects or {})}
        ctx = LoadContext(merged, safe_mode and outer.safe_mode, source or outer.source)
    else:
        ctx = LoadContext(custom_objects, safe_mode, source)
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


def custom_object_scope(custom_objects):
    """`with custom_object_scope({"Scale": Scale}): load_model(...)`: extra objects for every
    load inside the block (as passing `custom_objects=` to each)."""
    return load_context(custom_objects, True)


CustomObjectScope = custom_object_scope


def current_context():
    return _context.get() or LoadContext()


# ---------------------------------------------------------------------------------- serializing
def _module_of(obj):
    """The `module` field Keras writes for plexus's own objects."""
    from plexus.layers.layer import Layer
    mod = getattr(type(obj) if not inspect.isclass(obj) else obj, "__module__", "")
    if not mod.startswith("plexus"):
        return mod
    if isinstance(obj, Layer):
        from plexus.models import Model, Sequential
        if isinstance(obj, Sequential):
            return "keras"
        if isinstance(obj, Model):
            return "keras.src.models.functional"
        return "keras.layers"
    for part in ("initializers", "regularizers", "constraints", "losses", "metrics",
                 "optimizers"):
        if part in mod:
            return f"keras.{part}"
    return "keras"


def keras_class_name(obj):
    """The class name written to files: `Functional` for a plexus functional `Model`."""
    from plexus.models import Model
    cls = type(obj)
    if cls is Model:
        return "Functional"
    return cls.__name__


def serialize_function(fn):
    """A function by name: a plexus activation's name, or a reference users resolve on load."""
    from plexus import activations
    name = activations.serialize(fn)
    if name in activations._ACTIVATIONS and activations._ACTIVATIONS[name] is fn:
        return name
    registered = registry._user_names.get(id(fn))
    return {"module": getattr(fn, "__module__", None), "class_name": "function",
            "config": getattr(fn, "__name__", "function"),
            "registered_name": registered or "function"}


def serialize_keras_object(obj):
    """A JSON-ready description of `obj` in Keras 3's format (layers, initializers, ...)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): serialize_keras_object(v) for k, v in obj.items()}
    if isinstance(obj, slice):
        return {"class_name": "__slice__", "config": {
            "start": obj.start, "stop": obj.stop, "step": obj.step}}
    if obj is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return {"class_name": "__numpy__",
                "config": {"value": obj.tolist(), "dtype": str(obj.dtype)}}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return serialize_function(obj)
    from plexus.layers.layer import Layer
    if isinstance(obj, Layer):
        return serialize_layer(obj)
    if hasattr(obj, "get_config"):
        registered = registry._user_names.get(id(type(obj)))
        return {"module": _module_of(obj), "class_name": type(obj).__name__,
                "config": serialize_keras_object(obj.get_config()),
                "registered_name": registered}
    raise TypeError(
        f"Cannot save an object of type {type(obj).__name__} ({obj!r}): it has no get_config(). "
        "Give the class a get_config() method, or keep such objects out of layer configs."
    )


def _function_attrs(layer, config):
    """Replace user functions named in a layer config by references a loader can resolve."""
    from plexus import activations
    for key, value in list(config.items()):
        if not isinstance(value, str) or value in activations._ACTIVATIONS:
            continue
        fn = getattr(layer, key, None)
        if inspect.isfunction(fn) and getattr(fn, "__name__", None) == value:
            config[key] = serialize_function(fn)
    return config


def serialize_layer(layer):
    """`{"module", "class_name", "config", "registered_name", "build_config"}` for a layer."""
    from plexus.layers.input_layer import InputLayer
    from plexus.models import Model
    config = serialize_keras_object(_function_attrs(layer, dict(layer.get_config())))
    config = {k: _with_module(v) for k, v in config.items()}
    if not isinstance(layer, (InputLayer, Model)) and isinstance(config.get("dtype"), str):
        config["dtype"] = {"module": "keras", "class_name": "DTypePolicy",
                           "config": {"name": config["dtype"]}, "registered_name": None}
    for key in _KERAS_REJECTS.get(type(layer).__name__, ()):
        config.pop(key, None)
    registered = registry._user_names.get(id(type(layer)))
    if registered is None and not type(layer).__module__.startswith("plexus"):
        registered = type(layer).__name__
    if isinstance(layer, Model) and type(layer) is Model:
        registered = "Functional"
    out = {"module": _module_of(layer), "class_name": keras_class_name(layer), "config": config,
           "registered_name": registered}
    build = _build_config(layer)
    if build is not None:
        out["build_config"] = build
    return out


def _with_module(value):
    """Nested layer configs written as bare `{"class_name", "config"}` (a wrapper's inner layer,
    an RNN's cell) get the `module` field Keras 3 needs to find the class."""
    if isinstance(value, list):
        return [_with_module(v) for v in value]
    if not isinstance(value, dict):
        return value
    value = {k: _with_module(v) for k, v in value.items()}
    if is_serialized_object(value) and "module" not in value and \
            value["class_name"] in registry.builtin_table("layers"):
        value = {"module": "keras.layers", **value, "registered_name": None}
    return value


# Arguments plexus writes that Keras's constructor of the same class refuses.
_KERAS_REJECTS = {"SpatialDropout1D": ("trainable",), "SpatialDropout2D": ("trainable",),
                  "SpatialDropout3D": ("trainable",)}


def _build_config(layer):
    from plexus.layers.input_layer import InputLayer
    from plexus.models import Model, Sequential
    if isinstance(layer, InputLayer):
        return None
    if isinstance(layer, Model) and not isinstance(layer, Sequential):
        if getattr(layer, "_is_graph", False):
            return {"input_shape": None}
        shape = layer.__dict__.get("_build_input_shape")
        return {"input_shape": serialize_keras_object(shape)} if shape is not None else None
    if not layer._inbound_nodes:
        return None
    node = layer._inbound_nodes[0]
    if len(node.args) != 1 or any(isinstance(v, KerasTensor) for v in node.kwargs.values()):
        return None  # several tensor arguments: the layer builds when the graph is replayed
    shapes = [list(t.shape) for t in node.input_tensors]
    if not shapes:
        return None
    return {"input_shape": shapes[0] if len(shapes) == 1 else shapes}


# -------------------------------------------------------------------------------- deserializing
def is_serialized_object(value):
    return isinstance(value, dict) and isinstance(value.get("class_name"), str) and \
        "config" in value


def check_name(name, what="layer name"):
    """Names from files are plain labels: bounded, printable, without path separators."""
    ctx = current_context()
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH or "/" in name \
            or "\\" in name or name in (".", "..") or not name.isprintable():
        raise LoadError(
            f"Invalid {what} {str(name)[:80]!r}{ctx.where()}: names must be non-empty printable "
            f"strings of at most {MAX_NAME_LENGTH} characters without '/' or '\\'. The file is "
            "corrupt or was crafted; it was not loaded."
        )
    return name


def _numpy_from_config(config):
    ctx = current_context()
    value, dtype = config.get("value"), config.get("dtype", "float32")
    try:
        dtype = np.dtype(dtype)
    except TypeError as e:
        raise LoadError(f"Invalid array dtype {dtype!r}{ctx.where()}.") from e
    if dtype.kind not in "biuf":
        raise LoadError(f"Refusing an inline array of dtype {dtype}{ctx.where()}: only numbers.")
    count = _count_leaves(value)
    if count > MAX_INLINE_ARRAY_ELEMENTS:
        raise LoadError(
            f"Refusing an inline array of {count} elements{ctx.where()} (the limit is "
            f"{MAX_INLINE_ARRAY_ELEMENTS}); weights belong in the weights file."
        )
    return np.asarray(value, dtype=dtype)


def _count_leaves(value):
    if isinstance(value, list):
        return sum(_count_leaves(v) for v in value)
    return 1


def _lambda_function(config):
    ctx = current_context()
    if ctx.safe_mode:
        raise LoadError(
            f"The file{ctx.where()} contains a Lambda layer whose function is stored as Python "
            "bytecode. Loading it would run code from the file, which safe_mode=True refuses "
            "(plexus does not run such code even with safe_mode=False). If you trust the file, "
            "pass the function itself in custom_objects under the Lambda layer's name, e.g. "
            "custom_objects={'lambda': my_function}."
        )
    raise LoadError(
        f"The file{ctx.where()} contains a Lambda layer whose function is stored as Python "
        "bytecode. plexus never unmarshals code from files, even with safe_mode=False: pass the "
        "function in custom_objects under the Lambda layer's name, e.g. "
        "custom_objects={'lambda': my_function}."
    )


def _function(value):
    ctx = current_context()
    name = value.get("config")
    registered = value.get("registered_name")
    if not isinstance(name, str):
        raise LoadError(f"Invalid function reference {str(value)[:120]}{ctx.where()}.")
    fn = registry.lookup(name, registered if registered != "function" else None,
                         None, ctx.custom_objects, category="activations")
    if fn is None:
        fn = registry.lookup(name, registered if registered != "function" else None,
                             value.get("module"), ctx.custom_objects)
    if fn is None or not callable(fn) or inspect.isclass(fn):
        raise LoadError(
            f"Unknown function {name!r}{ctx.where()}. plexus resolves functions only among its "
            f"own activations and the objects you provide: pass custom_objects={{{name!r}: "
            "your_function}} or register it with @plexus.saving.register_keras_serializable()."
        )
    return fn


def _dtype_policy(name):
    """Mixed-precision policies keep float32 weights; plexus computes them in float32."""
    if isinstance(name, str) and name.startswith("mixed_"):
        import warnings
        warnings.warn(f"dtype policy {name!r}{current_context().where()} is loaded as float32 "
                      "(weights are float32 under it too).", stacklevel=2)
        return "float32"
    return name


def deserialize_keras_object(value, custom_objects=None, safe_mode=None, category=None):
    """Turn a config value back into objects: serialized dicts become instances, lists stay
    lists, anything else is returned as is (so already-built objects pass through)."""
    if custom_objects is not None or safe_mode is not None:
        safe = True if safe_mode is None else safe_mode
        with load_context(custom_objects, safe):
            return deserialize_keras_object(value, category=category)
    if isinstance(value, list):
        return [deserialize_keras_object(v) for v in value]
    if not isinstance(value, dict):
        return value
    if not is_serialized_object(value):
        return {k: deserialize_keras_object(v) for k, v in value.items()}
    class_name = value["class_name"]
    config = value["config"]
    if class_name == "__tuple__":
        return tuple(deserialize_keras_object(config.get("value", [])))
    if class_name == "__slice__" and isinstance(config, dict):
        parts = [deserialize_keras_object(config.get(k)) for k in ("start", "stop", "step")]
        if not all(p is None or isinstance(p, int) for p in parts):
            raise LoadError(f"Invalid slice {config}{current_context().where()}.")
        return slice(*parts)
    if class_name == "__ellipsis__":
        return Ellipsis
    if class_name == "__numpy__":
        return _numpy_from_config(config)
    if class_name == "__lambda__":
        return _lambda_function(config)
    if class_name == "function":
        return _function(value)
    if class_name in ("DTypePolicy", "FloatDTypePolicy", "Policy") and isinstance(config, dict):
        return _dtype_policy(config.get("name", "float32"))
    if class_name.startswith("__"):
        raise LoadError(f"Unsupported serialized value {class_name!r}{current_context().where()}.")
    return _instantiate(value, category)


def _instantiate(value, category=None):
    ctx = current_context()
    class_name = value["class_name"]
    cls = registry.lookup(class_name, value.get("registered_name"), value.get("module"),
                          ctx.custom_objects, category)
    if cls is None:
        label = value.get("name") or (value.get("config") or {}).get("name") \
            if isinstance(value.get("config"), dict) else None
        raise LoadError(
            f"Unknown class {class_name!r}{' (layer ' + repr(label) + ')' if label else ''}"
            f"{ctx.where()}. plexus only creates its own classes and those you provide: pass "
            f"custom_objects={{{class_name!r}: {class_name}}} to the loader, or decorate the "
            "class with @plexus.saving.register_keras_serializable()."
        )
    config = value["config"]
    if inspect.isfunction(cls):
        return cls
    if not isinstance(config, dict):
        raise LoadError(f"The config of {class_name!r}{ctx.where()} must be a JSON object.")
    from plexus.layers.layer import Layer
    if inspect.isclass(cls) and issubclass(cls, Layer):
        return deserialize_layer(cls, value)
    config = fit_config(cls, deserialize_keras_object(config), class_name)
    try:
        return cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    except (TypeError, ValueError) as e:
        raise LoadError(f"Could not create {class_name}{ctx.where()} from its config: {e}") from e


def deserialize_layer(cls, value):
    """Create a layer (or a model) of class `cls` from its serialized dict."""
    ctx = current_context()
    from plexus.models import Model
    config = dict(value["config"])
    name = config.get("name")
    if name is not None:
        check_name(name)
    if issubclass(cls, Model) and _has_graph_config(config):
        return cls.from_config(config, custom_objects=ctx.custom_objects)
    if issubclass(cls, Model):
        model = cls.from_config(config, custom_objects=ctx.custom_objects)
        _build_subclassed(model, value.get("build_config"), name)
        return model
    _supply_lambda_code(config, name)
    config = _resolve_activation_names(deserialize_keras_object(config))
    config = fit_config(cls, config, value["class_name"], name)
    try:
        layer = cls.from_config(config)
    except LoadError:
        raise
    except (TypeError, ValueError) as e:
        raise LoadError(
            f"Could not create layer {name!r} ({value['class_name']}){ctx.where()} from its "
            f"config: {e}"
        ) from e
    return layer


MAX_BUILD_INPUT_ELEMENTS = 1 << 24


def _build_subclassed(model, build_config, name):
    """Create a subclassed model's weights by running it once on zeros of its saved input
    shape (unknown sizes as 1), the shape checked first so a file cannot ask for a huge input."""
    import torch
    from plexus.graph import tree
    shape = (build_config or {}).get("input_shape") if isinstance(build_config, dict) else None
    if model.built or shape is None:
        return
    ctx = current_context()
    shapes = [shape] if tree.is_shape(shape) else shape
    if not isinstance(shapes, list) or not shapes:
        raise LoadError(f"Invalid build_config of model {name!r}{ctx.where()}.")
    dummies = []
    for s in shapes:
        s = tuple(1 if d is None else d for d in check_shape(s, f"model {name!r}"))
        if element_count(s) > MAX_BUILD_INPUT_ELEMENTS:
            raise LoadError(f"Refusing to build model {name!r}{ctx.where()} on an input of shape "
                            f"{s}: more than {MAX_BUILD_INPUT_ELEMENTS} elements.")
        dummies.append(torch.zeros(s))
    with torch.no_grad():
        model(dummies[0] if len(dummies) == 1 else dummies)


def _is_code(value):
    """Python code in a config: Keras 3's `__lambda__` dict, or Keras 2's
    `[base64 bytecode, defaults, closure]` list."""
    if isinstance(value, dict):
        return value.get("class_name") == "__lambda__"
    return isinstance(value, (list, tuple)) and bool(value) and isinstance(value[0], str)


def _supply_lambda_code(config, name):
    """A Lambda's bytecode is never loaded; the caller may supply the function by layer name."""
    if "function" not in config:
        return
    legacy = config.get("function_type") == "lambda" and _is_code(config.get("function"))
    fn = current_context().custom_objects.get(name) if name else None
    if not callable(fn):
        if legacy:
            _lambda_function(config)  # raises, with the safe_mode explanation
        return
    for key in ("function_type", "output_shape_type", "module"):
        config.pop(key, None)
    if _is_code(config.get("function")):
        config["function"] = fn
        if _is_code(config.get("output_shape")):
            config["output_shape"] = None
        if _is_code(config.get("mask")):
            config["mask"] = None


def _has_graph_config(config):
    return "layers" in config


def _resolve_activation_names(config):
    """Activation names plexus does not know may be user functions passed in custom_objects."""
    from plexus import activations
    ctx = current_context()
    for key, value in config.items():
        if isinstance(value, str) and "activation" in key and value not in activations._ACTIVATIONS:
            fn = registry.get_registered_object(value, ctx.custom_objects)
            if fn is not None:
                config[key] = fn
    return config


# Keras arguments plexus does not take, dropped when they hold their harmless default.
_IGNORABLE = {"ragged": False, "sparse": False, "quantization_config": None, "lora_rank": None,
              "lora_alpha": None, "input_axes": None, "output_axes": None, "autocast": True,
              "synchronized": False, "renorm": False, "renorm_clipping": None,
              "renorm_momentum": 0.99, "optional": False, "use_cudnn": "auto",
              "seed": None, "activity_regularizer": None, "zero_output_for_mask": False,
              "sliding_window": None, "use_gate": False}


def _accepted_args(cls):
    """Parameter names of `cls.__init__`, following `**kwargs` up the class hierarchy."""
    from plexus.layers.layer import Layer
    names = set()
    for klass in inspect.getmro(cls):
        if klass is object or klass.__module__.split(".")[0] == "torch":
            return names  # torch.nn.Module and object take nothing from a config
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return None
        names.update(p for p, v in params.items()
                     if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL) and p != "self")
        if klass is Layer or not any(v.kind is v.VAR_KEYWORD for v in params.values()):
            return names
    return None  # reached `object` through **kwargs: anything goes


def _plain_from_config(cls):
    """Whether `cls.from_config(config)` is just `cls(**config)` (plexus's base classes)."""
    fn = getattr(cls, "from_config", None)
    if fn is None:
        return True
    owner = getattr(fn, "__qualname__", "").split(".")[0]
    module = getattr(fn, "__module__", "")
    return module.startswith("plexus") and owner in (
        "Layer", "InputLayer", "Initializer", "Regularizer", "Constraint")


def fit_config(cls, config, class_name, name=None):
    """Drop Keras-only arguments that plexus's `cls` does not take when they hold their
    harmless default (`quantization_config=None`, `ragged=False`, ...). Any other argument is
    passed on, so a constructor that does not support it refuses it with a TypeError."""
    if not _plain_from_config(cls):
        return config  # the class reads its config itself
    accepted = _accepted_args(cls)
    if accepted is None:
        return config
    config = dict(config)
    for key in list(config):
        if key not in accepted and key in _IGNORABLE and _IGNORABLE[key] == config[key]:
            del config[key]
    config.pop("build_config", None)
    return config


def check_shape(shape, what):
    """Refuse shapes that are not lists of non-negative ints or None."""
    ctx = current_context()
    if not isinstance(shape, (list, tuple)) or len(shape) > 32:
        raise LoadError(f"Invalid shape {str(shape)[:80]} for {what}{ctx.where()}.")
    for d in shape:
        if d is not None and (not isinstance(d, int) or isinstance(d, bool) or d < 0):
            raise LoadError(f"Invalid shape {list(shape)} for {what}{ctx.where()}.")
    return tuple(shape)


def element_count(shape):
    return math.prod(d for d in shape if d is not None)
