"""`Model`: a graph of layers from inputs to outputs, itself a layer."""
import warnings

import numpy as np
import torch

from plexus.graph import functional, tree
from plexus.graph.tensor import KerasTensor, torch_dtype
from plexus.layers.input_layer import InputLayer
from plexus.layers.layer import Layer


def _describe(x):
    if isinstance(x, KerasTensor):
        return repr(x)
    return f"{type(x).__name__}"


class Model(Layer):
    """A model groups layers into an object with training and inference features.

    Built from symbolic tensors, it is a functional model:

        inputs = plexus.Input(shape=(64,))
        x = plexus.layers.Dense(32, activation="relu")(inputs)
        outputs = plexus.layers.Dense(10, activation="softmax")(x)
        model = plexus.Model(inputs, outputs)

    `inputs` and `outputs` may each be one tensor, a list or a dict. A model is a layer, so it can
    be called on new symbolic inputs (reusing its weights) or on data (returning torch tensors).

    Subclassing also works: define layers in `__init__` and the computation in `call`.

    `Model.compile` deliberately shadows `torch.nn.Module.compile`: it configures training as in
    Keras. Use `torch.compile(model)` for torch's compiler.
    """

    # A model's layers cast their own inputs and weights (mixed precision); the model does not.
    _autocast = _autocast_weights = False

    _name_prefix = "functional"

    def __init__(self, *args, **kwargs):
        inputs = kwargs.pop("inputs", None)
        outputs = kwargs.pop("outputs", None)
        if args:
            inputs = args[0] if inputs is None else inputs
            if len(args) > 1:
                outputs = args[1] if outputs is None else outputs
            if len(args) > 2:
                raise TypeError("Model takes at most two positional arguments: inputs and outputs.")
        super().__init__(name=kwargs.pop("name", None), trainable=kwargs.pop("trainable", True),
                         dtype=kwargs.pop("dtype", None), **kwargs)
        self._is_graph = inputs is not None or outputs is not None
        self.compiled = False
        if self._is_graph:
            if inputs is None or outputs is None:
                raise ValueError(
                    "A functional Model needs both inputs and outputs: Model(inputs, outputs). "
                    "To subclass Model instead, call super().__init__() with neither."
                )
            self._init_graph(inputs, outputs)

    # ------------------------------------------------------------------ graph set-up
    def _init_graph(self, inputs, outputs):
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        flat_in = tree.flatten(inputs)
        flat_out = tree.flatten(outputs)
        for name, flat in (("inputs", flat_in), ("outputs", flat_out)):
            if not flat:
                raise ValueError(f"Model {self.name!r}: `{name}` is empty.")
            for t in flat:
                if not isinstance(t, KerasTensor):
                    raise TypeError(
                        f"Model {self.name!r}: every element of `{name}` must be a symbolic tensor "
                        f"(from plexus.Input or a layer call); received {_describe(t)}. Build the "
                        "graph by calling layers on `Input(...)` and pass those tensors."
                    )
        for t in flat_in:
            if t.node is None or not isinstance(t.node.layer, InputLayer):
                producer = t.node.layer.name if t.node else "nothing"
                raise ValueError(
                    f"Model {self.name!r}: input {t.name!r} was produced by layer {producer!r}, "
                    "not by `plexus.Input`. Model inputs must be Input tensors; to reuse part of "
                    "a graph, build a Model from its original Input."
                )
        if len({id(t) for t in flat_in}) != len(flat_in):
            raise ValueError(f"Model {self.name!r}: the same Input is listed twice in `inputs`.")
        self.inputs = flat_in
        self.outputs = flat_out
        nodes, self._nodes_by_depth, layers = functional.build_map(flat_in, flat_out)
        # Input layers of unused inputs still belong to the model.
        for t in flat_in:
            if t.node.layer not in layers:
                layers.insert(0, t.node.layer)
        names = {}
        for layer in layers:
            if layer.name in names:
                raise ValueError(
                    f"Model {self.name!r} has two different layers named {layer.name!r}. Layer "
                    "names must be unique within a model: pass distinct `name=` arguments."
                )
            names[layer.name] = layer
        self._graph_layers = layers
        for key in list(self._modules):
            if isinstance(self._modules[key], Layer):
                del self._modules[key]
        for layer in layers:
            if not isinstance(layer, InputLayer):
                # Registered directly: a layer named like a Model attribute must not clash.
                self._modules[layer.name.replace(".", "_")] = layer
        self._steps, slot_of = functional.compile_steps(nodes, flat_in, flat_out)
        self._n_slots = len(slot_of)
        self._output_slots = [slot_of[id(t)] for t in flat_out]
        self._input_casts = [self._input_cast(t) for t in flat_in]
        self._is_graph = True
        self.built = True

    def _input_cast(self, tensor):
        """dtype to cast data for this input to; integers pass when only Embeddings read them."""
        dtype = torch_dtype(tensor.dtype)
        consumers = [n.layer for layer in self._graph_layers for n in layer._inbound_nodes
                     if any(t is tensor for t in n.input_tensors)]
        int_ok = bool(consumers) and all(getattr(l, "_accepts_int_inputs", False)
                                         for l in consumers)
        return dtype, int_ok

    # ------------------------------------------------------------------ public graph API
    @property
    def layers(self):
        # Recorded tensor operations (`x + 1`) are graph nodes but not layers, as in Keras.
        return [l for l in self._operations if not getattr(l, "_is_op", False)]

    @property
    def _operations(self):
        """Every layer and recorded operation of the graph in order (Keras's `_operations`)."""
        if getattr(self, "_is_graph", False):
            return list(self._graph_layers)
        return [m for m in self._modules.values() if isinstance(m, Layer)]

    def _sublayers(self):
        return self.layers

    def get_layer(self, name=None, index=None):
        """A layer by `name` or by `index` in `model.layers`."""
        if index is not None and name is not None:
            raise ValueError("Pass either `name` or `index` to get_layer, not both.")
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"get_layer(index={index}): model {self.name!r} has only {len(layers)} layers."
                )
            return layers[index]
        if name is not None:
            for layer in layers:
                if layer.name == name:
                    return layer
            raise ValueError(
                f"No layer named {name!r} in model {self.name!r}. Its layers are: "
                f"{', '.join(repr(l.name) for l in layers)}."
            )
        raise ValueError("get_layer needs a `name` or an `index`.")

    @property
    def input(self):
        self._require_graph("input")
        return _unflatten_single(self._inputs_struct)

    @property
    def output(self):
        self._require_graph("output")
        return _unflatten_single(self._outputs_struct)

    @property
    def input_names(self):
        self._require_graph("input_names")
        if isinstance(self._inputs_struct, dict):
            return list(self._inputs_struct)
        return [t.node.layer.name for t in self.inputs]

    @property
    def output_names(self):
        self._require_graph("output_names")
        if isinstance(self._outputs_struct, dict):
            return list(self._outputs_struct)
        names, seen = [], {}
        for t in self.outputs:
            name = t.node.layer.name
            if name in seen:
                seen[name] += 1
                name = f"{name}_{seen[name]}"
            else:
                seen[name] = 0
            names.append(name)
        return names

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def _require_graph(self, what):
        if not getattr(self, "_is_graph", False):
            raise AttributeError(
                f"Model {self.name!r} is a subclassed model without a graph, so it has no "
                f"`{what}`. Build it functionally with Model(inputs, outputs) to get one."
            )

    # ------------------------------------------------------------------ calling
    def _standardize_inputs(self, inputs):
        """Flatten user inputs (one value, a list, or a dict by input name) into input order."""
        expected = self.input_names
        n = len(self.inputs)
        if isinstance(inputs, dict):
            missing = [k for k in expected if k not in inputs]
            if missing:
                raise ValueError(
                    f"Model {self.name!r}: the input dict is missing "
                    f"{', '.join(repr(k) for k in missing)}. It expects keys "
                    f"{expected}; received keys {list(inputs)}."
                )
            extra = [k for k in inputs if k not in expected]
            if extra:
                warnings.warn(
                    f"Model {self.name!r} ignores input keys {extra}; its inputs are {expected}.",
                    stacklevel=3)
            return [inputs[k] for k in expected]
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != n:
                if n == 1 and not isinstance(inputs[0], (list, tuple, dict, KerasTensor)) \
                        and not hasattr(inputs[0], "shape"):
                    return [inputs]
                raise ValueError(
                    f"Model {self.name!r} expects {n} input(s) ({', '.join(expected)}), but "
                    f"received a {type(inputs).__name__} of {len(inputs)}. Pass one array per "
                    "input, in that order, or a dict keyed by input name."
                )
            return list(inputs)
        if n != 1:
            raise ValueError(
                f"Model {self.name!r} expects {n} inputs ({', '.join(expected)}), but received "
                "a single value. Pass a list in that order or a dict keyed by input name."
            )
        return [inputs]

    def _check_input_shape(self, i, value_shape):
        expected = self.inputs[i].shape
        ok = len(value_shape) == len(expected) and all(
            e is None or v is None or e == v for e, v in zip(expected, value_shape))
        if not ok:
            raise ValueError(
                f"Input {self.input_names[i]!r} of model {self.name!r} expects arrays of shape "
                f"{expected} (None: any size), but received shape {tuple(value_shape)}."
            )

    def _prepare_inputs(self, inputs):
        flat = self._standardize_inputs(inputs)
        device = next((p.device for p in self.parameters()), None)
        out = []
        for i, x in enumerate(flat):
            if isinstance(x, KerasTensor):
                raise TypeError("Mixing symbolic and real inputs in one model call is not supported.")
            if not isinstance(x, torch.Tensor):
                x = torch.as_tensor(np.asarray(x))
            self._check_input_shape(i, tuple(x.shape))
            dtype, int_ok = self._input_casts[i]
            if x.dtype != dtype and not (int_ok and not x.is_floating_point()):
                x = x.to(dtype)
            if device is not None and x.device != device:
                x = x.to(device)
            out.append(x)
        return out

    def _pack_outputs(self, values):
        return tree.pack_like(self._outputs_struct, values)

    def call(self, inputs, training=None, mask=None):
        if not getattr(self, "_is_graph", False):
            raise NotImplementedError(
                f"Model {self.name!r} has no graph and its class does not define `call`. Either "
                "build it as Model(inputs, outputs) or subclass Model and define call()."
            )
        flat = self._prepare_inputs(inputs)
        masks = None
        if mask is not None:
            masks = tree.flatten(mask) if isinstance(mask, (list, tuple)) else [mask]
        values = functional.run_steps(self._steps, self._n_slots, flat, self._output_slots,
                                      training, masks)
        return self._pack_outputs(values)

    def compute_output_spec(self, inputs, *args, **kwargs):
        if not getattr(self, "_is_graph", False):
            return super().compute_output_spec(inputs, *args, **kwargs)
        flat = self._standardize_inputs(inputs)
        for i, t in enumerate(flat):
            self._check_input_shape(i, t.shape)
        specs = {}
        for t, s in zip(self.inputs, flat):
            specs[id(t)] = s
        for step in self._steps:
            node = step.node
            args_ = tree.map_structure(
                lambda t: specs[id(t)] if isinstance(t, KerasTensor) else t, node.args)
            kw = tree.map_structure(
                lambda t: specs[id(t)] if isinstance(t, KerasTensor) else t, node.kwargs)
            out = node.layer.compute_output_spec(*args_, **kw)
            for t, s in zip(node.output_tensors, tree.flatten(out)):
                specs[id(t)] = s
        return tree.pack_like(self._outputs_struct, [specs[id(t)] for t in self.outputs])

    def _symbolic_mask(self, inputs, in_masked):
        return False

    def build(self, input_shape):
        self._build_input_shape = input_shape  # saved, so a loaded subclassed model can rebuild
        self.built = True

    # ------------------------------------------------------------------ training
    optimizer = None
    loss = None
    stop_training = False
    history = None

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile=False, auto_scale_loss=True):
        """Configure the model for training.

        This deliberately shadows `torch.nn.Module.compile`: as in Keras, `compile` sets the
        optimizer, losses and metrics. For torch's compiler use `torch.compile(model)`, or
        `jit_compile=True` here to run the training step through it.

        Args:
            optimizer: a name (`"rmsprop"`, `"adam"`, ...) or a `plexus.optimizers` object.
            loss: a name, a function `fn(y_true, y_pred)`, a `plexus.losses.Loss`, or for
                several outputs a list (in output order) or a dict keyed by output name.
            loss_weights: a list or dict of scalars weighting each output's loss.
            metrics: a list of metrics for every output, a list of lists (one per output), or a
                dict keyed by output name. `"accuracy"`/`"acc"` picks binary, categorical or
                sparse accuracy from the shapes of targets and predictions.
            weighted_metrics: metrics that also receive `sample_weight`.
            jit_compile: `True` compiles forward, losses and gradients into one
                `torch.compile` graph (the optimizer update stays eager). Compiling takes
                seconds on the first batch (and once more for a differently sized last batch);
                after that a step of a small model is several times faster. `"auto"`, like
                `False`, runs eagerly, as Keras does on the torch backend.
            auto_scale_loss: when the model's dtype policy is `"mixed_float16"`, wrap the
                optimizer in a `plexus.optimizers.LossScaleOptimizer` (dynamic loss scaling).
        """
        from plexus.training import trainer
        trainer.compile(self, optimizer, loss, loss_weights, metrics, weighted_metrics,
                        run_eagerly, steps_per_execution, jit_compile, auto_scale_loss)
        self._compile_config = {
            "optimizer": self.optimizer, "loss": loss, "loss_weights": loss_weights,
            "metrics": metrics, "weighted_metrics": weighted_metrics,
            "run_eagerly": run_eagerly, "steps_per_execution": steps_per_execution,
            "jit_compile": jit_compile}

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train the model for `epochs` passes over the data; returns a `History`.

        `x`: an array, a list of arrays (one per input) or a dict keyed by input name; or a
        generator / `torch.utils.data.DataLoader` yielding `(x, y)` or `(x, y, sample_weight)`.
        `y`: likewise, one per output. Training runs on the device of the model's parameters.
        `batch_size` defaults to 32; `verbose` is `"auto"` (1), 0, 1 (bar) or 2 (one line per
        epoch).
        """
        from plexus.training import trainer
        return trainer.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                           validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                           steps_per_epoch, validation_steps, validation_batch_size,
                           validation_freq)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss and metrics on the data: a scalar (loss only), a list (loss, each output's
        loss, then the metrics), or a dict with `return_dict=True`."""
        from plexus.training import trainer
        return trainer.evaluate(self, x, y, batch_size, verbose, sample_weight, steps,
                                callbacks, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Predictions as NumPy arrays (a list or dict of them for several outputs)."""
        from plexus.training import trainer
        return trainer.predict(self, x, batch_size, verbose, steps, callbacks)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One training step on exactly this batch; returns its loss (and metrics)."""
        from plexus.training import trainer
        return trainer.train_on_batch(self, x, y, sample_weight, class_weight, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) on exactly this batch, without training."""
        from plexus.training import trainer
        return trainer.test_on_batch(self, x, y, sample_weight, return_dict)

    def predict_on_batch(self, x):
        """Predictions for exactly this batch, as NumPy arrays."""
        from plexus.training import trainer
        return trainer.predict_on_batch(self, x)

    @property
    def metrics_names(self):
        """Names of the values `evaluate` reports: `loss`, each output's loss, the metrics."""
        from plexus.training import trainer
        return trainer.metrics_names(self)

    @property
    def metrics(self):
        """The metric objects tracked during training (the loss trackers first)."""
        st = self.__dict__.get("_compile_state")
        return [] if st is None else [m for _, m in st.all_metrics()]

    # ------------------------------------------------------------------ display
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print a table of the layers: name (type), output shape, parameter count, and for
        graphs with branches the layers each one is connected to."""
        from plexus.models.summary import print_summary
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      expand_nested=expand_nested, show_trainable=show_trainable,
                      layer_range=layer_range)

    def get_config(self):
        from plexus.models.config import functional_config
        return functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from plexus.models.config import functional_from_config
        return functional_from_config(cls, config, custom_objects)

    # ------------------------------------------------------------------ saving
    def save(self, filepath, overwrite=True, **kwargs):
        """Save architecture, weights, compile config and optimizer state to a `.keras` file
        (readable by Keras 3). See `plexus.saving.save_model`."""
        from plexus.saving.api import save_model
        save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights to `*.weights.h5` (Keras 3 layout) or `*.h5` (Keras 2 layout)."""
        from plexus.saving.api import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False, by_name=False):
        """Load weights from a `.weights.h5`, Keras 2 `.h5` (`by_name=True` to match layer
        names) or `.keras` file. Nothing changes unless the whole file matches the model."""
        from plexus.saving.api import load_weights
        load_weights(self, filepath, skip_mismatch=skip_mismatch, by_name=by_name)

    def to_json(self, **kwargs):
        """The architecture as a JSON string; `plexus.models.model_from_json` reads it back."""
        import json
        from plexus.saving.api import model_to_config
        return json.dumps(model_to_config(self), **kwargs)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _unflatten_single(struct):
    if isinstance(struct, (list, tuple)) and len(struct) == 1:
        return struct[0]
    return struct
