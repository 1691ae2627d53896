"""`TorchModuleWrapper`: any `torch.nn.Module` as a layer of a functional model.

The module's parameters become the layer's weights (in `summary()`, `get_weights()`, trained by
`fit`); files hold its whole `state_dict()` (buffers too) in the layer's weights group, one
dataset per state-dict key, as Keras writes it. The module itself is never pickled or
unpickled: loading a file needs the module (or a function that builds it) from the caller.
"""
from torch import nn

from plexus.graph.tensor import KerasTensor, standardize_dtype
from plexus.layers.layer import Layer, Weight, _identity


def _table(module, prefix, tensors):
    """Weight records for `(key, tensor)` pairs of `module`, addressed as `prefix + key`."""
    return [Weight(prefix + key, key, tuple(t.shape), _identity, _identity,
                   bool(getattr(t, "requires_grad", False)), None, None)
            for key, t in tensors]


class TorchModuleWrapper(Layer):
    """Wraps a `torch.nn.Module` so that it can be called on symbolic tensors in a functional
    model, like any layer.

    Tensors pass to the module as they are (a torch `Conv2d` expects channels-first data; the
    module runs in its own dtype and device). Its parameters are the layer's weights:
    trainable where `requires_grad` is set, counted by `summary()`, updated by `fit`. The
    module follows the layer's training mode (a `Dropout` or `BatchNorm` inside trains in
    `fit`, not in `predict`); a call with `training=True/False` sets it for that call.

    Saving: files hold the module's `state_dict()` (parameters and buffers, one dataset per
    key). The config holds only the module's class name, never the module itself, so
    `load_model` needs it from you: `custom_objects={layer_name: module}` (a module of the
    same architecture, or a function that returns one); its state is then loaded from the
    file. Files written by Keras load the same way (their pickled module is never read);
    Keras cannot load plexus's files with this layer, because it expects that pickle.

    Args:
        module: the `torch.nn.Module`; a lazy module must be initialized first (call it once).
        name: the layer's name.
        output_shape: the output shape, batch dimension included (`(None, 10)`); traced from
            the module when not given.

    Example:
        >>> inputs = Input(shape=(3, 32, 32))
        >>> x = TorchModuleWrapper(torch.nn.Conv2d(3, 8, 3))(inputs)
        >>> Model(inputs, Dense(2)(Flatten()(x)))
    """

    _autocast = _autocast_weights = False  # the module keeps its own dtypes
    _keras_vars_by_name = True  # files: one dataset per state-dict key

    def __init__(self, module, name=None, output_shape=None, **kwargs):
        kwargs.pop("module_class", None)  # informational key of saved configs
        super().__init__(name=name, **kwargs)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"TorchModuleWrapper {self.name!r} needs a torch.nn.Module; received "
                f"{type(module).__name__}.")
        if isinstance(module, nn.modules.lazy.LazyModuleMixin) and \
                module.has_uninitialized_params():
            raise ValueError(
                f"TorchModuleWrapper {self.name!r}: the lazy module {type(module).__name__} has "
                "uninitialized parameters. Call it once on an example input before wrapping it.")
        self.module = module
        self._weights_of_module = _table(module, "module.", module.named_parameters())
        if not self._trainable:
            self.trainable = False
        self._module_output_shape = tuple(output_shape) if output_shape is not None else None
        self.built = True

    def __getattr__(self, name):
        # Weight records address the module's tensors as "module.<state-dict key>".
        if name.startswith("module.") and "_modules" in self.__dict__:
            module, key = self.__dict__["_modules"]["module"], name[len("module."):]
            try:
                return module.get_parameter(key)
            except AttributeError:
                return module.get_buffer(key)
        return super().__getattr__(name)

    def _own_weight_entries(self):
        return [(self, w) for w in self._weights_of_module]

    def _keras_saved_entries(self):
        """What files hold: the whole state dict (parameters and persistent buffers)."""
        state = self.module.state_dict(keep_vars=True)
        return [(self, w) for w in _table(self.module, "module.", state.items())
                if hasattr(state[w.name], "shape")]

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for w in self._weights_of_module:
            p = getattr(self, w.attr)
            if p.is_floating_point():
                p.requires_grad_(self._trainable and w.trainable)

    def call(self, *args, training=None, **kwargs):
        mode = self.training if training is None else bool(training)
        if self.module.training != mode:
            self.module.train(mode)
        return self.module(*args, **kwargs)

    def compute_output_spec(self, inputs, *args, **kwargs):
        if self._module_output_shape is None:
            return self._traced_output_spec(inputs, *args, **kwargs)
        dtype = next((p.dtype for p in self.module.parameters()), None)
        return KerasTensor(self._module_output_shape,
                           standardize_dtype(dtype) if dtype is not None else inputs.dtype)

    def get_config(self):
        cls = type(self.module)
        return {**super().get_config(), "module_class": f"{cls.__module__}.{cls.__qualname__}",
                "output_shape": self._module_output_shape}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("module", None)  # Keras stores a pickle here: never read
        name = config.get("name")
        from plexus.saving.context import current_context
        supplied = current_context().custom_objects.get(name) if name else None
        if supplied is None:
            what = config.get("module_class") or "a torch module"
            raise ValueError(
                f"Layer {name!r} is a TorchModuleWrapper around {what}. Files hold its state "
                "dict, not the module (plexus never unpickles code), so pass the module to the "
                f"loader: custom_objects={{{name!r}: module_or_function_returning_it}}.")
        module = supplied if isinstance(supplied, nn.Module) else supplied()
        return cls(module, **config)
