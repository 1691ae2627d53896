"""Keras 2's serialization format (`{"class_name": ..., "config": ...}`), as
`keras.legacy.saving` / `keras.utils.legacy` offer it to libraries written for that format.

`serialize_keras_object` writes an object with `get_config()` as its registered class name and
its config; objects inside the config that have their own `get_config()` are written the same
way, marked `"__passive_serialization__"`; functions and classes are written as their
registered names. `deserialize_keras_object` reads that back, looking names up in the active
`custom_object_scope`, the registered objects, `custom_objects` and then `module_objects`
(plexus's built-ins are not searched unless given there, as in Keras).
"""
import inspect

from plexus.saving import registry


def serialize_keras_object(instance):
    """The Keras 2 description of `instance`: a dict for objects with `get_config()`, a name
    for functions and classes, None for None.

    Example:
        >>> serialize_keras_object(plexus.initializers.Constant(2.0))
        {'class_name': 'Constant', 'config': {'value': 2.0}}
    """
    instance = inspect.unwrap(instance) if callable(instance) else instance
    if instance is None:
        return None
    if hasattr(instance, "get_config") and not inspect.isclass(instance):
        config = {}
        for key, item in instance.get_config().items():
            if isinstance(item, str):
                config[key] = item
                continue
            try:
                written = serialize_keras_object(item)
            except ValueError:
                config[key] = item  # plain values (numbers, lists, dicts) stay as they are
                continue
            if isinstance(written, dict) and not isinstance(item, dict):
                written["__passive_serialization__"] = True
            config[key] = written
        return {"class_name": registry.get_registered_name(type(instance)), "config": config}
    if hasattr(instance, "__name__"):
        return registry.get_registered_name(instance)
    raise ValueError(f"Cannot serialize {instance!r}: it is not None, has no get_config() and "
                     "no __name__.")


def _unknown(what, name):
    return ValueError(f"Unknown {what}: {name!r}. Pass it in custom_objects or "
                      "module_objects, register it with "
                      "plexus.saving.register_keras_serializable(), or load inside a "
                      "plexus.saving.custom_object_scope() that holds it.")


def _class_and_config(config, module_objects, custom_objects, what):
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(f"Cannot deserialize {what} {config!r}: expected a dict with "
                         "'class_name' and 'config' keys.")
    cls = registry.get_registered_object(config["class_name"], custom_objects, module_objects)
    if cls is None:
        raise _unknown(what, config["class_name"])
    cls_config = config["config"]
    if isinstance(cls_config, list):
        return cls, cls_config
    cls_config = dict(cls_config)
    for key, item in list(cls_config.items()):
        if key == "name":
            continue
        if isinstance(item, dict) and "__passive_serialization__" in item:
            cls_config[key] = deserialize_keras_object(
                {k: v for k, v in item.items() if k != "__passive_serialization__"},
                module_objects, custom_objects, "config_item")
        elif isinstance(item, str):
            found = registry.get_registered_object(item, custom_objects, module_objects)
            if inspect.isfunction(found):
                cls_config[key] = found
    return cls, cls_config


def deserialize_keras_object(identifier, module_objects=None, custom_objects=None,
                             printable_module_name="object"):
    """The object a Keras 2 description stands for.

    Args:
        identifier: a dict `{"class_name", "config"}`, a name, a function, or None.
        module_objects: name -> class or function, the built-ins to look names up in.
        custom_objects: name -> class or function, the user's.
        printable_module_name: what the object is, for error messages.

    Example:
        >>> deserialize_keras_object({"class_name": "Constant", "config": {"value": 2.0}},
        ...                          module_objects=vars(plexus.initializers))
        <plexus.initializers.Constant ...>
    """
    from plexus.saving.serialization import custom_object_scope
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        cls, cls_config = _class_and_config(identifier, module_objects, custom_objects,
                                            printable_module_name)
        custom_objects = custom_objects or {}
        if not hasattr(cls, "from_config"):
            with custom_object_scope(custom_objects):
                return cls(**cls_config)
        if "custom_objects" in inspect.signature(cls.from_config).parameters:
            return cls.from_config(cls_config, custom_objects={
                **registry.get_custom_objects(), **custom_objects})
        with custom_object_scope(custom_objects):
            return cls.from_config(cls_config)
    if isinstance(identifier, str):
        obj = registry.get_registered_object(identifier, custom_objects, module_objects)
        if obj is None:
            raise _unknown(printable_module_name, identifier)
        return obj() if inspect.isclass(obj) else obj
    if inspect.isfunction(identifier):
        return identifier
    raise ValueError(f"Could not interpret serialized {printable_module_name}: "
                     f"{identifier!r}.")
