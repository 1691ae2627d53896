"""Config values back into objects, resolving class names only through the registry.

`deserialize_keras_object` turns `{"module", "class_name", "config", "registered_name"}` dicts
into instances by looking `class_name` up in `plexus.saving.registry`; it never imports a
module, never evaluates text and never unmarshals code. Lambda layers holding Python bytecode
are refused (see `_lambda_function`).
"""
import inspect
import weakref

import numpy as np

from plexus.saving import custom_state, limits, registry
from plexus.saving.context import (
    check_name, check_shape, current_context, element_count, load_context,
)
from plexus.saving.errors import LoadError

# Largest array a config may spell out inline (`__numpy__`).
MAX_INLINE_ARRAY_ELEMENTS = 1 << 24

def is_serialized_object(value):
    return isinstance(value, dict) and isinstance(value.get("class_name"), str) and \
        "config" in value


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
    limits.charge(count * dtype.itemsize, "an inline array")
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
    """A policy name from a file, checked here so that a bad one names where it was found."""
    from plexus.mixed_precision.policy import _parse
    try:
        _parse(name)
    except (TypeError, ValueError) as e:
        raise LoadError(f"{e}{current_context().where()}") from e
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
    if class_name == "__tensor__":  # Keras writes tensor constants (`ops.ones(3)`) this way
        import torch
        return torch.from_numpy(_numpy_from_config(config))
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
        config = value.get("config") if isinstance(value.get("config"), dict) else {}
        label = value.get("name") or config.get("name")
        what = f" (layer {str(label)[:80]!r})" if label and category == "layers" else ""
        raise LoadError(
            f"Unknown class {class_name!r}{what}"
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
    config = dict(value["config"])
    name = config.get("name")
    if name is not None:
        check_name(name)
    if registry.is_model_class(cls) and _has_graph_config(config):
        return cls.from_config(config, custom_objects=ctx.custom_objects)
    if registry.is_model_class(cls):
        model = cls.from_config(config, custom_objects=ctx.custom_objects)
        _build_subclassed(model, value.get("build_config"), name)
        return model
    if getattr(cls, "_is_op", False):  # a recorded op: its arguments are plain data only
        config = _plain_op_config(config, value["class_name"])
        try:
            return cls.from_config(config)
        except (TypeError, ValueError) as e:
            raise LoadError(f"Could not create op {name!r} ({value['class_name']})"
                            f"{ctx.where()} from its config: {e}") from e
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
    build_config = value.get("build_config")
    if build_config is not None and custom_state.overrides(layer, "build_from_config"):
        custom_state.build_from_saved_config(
            layer, deserialize_keras_object(build_config), f"layer {name!r}{ctx.where()}")
    return layer


def _plain_op_config(value, class_name):
    """An op's config with tuples revived; any other serialized object is refused."""
    if isinstance(value, list):
        return [_plain_op_config(v, class_name) for v in value]
    if isinstance(value, dict):
        if value.get("class_name") == "__tuple__" and isinstance(value.get("config"), dict):
            return tuple(_plain_op_config(value["config"].get("value", []), class_name))
        if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
            return None  # a layer-style policy where an op takes no dtype
        if value.get("class_name") in ("__numpy__", "__tensor__"):  # numbers, size-limited
            return deserialize_keras_object(value)
        if is_serialized_object(value):
            raise LoadError(f"Op {class_name}: arguments must be plain data (numbers, strings, "
                            f"lists, arrays); the config holds a "
                            f"{str(value.get('class_name'))[:40]!r}"
                            f"{current_context().where()}.")
        return {k: _plain_op_config(v, class_name) for k, v in value.items()}
    return value


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


# Keras 2 writes each of a Lambda's functions as three entries: the value, its kind
# ("lambda": bytecode, "function": a name, "raw": a plain value) and the module it came from.
_LAMBDA_FUNCTIONS = ("function", "output_shape", "mask")


def _named_function(config, key):
    """A Keras 2 function saved by name, looked up in `custom_objects` and registered objects."""
    value = config.get(key)
    if config.get(f"{key}_type") != "function" or not isinstance(value, str):
        return None
    return registry.get_registered_object(value, current_context().custom_objects)


def _supply_lambda_code(config, name):
    """A Lambda's bytecode is never loaded; the caller may supply its function (or one saved
    by reference, such as an anonymous `<lambda>`) under the Lambda layer's name. Keras 2's
    bookkeeping entries (`function_type`, `output_shape_module`, ...) are resolved and dropped."""
    if "function" not in config:
        return
    function = config["function"]
    legacy = config.get("function_type") in ("lambda", "function")
    fn = current_context().custom_objects.get(name) if name else None
    if not callable(fn):
        fn = _named_function(config, "function")
    if not callable(fn):
        if legacy and _is_code(function):
            _lambda_function(config)  # raises, with the safe_mode explanation
        if legacy:
            raise LoadError(
                f"Lambda layer {name!r}{current_context().where()} calls the function "
                f"{str(function)[:80]!r}, which plexus does not know: pass it as "
                f"custom_objects={{{str(function)[:80]!r}: your_function}}."
            )
        return
    is_reference = isinstance(function, dict) and function.get("class_name") == "function"
    if not (_is_code(function) or is_reference or legacy):
        return
    config["function"] = fn
    for key in _LAMBDA_FUNCTIONS[1:]:
        named = _named_function(config, key)
        if named is not None:
            config[key] = named
        elif _is_code(config.get(key)) or config.get(f"{key}_type") == "function":
            config[key] = None  # bytecode or an unknown name: the output shape is traced
        elif config.get(f"{key}_type") == "raw" and isinstance(config.get(key), list):
            config[key] = tuple(config[key])
    for key in _LAMBDA_FUNCTIONS:
        config.pop(f"{key}_type", None)
        config.pop(f"{key}_module", None)
    config.pop("module", None)


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


_ACCEPTED_ARGS = weakref.WeakKeyDictionary()


def _accepted_args(cls):
    """Parameter names of `cls.__init__`, following `**kwargs` up the class hierarchy (cached
    per class: a config may hold thousands of layers of a few classes)."""
    if cls not in _ACCEPTED_ARGS:
        _ACCEPTED_ARGS[cls] = _find_accepted_args(cls)
    return _ACCEPTED_ARGS[cls]


def _find_accepted_args(cls):
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
