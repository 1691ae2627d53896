"""Objects to Keras 3's JSON config format: `{"module", "class_name", "config",
"registered_name"}` for layers, initializers, functions, arrays, slices.

Loading lives in `deserialization.py`, the load context in `context.py`; their public names are
re-exported here.
"""
import inspect

import numpy as np
import torch

from plexus.graph.tensor import KerasTensor
from plexus.saving import custom_state, registry
from plexus.saving.context import (  # noqa: F401  (re-exported)
    MAX_NAME_LENGTH, CustomObjectScope, LoadContext, check_custom_objects, check_name,
    check_shape, current_context, custom_object_scope, element_count, load_context,
)
from plexus.saving.deserialization import (  # noqa: F401  (re-exported)
    deserialize_keras_object, deserialize_layer, fit_config, is_serialized_object,
)

_FEATURE_SPACE_MODULE = "keras.src.layers.preprocessing.feature_space"


def _module_of(obj):
    """The `module` field Keras writes for plexus's own objects."""
    from plexus.layers.layer import Layer
    mod = getattr(saved_class(obj) if not inspect.isclass(obj) else obj, "__module__", "")
    if not mod.startswith("plexus"):
        return None if mod == "__main__" else mod  # as Keras: no module for a script's classes
    if mod == "plexus.distillation":  # (the Distiller and its losses, as Keras names them)
        return "keras.distillation"
    if mod == "plexus.utils.feature_space":  # FeatureSpace, and the layers inside it
        return "keras.utils" if saved_class(obj).__name__ == "FeatureSpace" else \
            _FEATURE_SPACE_MODULE
    if isinstance(obj, Layer):
        if mod.startswith("plexus.applications."):  # a layer private to an application
            return "keras.src.applications." + mod.rsplit(".", 1)[1]
        if registry.is_model(obj, "Sequential"):
            return "keras"
        if registry.is_model(obj):
            return "keras.src.models.functional"
        return "keras.layers"
    for part in ("initializers", "regularizers", "constraints", "losses", "metrics",
                 "optimizers", "quantizers"):
        if part in mod:
            return f"keras.{part}"
    return "keras"


def saved_class(obj):
    """The class files name `obj` by: its own, also once FSDP has given a sharded layer a
    subclass of its own (`plexus.distribution.ModelParallel`)."""
    return getattr(obj, "__dict__", {}).get("_class_before_sharding") or type(obj)


def keras_class_name(obj):
    """The class name written to files (`Functional` for a functional model)."""
    return saved_class(obj).__name__


def serialize_function(fn):
    """A function by name: a plexus activation's name, or a reference users resolve on load."""
    from plexus import activations
    name = activations.serialize(fn)
    if name in activations._ACTIVATIONS and activations._ACTIVATIONS[name] is fn:
        return name
    registered = registry._user_names.get(id(fn))
    if getattr(fn, "__name__", "") == "<lambda>":
        import warnings
        warnings.warn("An anonymous function (lambda) is saved by reference only, never as "
                      "code; to load the file, pass the function in custom_objects under the "
                      "name of the layer that uses it.", stacklevel=3)
    module = getattr(fn, "__module__", None)
    if isinstance(module, str) and module.split(".")[0] == "plexus":
        module = "builtins"  # how Keras names its own functions (losses, metrics)
    return {"module": module, "class_name": "function",
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
        value = obj.detach().cpu()
        return {"class_name": "__tensor__", "config": {
            "value": value.tolist(), "dtype": str(value.dtype).replace("torch.", "")}}
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
    config = serialize_keras_object(_function_attrs(layer, dict(layer.get_config())))
    config = {k: with_module(v) for k, v in config.items()}
    if not isinstance(layer, InputLayer) and not registry.is_model(layer) and \
            isinstance(config.get("dtype"), str):
        config["dtype"] = {"module": "keras", "class_name": "DTypePolicy",
                           "config": {"name": config["dtype"]}, "registered_name": None}
    cls = saved_class(layer)
    for key in _KERAS_REJECTS.get(cls.__name__, ()):
        config.pop(key, None)
    registered = registry._user_names.get(id(cls))
    if registered is None and not cls.__module__.startswith("plexus"):
        registered = cls.__name__
    if cls is registry.model_class("Functional"):
        registered = "Functional"
    if _module_of(layer) == _FEATURE_SPACE_MODULE:
        registered = cls.__name__  # (Keras registers TFDConcat and TFDIdentity by name)
    out = {"module": _module_of(layer), "class_name": keras_class_name(layer), "config": config,
           "registered_name": registered}
    if custom_state.overrides(layer, "get_build_config"):  # the layer's own build config
        build = serialize_keras_object(layer.get_build_config())
    else:
        build = _build_config(layer)
    if build is not None:
        out["build_config"] = build
    return out


_KERAS_MODULES = (("layers", "keras.layers"), ("schedules", "keras.optimizers.schedules"),
                  ("initializers", "keras.initializers"), ("regularizers", "keras.regularizers"),
                  ("constraints", "keras.constraints"), ("losses", "keras.losses"),
                  ("metrics", "keras.metrics"), ("optimizers", "keras.optimizers"))


def with_module(value):
    """Nested configs written as bare `{"class_name", "config"}` (a wrapper's inner layer, an
    RNN's cell, a learning-rate schedule) get the `module` field Keras 3 needs to find the
    class."""
    if isinstance(value, list):
        return [with_module(v) for v in value]
    if not isinstance(value, dict):
        return value
    value = {k: with_module(v) for k, v in value.items()}
    if is_serialized_object(value) and "module" not in value and \
            not value["class_name"].startswith("__"):
        for category, module in _KERAS_MODULES:
            if value["class_name"] in registry.builtin_table(category):
                value = {"module": module, **value, "registered_name": None}
                break
    return value


# Arguments plexus writes that Keras's constructor of the same class refuses.
_KERAS_REJECTS = {"SpatialDropout1D": ("trainable",), "SpatialDropout2D": ("trainable",),
                  "SpatialDropout3D": ("trainable",)}


def _build_config(layer):
    from plexus.layers.input_layer import InputLayer
    if isinstance(layer, InputLayer):
        return None
    if registry.is_model(layer) and not registry.is_model(layer, "Sequential"):
        if registry.is_model(layer, "Functional"):
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
