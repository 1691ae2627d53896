"""`Config`: a dict of named values reachable as attributes, that can be frozen."""
import copy
import difflib
import json


class Config:
    """A dict-like container of named values, as `keras.utils.Config`.

    Values are set and read as attributes or items; `freeze()` makes later changes raise a
    `ValueError`; `as_dict()` and `to_json()` export it. Iterating yields the keys in sorted
    order.

    Example:
        >>> config = Config(learning_rate=0.1)
        >>> config.momentum = 0.9
        >>> config["seed"] = 123
        >>> config.freeze()
        >>> config.learning_rate, config["momentum"], sorted(config)
        (0.1, 0.9, ['learning_rate', 'momentum', 'seed'])
    """

    _OWN = frozenset({"_config", "_frozen"})

    def __init__(self, **kwargs):
        object.__setattr__(self, "_config", dict(kwargs))
        object.__setattr__(self, "_frozen", False)

    @property
    def frozen(self):
        """True once `freeze()` was called (and not undone by `unfreeze()`)."""
        return self._frozen

    def freeze(self):
        """Refuse any further change."""
        object.__setattr__(self, "_frozen", True)

    def unfreeze(self):
        object.__setattr__(self, "_frozen", False)

    def _check_mutable(self):
        if self._frozen:
            raise ValueError("Cannot change this Config: it is frozen. Call `unfreeze()` "
                             "first, or build a new Config.")

    def as_dict(self):
        return copy.copy(self._config)

    def to_json(self):
        return json.dumps(self._config)

    def keys(self):
        return self._config.keys()

    def values(self):
        return self._config.values()

    def items(self):
        return self._config.items()

    def get(self, keyname, value=None):
        return self._config.get(keyname, value)

    def pop(self, *args):
        self._check_mutable()
        return self._config.pop(*args)

    def update(self, *args, **kwargs):
        self._check_mutable()
        return self._config.update(*args, **kwargs)

    def __setattr__(self, name, value):
        if name in self._OWN or hasattr(type(self), name):
            raise AttributeError(f"Config: {name!r} is a method or property of Config and "
                                 f"cannot be set as a value; use config[{name!r}] = ... .")
        self._check_mutable()
        self._config[name] = value

    def __getattr__(self, name):  # only called when normal lookup fails
        config = self.__dict__.get("_config", {})
        if name in config:
            return config[name]
        msg = f"Config has no entry {name!r}."
        close = difflib.get_close_matches(name, list(config), n=1, cutoff=0.7)
        if close:
            msg += f" Did you mean {close[0]!r}?"
        raise AttributeError(msg)

    def __setitem__(self, key, item):
        self._check_mutable()
        self._config[key] = item

    def __getitem__(self, key):
        return self._config[key]

    def __delitem__(self, key):
        self._check_mutable()
        del self._config[key]

    def __contains__(self, item):
        return item in self._config

    def __iter__(self):
        return iter(sorted(self._config))

    def __len__(self):
        return len(self._config)

    def __repr__(self):
        return f"<Config {self._config}>"
