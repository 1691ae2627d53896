"""`Sequential`: a plain stack of layers, each with one input and one output."""
import torch

from plexus.graph.tensor import KerasTensor
from plexus.layers.input_layer import InputLayer
from plexus.layers.layer import Layer
from plexus.models.model import Model


class Sequential(Model):
    """A linear stack of layers.

        model = Sequential()
        model.add(Dense(32, activation="relu", input_shape=(64,)))
        model.add(Dense(10, activation="softmax"))

    The input shape comes from an `Input` (or `InputLayer`) added first, from `input_shape=` on
    the first layer, or, when neither is given, from the first batch of data the model sees.
    `model.layers` does not include the input layer.
    """

    _name_prefix = "sequential"

    def __init__(self, layers=None, trainable=True, name=None):
        Layer.__init__(self, name=name, trainable=trainable)
        self._is_graph = False
        self.compiled = False
        self._stack = []
        self._refs = {"input_layer": None}  # kept out of nn.Module's submodule registry
        self._stack_outputs = []
        if layers is not None:
            if isinstance(layers, (Layer, KerasTensor)):
                layers = [layers]
            for layer in layers:
                self.add(layer)

    @property
    def _input_layer(self):
        return self._refs["input_layer"]

    def add(self, layer, rebuild=True):
        """Append a layer (or an `Input` tensor, which must come first)."""
        if isinstance(layer, KerasTensor):
            if layer.node is None or not isinstance(layer.node.layer, InputLayer):
                raise TypeError(
                    "Sequential.add() accepts layers and `Input(...)` tensors; received a symbolic "
                    "tensor that is a layer's output. Use the functional API for such graphs."
                )
            layer = layer.node.layer
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential.add() expects a layer; received {layer!r} of type "
                f"{type(layer).__name__}."
            )
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(
                    "An Input can only be the first element of a Sequential model; "
                    f"model {self.name!r} already has layers."
                )
            self._refs["input_layer"] = layer
            return
        if any(l.name == layer.name for l in self._stack):
            raise ValueError(
                f"Model {self.name!r} already has a layer named {layer.name!r}; layer names "
                "must be unique within a model."
            )
        if not self._stack and self._input_layer is None and layer._batch_input_shape is not None:
            self._refs["input_layer"] = InputLayer(batch_shape=layer._batch_input_shape,
                                                     dtype=layer.dtype if "int" not in layer.dtype else None)
        self._stack.append(layer)
        self._modules[layer.name.replace(".", "_")] = layer
        if self._input_layer is not None:
            self._extend_graph([layer])

    def _extend_graph(self, new_layers):
        if not self._stack_outputs:
            x = self._input_layer._input_tensor
        else:
            x = self._stack_outputs[-1]
        for layer in new_layers:
            x = layer(x)
            if not isinstance(x, KerasTensor):
                raise ValueError(
                    f"Layer {layer.name!r} returns several tensors; Sequential models need layers "
                    "with one output. Use the functional API instead."
                )
            self._stack_outputs.append(x)
        self._init_graph(self._input_layer._input_tensor, x)

    def pop(self, rebuild=True):
        """Remove the last layer."""
        if not self._stack:
            raise IndexError(f"Sequential model {self.name!r} has no layers to pop.")
        layer = self._stack.pop()
        self._modules.pop(layer.name.replace(".", "_"), None)
        if self._stack_outputs:
            self._stack_outputs.pop()
            if self._stack_outputs:
                self._init_graph(self._input_layer._input_tensor, self._stack_outputs[-1])
            else:
                self._is_graph = False
                self.built = False
        return layer

    def build(self, input_shape=None):
        """Build the model for inputs of `input_shape` (batch dimension included)."""
        if self._is_graph:
            return
        if input_shape is None:
            raise ValueError(f"Sequential model {self.name!r} needs an input_shape to build.")
        if not self._stack:
            raise ValueError(f"Sequential model {self.name!r} has no layers to build.")
        if self._input_layer is None:
            self._refs["input_layer"] = InputLayer(batch_shape=(None,) + tuple(input_shape)[1:])
        self._extend_graph(self._stack)

    def __call__(self, *args, **kwargs):
        if not self._is_graph and args and self._stack:
            x = args[0]
            if isinstance(x, KerasTensor):
                shape, dtype = x.shape, x.dtype
            else:
                shape = tuple(x.shape)
                dtype = "int32" if not torch.as_tensor(x[:1] if hasattr(x, "__getitem__") else x
                                                       ).is_floating_point() else None
            if self._input_layer is None:
                self._refs["input_layer"] = InputLayer(batch_shape=(None,) + tuple(shape)[1:], dtype=dtype)
            self._extend_graph(self._stack)
        return super().__call__(*args, **kwargs)

    @property
    def layers(self):
        return list(self._stack)

    @property
    def _operations(self):
        return list(self._stack)

    @property
    def input_names(self):
        self._require_graph("input_names")
        return [self._input_layer.name]

    def _require_graph(self, what):
        if not self._is_graph:
            raise ValueError(
                f"Sequential model {self.name!r} has not been built yet, so it has no `{what}`. "
                "Give its first layer an `input_shape`, start with an Input, or call it on data."
            )
