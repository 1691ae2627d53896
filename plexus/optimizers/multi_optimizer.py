"""`MultiOptimizer`: different optimizers for different weights, chosen by `OptimizerMap`
(regular expressions over weight paths such as `"encoder/.*"`) or by a function of the
weight."""
import re
from collections.abc import MutableMapping

import numpy as np

from plexus.optimizers.loss_scale_optimizer import LossScaleOptimizer
from plexus.saving import optimizer_state
from plexus.training import optimizers as O


def _check_inner(opt, what):
    if not isinstance(opt, O.Optimizer):
        raise ValueError(f"{what} must be a plexus optimizer; received {opt!r}.")
    if isinstance(opt, LossScaleOptimizer):
        raise ValueError(f"{what} cannot be a LossScaleOptimizer (wrap the MultiOptimizer "
                         "instead).")
    if isinstance(opt, MultiOptimizer):
        raise ValueError(f"{what} cannot be a MultiOptimizer.")


class OptimizerMap(MutableMapping):
    """Weight paths (or regular expressions matching whole paths) to optimizers, with a
    default for the weights no key matches.

    Example:
        >>> opts = OptimizerMap(default_optimizer=plexus.optimizers.SGD())
        >>> opts["encoder/.*"] = plexus.optimizers.Adam()
    """

    def __init__(self, default_optimizer, optimizer_map=None):
        if not isinstance(default_optimizer, O.Optimizer):
            raise TypeError(f"OptimizerMap: default_optimizer must be a plexus optimizer; "
                            f"received {default_optimizer!r}.")
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(f"OptimizerMap: optimizer_map must be a dict; received "
                            f"{optimizer_map!r}.")
        self._default_optimizer = default_optimizer
        self._optimizer_map = {}
        for key, opt in (optimizer_map or {}).items():
            self[key] = opt

    @property
    def default_optimizer(self):
        return self._default_optimizer

    def __getitem__(self, key):
        """The optimizer for the weight path `key`: an exact key, else the one pattern that
        matches the whole path, else the default (a ValueError when several match)."""
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        matches = [p for p in self._optimizer_map if re.fullmatch(p, key)]
        if len(matches) > 1:
            raise ValueError(f"OptimizerMap: the weight {key!r} matches several patterns "
                             f"({', '.join(matches)}); make them exclusive.")
        return self._optimizer_map[matches[0]] if matches else self._default_optimizer

    def __setitem__(self, key, optimizer):
        if not isinstance(key, str):
            raise ValueError(f"OptimizerMap: keys are weight paths or patterns (strings); "
                             f"received {key!r}.")
        if key in self._optimizer_map:
            raise ValueError(f"OptimizerMap: {key!r} is already mapped to "
                             f"{self._optimizer_map[key]!r}; keys must be unique.")
        _check_inner(optimizer, f"The optimizer for {key!r}")
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key):
        del self._optimizer_map[key]

    def __len__(self):
        return len(self._optimizer_map)

    def __iter__(self):
        return iter(self._optimizer_map)

    def __call__(self, path):
        return self[path]

    def get_config(self):
        return {"default_optimizer": O.serialize(self._default_optimizer),
                "optimizer_map": {k: O.serialize(v) for k, v in self._optimizer_map.items()}}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        inner = config.get("optimizer_map") or {}
        if isinstance(inner, dict) and "class_name" in inner and "config" in inner \
                and set(inner) <= {"class_name", "config", "module", "registered_name"}:
            inner = inner["config"]  # (Keras writes the plain dict as a serialized object)
        return cls(_optimizer(config["default_optimizer"], custom_objects),
                   {k: _optimizer(v, custom_objects) for k, v in inner.items()})


def _optimizer(value, custom_objects=None):
    return value if isinstance(value, O.Optimizer) else O.deserialize(value, custom_objects)


class MultiOptimizer(O.Optimizer):
    """Updates each weight with the optimizer `optimizer_map` gives for it: an
    `OptimizerMap`, or a function `fn(path) -> optimizer` of the weight's path
    (`"dense/kernel"`). The sub-optimizers keep their own rates and state
    (`.optimizers`); `learning_rate` is theirs, not the MultiOptimizer's.

    Args:
        loss_scale_factor: set on every sub-optimizer.
    """

    _packable = False  # each sub-optimizer packs its own weights

    def __init__(self, optimizer_map, loss_scale_factor=None, name=None):
        super().__init__(learning_rate=0.0, loss_scale_factor=loss_scale_factor, name=name)
        self._optimizer_map = optimizer_map
        self._inner = []
        for opt in list(getattr(optimizer_map, "values", lambda: [])()) + \
                [getattr(optimizer_map, "default_optimizer", None)]:
            if opt is not None and opt not in self._inner:
                self._adopt(opt)
        self._paths = {}

    def _adopt(self, opt):
        _check_inner(opt, "A MultiOptimizer's sub-optimizer")
        opt.loss_scale_factor = self.loss_scale_factor
        self._inner.append(opt)

    @property
    def optimizers(self):
        return self._inner

    @property
    def learning_rate(self):
        raise AttributeError("A MultiOptimizer has no single learning rate: read or set it on "
                             "its sub-optimizers (`.optimizers`).")

    @learning_rate.setter
    def learning_rate(self, value):
        if "_inner" in self.__dict__:
            raise AttributeError("A MultiOptimizer has no single learning rate: set it on its "
                                 "sub-optimizers (`.optimizers`).")
        self._learning_rate = value  # (the base class's own 0.0)

    def bind_model(self, model):
        self._paths = {id(getattr(layer, w.attr)): f"{layer.name}/{w.name}"
                       for layer, w in model._weight_entries()}
        for opt in self._inner:
            opt.bind_model(model)

    def build(self, var_list):
        self._vars = list(var_list)
        groups = {}
        for p in self._vars:
            path = self._paths.get(id(p)) or str(getattr(p, "path", ""))
            opt = self._optimizer_map(path)
            if opt not in self._inner:
                self._adopt(opt)
            _check_inner(opt, f"The optimizer for {path!r}")
            groups.setdefault(id(opt), []).append(p)
        self._groups = [(opt, groups[id(opt)]) for opt in self._inner if id(opt) in groups]
        for opt, params in self._groups:
            opt.build(params)
        self.built = True

    def step(self):
        """Each sub-optimizer updates its weights from their `.grad`."""
        for opt, _ in self._groups:
            opt.step()
        self._iterations += 1

    def finalize_variable_values(self, var_list):
        for opt, params in self._groups:
            opt.finalize_variable_values(params)

    @property
    def variables(self):
        return [v for opt in self._inner for v in opt.variables]

    _builds_before_loading = True

    def save_own_variables(self, store):
        """Keras's layout: its own step count and (zero) rate, then each sub-optimizer's
        step count, rate and state."""
        arrays = [np.asarray(self._iterations, dtype=np.int64), np.asarray(0.0, dtype=np.float32)]
        for opt in self._inner:
            arrays += optimizer_state._arrays(opt)
        store.update({str(i): a for i, a in enumerate(arrays)})

    def load_own_variables(self, store):
        arrays = [store[str(i)] for i in range(len(store))]
        self._iterations = int(arrays[0])
        start = 2
        for opt, params in self._groups:
            count = len(optimizer_state._arrays(opt))
            optimizer_state.restore(opt, arrays[start:start + count], "MultiOptimizer state",
                                    params)
            start += count

    def get_config(self):
        mapping = self._optimizer_map
        if not hasattr(mapping, "get_config"):
            raise TypeError("A MultiOptimizer built from a function cannot be saved; use an "
                            "OptimizerMap to make it savable.")
        return {"optimizer_map": {"module": "keras.optimizers", "class_name": "OptimizerMap",
                                  "config": mapping.get_config(), "registered_name": None},
                "loss_scale_factor": self.loss_scale_factor, "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        mapping = config["optimizer_map"]
        if isinstance(mapping, dict):
            mapping = OptimizerMap.from_config(mapping.get("config", mapping), custom_objects)
        config["optimizer_map"] = mapping
        return cls(**config)
