"""`Sequential`: a plain stack of layers, each with one input and one output."""
import torch

from plexus.graph.tensor import KerasTensor
from plexus.layers.input_layer import InputLayer
from plexus.layers.layer import Layer
from plexus.layers.tracking import name_scope_of
from plexus.models.functional import Functional
from plexus.saving import registry


class Sequential(Functional):
    """A linear stack of layers.

        model = Sequential()
        model.add(Dense(32, activation="relu", input_shape=(64,)))
        model.add(Dense(10, activation="softmax"))

    The input shape comes from an `Input` (or `InputLayer`) added first, from `input_shape=` on
    the first layer, or, when neither is given, from the first batch of data the model sees;
    until then the model has no graph (`model.built` is False). `model.layers` does not
    include the input layer.
    """

    _name_prefix = "sequential"

    def __init__(self, layers=None, trainable=True, name=None):
        Layer.__init__(self, name=name, trainable=trainable)
        self._init_model_state()
        self._stack = []
        self._stack_names = set()
        self._refs = {"input_layer": None}  # kept out of nn.Module's submodule registry
        self._stack_outputs = []
        if layers is not None:
            if isinstance(layers, (Layer, KerasTensor)):
                layers = [layers]
            for layer in layers:
                self.add(layer, rebuild=False)
            self._rebuild()

    @property
    def _input_layer(self):
        return self._refs["input_layer"]

    def add(self, layer, rebuild=True):
        """Append a layer (or an `Input` tensor, which must come first).

        Args:
            layer: a layer, or an `Input(...)` tensor as the first element.
            rebuild: call the layer on the model's output now (when the input shape is known);
                with `False`, layers are only stacked until the next rebuild, which makes adding
                thousands of layers linear instead of quadratic.
        """
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
        if layer.name in self._stack_names:
            raise ValueError(
                f"Model {self.name!r} already has a layer named {layer.name!r}; layer names "
                "must be unique within a model."
            )
        if not self._stack and self._input_layer is None and layer._batch_input_shape is not None:
            self._refs["input_layer"] = InputLayer(batch_shape=layer._batch_input_shape,
                                                     dtype=layer.dtype if "int" not in layer.dtype else None)
        self._stack.append(layer)
        self._stack_names.add(layer.name)
        self._modules[layer.name.replace(".", "_")] = layer
        if rebuild:
            self._rebuild()

    def _rebuild(self):
        """Call the layers added without a rebuild, once the input shape is known."""
        if self._input_layer is not None and len(self._stack_outputs) < len(self._stack):
            self._extend_graph(self._stack[len(self._stack_outputs):])

    def _extend_graph(self, new_layers):
        with name_scope_of(self):  # weights built here get paths `sequential/dense/kernel`
            self._extend_graph_in_scope(new_layers)

    def _extend_graph_in_scope(self, new_layers):
        x = self._stack_outputs[-1] if self._stack_outputs else self._input_layer._input_tensor
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
        self._stack_names.discard(layer.name)
        self._modules.pop(layer.name.replace(".", "_"), None)
        if len(self._stack_outputs) > len(self._stack):  # (the layer had been called)
            self._stack_outputs.pop()
            if self._stack_outputs:
                self._init_graph(self._input_layer._input_tensor, self._stack_outputs[-1])
            else:
                self.built = False
        return layer

    def build(self, input_shape=None):
        """Build the model for inputs of `input_shape` (batch dimension included)."""
        if self.built:
            return
        if input_shape is None:
            raise ValueError(f"Sequential model {self.name!r} needs an input_shape to build.")
        if not self._stack:
            raise ValueError(f"Sequential model {self.name!r} has no layers to build.")
        if self._input_layer is None:
            self._refs["input_layer"] = InputLayer(batch_shape=(None,) + tuple(input_shape)[1:])
        self._extend_graph(self._stack)

    def _build_from_data(self, x):
        """Build the graph from the first data the model sees (no input shape was given)."""
        if self.built or not self._stack:
            return
        if isinstance(x, KerasTensor):
            shape, dtype = x.shape, x.dtype
        else:
            shape = tuple(x.shape)
            sample = torch.as_tensor(x[:1] if hasattr(x, "__getitem__") else x)
            dtype = None if sample.is_floating_point() else "int32"
            # As in Keras, sizes taken from the first data are not enforced on later data
            # (a block called on sequences of another length runs; its layers check sizes).
            self._sizes_from_data = True
        if self._input_layer is None:
            self._refs["input_layer"] = InputLayer(batch_shape=(None,) + tuple(shape)[1:],
                                                     dtype=dtype)
        self._extend_graph(self._stack)

    def __call__(self, *args, **kwargs):
        if args and not self.built:
            self._build_from_data(args[0])
        return super().__call__(*args, **kwargs)

    def _standardize_inputs(self, inputs, device=None):
        if not self.built:
            self._build_from_data(inputs)
        self._require_graph("inputs")
        return super()._standardize_inputs(inputs, device)

    @property
    def layers(self):
        return list(self._stack)

    @property
    def operations(self):
        return list(self._stack)

    @property
    def input_names(self):
        self._require_graph("input_names")
        return [self._input_layer.name]

    @property
    def output_names(self):
        self._require_graph("output_names")
        return super().output_names

    def _require_graph(self, what):
        if not self.built:
            raise ValueError(
                f"Sequential model {self.name!r} has not been built yet, so it has no `{what}`. "
                "Give its first layer an `input_shape`, start with an Input, or call it on data."
            )

    def _output_names_for_data(self):
        return self.output_names if self.built else None

    def get_config(self):
        from plexus.models.config import sequential_config
        return sequential_config(self)


Sequential._standard_calls = Functional._standard_calls + (Sequential.__call__,)
registry.register_model_class("Sequential", Sequential)
