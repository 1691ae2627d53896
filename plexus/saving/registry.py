"""The only classes and functions a saved file can name.

A model file says `"class_name": "Dense"`; plexus looks that name up in tables it builds itself
(its own layers, models, initializers, ... plus what users register or pass in `custom_objects`).
Nothing read from a file is ever imported, evaluated or resolved as a module path: a `"module"`
field is only a hint about which table to search.

To make your own class loadable:

    @plexus.saving.register_keras_serializable(package="my_project")
    class Scale(plexus.layers.Layer):
        ...

or pass `custom_objects={"Scale": Scale}` to `load_model`.
"""
import importlib
import inspect

# Each table is filled from fixed plexus modules, named here in the code, never from a file.
# Add a module to a list to make its public classes (and, where listed, functions) loadable.
_BUILTIN_SOURCES = {
    # Layers Keras defines inside an application module (for saved applications) or beside
    # FeatureSpace.
    "layers": ["plexus.layers", "plexus.applications.convnext",
               "plexus.applications.inception_resnet_v2", "plexus.utils.feature_space"],
    "models": [],  # the model classes register themselves: register_model_class
    "initializers": ["plexus.initializers"],
    "regularizers": ["plexus.regularizers"],
    "constraints": ["plexus.constraints"],
    "activations": ["plexus.activations"],
    "losses": ["plexus.losses", "plexus.training.losses"],
    "metrics": ["plexus.metrics", "plexus.training.metrics"],
    "optimizers": ["plexus.optimizers", "plexus.training.optimizers"],
    "schedules": ["plexus.optimizers.schedules", "plexus.training.schedules"],
    "ops": [],  # filled from plexus.ops.table: the one table of ops
}
_FUNCTIONS_ALLOWED = {"activations", "losses", "metrics"}
# `"module"` hints from Keras and plexus files, mapped to the table to search first.
_MODULE_HINTS = {
    "layers": "layers", "models": "models", "initializers": "initializers",
    "regularizers": "regularizers", "constraints": "constraints", "activations": "activations",
    "losses": "losses", "metrics": "metrics", "optimizers": "optimizers", "functional": "models",
    "sequential": "models", "ops": "ops", "schedules": "schedules",
    "learning_rate_schedule": "schedules",
}
_SEARCH_ORDER = ["layers", "models", "initializers", "regularizers", "constraints",
                 "activations", "losses", "metrics", "optimizers", "schedules"]

_builtin_tables = {}
_MODEL_CLASSES = {}  # "Model", "Functional", "Sequential" -> class, registered by plexus.models


def register_model_class(name, cls):
    """Make a model class known to saving under its Keras class name (`"Functional"`): files
    name it so, and loading finds it by that name. Called by `plexus.models` itself."""
    _MODEL_CLASSES[name] = cls
    _builtin_tables.pop("models", None)


def is_model(obj, kind="Model"):
    """Whether `obj` is an instance of the registered model class `kind` ("Model",
    "Functional" or "Sequential"), without importing the models."""
    cls = _MODEL_CLASSES.get(kind)
    return cls is not None and isinstance(obj, cls)


def model_class(name):
    """The registered model class of that Keras name, or None."""
    return _MODEL_CLASSES.get(name)


def is_model_class(cls):
    base = _MODEL_CLASSES.get("Model")
    return base is not None and inspect.isclass(cls) and issubclass(cls, base)
_user_objects = {}  # "package>Name" -> object, filled by register_serializable
_user_names = {}  # id(object) -> "package>Name"


def _is_plexus(obj):
    return getattr(obj, "__module__", "").split(".")[0] == "plexus"


def _collect(category):
    """name -> object for one category, from the fixed plexus modules of `_BUILTIN_SOURCES`."""
    table = {}
    for module_name in _BUILTIN_SOURCES[category]:
        try:
            module = importlib.import_module(module_name)  # fixed names from this file only
        except ImportError:
            continue  # that part of plexus does not exist (yet)
        for name, obj in vars(module).items():
            if name.startswith("_") or not _is_plexus(obj):
                continue
            if inspect.isclass(obj) or (category in _FUNCTIONS_ALLOWED and inspect.isfunction(obj)):
                table.setdefault(name, obj)
        for private_table in ("_BY_CLASS", "_BY_NAME", "_ACTIVATIONS"):
            extra = getattr(module, private_table, None)
            if isinstance(extra, dict):
                for name, obj in extra.items():
                    if _is_plexus(obj) and (inspect.isclass(obj) or inspect.isfunction(obj)):
                        table.setdefault(name, obj)
    if category == "layers":
        from plexus.layers.layer import Layer
        table = {k: v for k, v in table.items() if inspect.isclass(v) and issubclass(v, Layer)}
    if category == "ops":
        from plexus.ops.table import OP_CLASSES
        table = OP_CLASSES.all()
    if category == "models":
        table = dict(_MODEL_CLASSES)
    return table


def builtin_table(category):
    """The built-in objects of `category` ('layers', 'initializers', ...) by name."""
    if category not in _builtin_tables or not _builtin_tables[category]:
        _builtin_tables[category] = _collect(category)
    return _builtin_tables[category]


def refresh():
    """Forget the cached tables (after a new part of plexus was imported)."""
    _builtin_tables.clear()


def register_serializable(package="Custom", name=None):
    """Decorator that makes a class or function loadable from saved files by name.

    Args:
        package: a namespace for the name, so two projects' `Scale` layers do not clash.
        name: the name to register under; the class or function name by default.

    The object is saved as `"registered_name": "<package>><name>"` and found again by that name.

    Example:
        >>> @register_serializable(package="demo")
        ... class Scale(plexus.layers.Layer):
        ...     pass
    """
    if not isinstance(package, str) or ">" in package:
        raise ValueError(f"register_serializable: package must be a string without '>'; got {package!r}.")

    def decorator(obj):
        registered = f"{package}>{name or obj.__name__}"
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError(
                f"Cannot register {obj.__name__}: a class saved by name needs a get_config() "
                "method that returns its constructor arguments."
            )
        _user_objects[registered] = obj
        _user_names[id(obj)] = registered
        return obj

    return decorator


register_keras_serializable = register_serializable


def get_custom_objects():
    """The global dict of registered objects, by `'package>Name'`. As in Keras it is the live
    table: `get_custom_objects()["Scale"] = Scale` makes `Scale` loadable by that name."""
    return _user_objects


def get_registered_name(obj):
    """The name `obj` is saved under: `'package>Name'` when registered, else its own name."""
    return _user_names.get(id(obj), getattr(obj, "__name__", type(obj).__name__))


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The class or function registered (or passed in `custom_objects`, or given to an active
    `custom_object_scope`) under `name`, or None."""
    from plexus.saving.context import current_context
    scoped = current_context().custom_objects
    for table in (scoped, _user_objects, custom_objects or {}, module_objects or {}):
        if name in table:
            return table[name]
    return None


def custom_object(identifier):
    """The user's object `identifier` names, or None: a name or a serialized dict
    (`{"class_name", "config", "registered_name"}`) looked up in the active
    `custom_object_scope` (or load), then among registered objects (`"package>Name"` or the
    bare name). A dict's class is instantiated from its config; a class named by a bare name is
    instantiated without arguments (as `"glorot_uniform"` gives an initializer).
    """
    from plexus.saving.context import current_context
    config = None
    if isinstance(identifier, str):
        names = [identifier]
    elif isinstance(identifier, dict) and isinstance(identifier.get("class_name"), str):
        config = identifier.get("config")
        if identifier["class_name"] == "function":
            names, config = [identifier.get("registered_name"), config], None
        else:
            names = [identifier.get("registered_name"), identifier["class_name"]]
    else:
        return None
    names = [n for n in names if isinstance(n, str) and n]
    scoped = current_context().custom_objects
    obj = next((table[n] for table in (scoped, _user_objects) for n in names if n in table), None)
    if obj is None:
        bare = {n.split(">")[-1] for n in names}
        obj = next((o for key, o in _user_objects.items() if key.split(">")[-1] in bare), None)
    if obj is None or not inspect.isclass(obj):
        return obj
    if isinstance(config, dict):
        return obj.from_config(config) if hasattr(obj, "from_config") else obj(**config)
    return obj()


def _category_of(module):
    if not isinstance(module, str):
        return None
    for part in reversed(module.split(".")):
        if part in _MODULE_HINTS:
            return _MODULE_HINTS[part]
    return None


def lookup(class_name, registered_name=None, module=None, custom_objects=None, category=None):
    """Find the object a file names, or return None.

    Search order: the caller's `custom_objects`, registered objects (by `package>Name` and by
    bare name), then plexus's own tables (the `category` given or hinted by `module` first).
    """
    custom_objects = custom_objects or {}
    names = [n for n in (registered_name, class_name) if isinstance(n, str) and n]
    for n in names:
        if n in custom_objects:
            return custom_objects[n]
    for n in names:
        if n in _user_objects:
            return _user_objects[n]
    bare = [n.split(">")[-1] for n in names]
    for n in bare:
        for key, obj in _user_objects.items():
            if key.split(">")[-1] == n:
                return obj
    first = _category_of(module) or category
    order = ([first] if first else []) + [c for c in _SEARCH_ORDER if c != first]
    if category is not None and category in ("layers", "models"):
        order = [c for c in order if c in ("layers", "models", "ops")]
    for cat in order:
        table = builtin_table(cat)
        for n in bare:
            if n in table:
                return table[n]
    return None


def known_names(category):
    """Sorted names in a built-in table, for error messages."""
    return sorted(builtin_table(category))
