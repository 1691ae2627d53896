"""Looking up the objects of a small catalogue (regularizers, constraints) by name or config,
the way each of Keras's `get` / `serialize` / `deserialize` trios does."""


def get(kind, identifier, table, base, deserialize):
    """An object of `kind` from a name in `table`, a config dict, a `base` subclass, a
    `base` instance or a callable."""
    if identifier is None or isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        if identifier not in table:
            raise ValueError(f"Unknown {kind} {identifier!r}. Known: "
                             f"{', '.join(k for k in table if k.islower())}.")
        return table[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, base):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"Cannot interpret {identifier!r} as a {kind}: pass a name, a config dict "
                    "or an object.")


def serialize(obj, module):
    """Keras's description of `obj`: `{"module", "class_name", "config", "registered_name"}`."""
    if obj is None:
        return None
    return {"module": module, "class_name": type(obj).__name__, "config": obj.get_config(),
            "registered_name": None}


def deserialize(kind, config, table, get_fn, custom_objects=None):
    """The object a config (`{"class_name": ..., "config": {...}}`) or a name describes;
    `custom_objects` maps further class names to classes."""
    if isinstance(config, str):
        return get_fn(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Cannot read a {kind} from {config!r}: expected a dict with "
                         "'class_name' and 'config'.")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or table.get(name)
    if cls is None:
        raise ValueError(f"Unknown {kind} class {name!r}; known: "
                         f"{', '.join(k for k in table if not k.islower())}.")
    return cls.from_config(config.get("config", {}))
