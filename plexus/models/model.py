"""`Model`: a layer with training and inference features (`compile`, `fit`, `predict`, ...).

`Model(inputs, outputs)` returns a `Functional` model (`plexus/models/functional.py`); a class
that subclasses `Model` defines its layers in `__init__` and its computation in `call`. The
training doors Keras documents (`train_step`, `test_step`, `predict_step`, `compute_loss`,
`compute_metrics`, `metrics`) are methods here; `fit`, `evaluate` and `predict` call them, so a
subclass that overrides one changes what they do.
"""
import functools
import inspect
import warnings

import torch

from plexus.distribution import runtime as distributed
from plexus.graph import tree
from plexus.graph.inputs import to_tensor
from plexus.layers.layer import Layer
from plexus.saving import registry
from plexus.training import trainer
from plexus.training.data import unpack_x_y_sample_weight
from plexus.training.metrics import Metric


def functional_init_arguments(args, kwargs):
    """Whether `Model(...)` was called with a graph's inputs and outputs."""
    return (len(args) == 2 or (len(args) == 1 and "outputs" in kwargs)
            or ("inputs" in kwargs and "outputs" in kwargs))


def _takes_keyword(fn, name):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class Model(Layer):
    """A model groups layers into an object with training and inference features.

    Built from symbolic tensors, it is a functional model (an instance of `Functional`):

        inputs = plexus.Input(shape=(64,))
        x = plexus.layers.Dense(32, activation="relu")(inputs)
        outputs = plexus.layers.Dense(10, activation="softmax")(x)
        model = plexus.Model(inputs, outputs)

    Subclassing also works: define layers in `__init__` and the computation in `call`. A
    subclass may override `train_step`, `test_step`, `predict_step`, `compute_loss` or
    `compute_metrics` to change what `fit`, `evaluate` and `predict` do; a subclass called with
    `(inputs, outputs)` becomes a functional model with those overrides.

    `Model.compile` deliberately shadows `torch.nn.Module.compile`: it configures training as in
    Keras. Use `torch.compile(model)` for torch's compiler.
    """

    # A model's layers cast their own inputs and weights (mixed precision); the model does not.
    _autocast = _autocast_weights = False
    _accepts_strings = True  # each input decides (Input(dtype="string") takes text)

    _name_prefix = "functional"
    _functional_class = None  # set by plexus/models/functional.py

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("compute_loss")
        if callable(fn) and not _takes_keyword(fn, "training"):
            # As in Keras, an override written without `training=` is called without it.
            @functools.wraps(fn)
            def compute_loss(self, *args, training=True, **kw):
                return fn(self, *args, **kw)

            cls.compute_loss = compute_loss

    def __new__(cls, *args, **kwargs):
        if cls is Model and functional_init_arguments(args, kwargs):
            cls = Model._functional_class
        obj = super().__new__(cls, *args, **kwargs)
        # (fit refuses a model made before set_distribution: see plexus.distribution)
        object.__setattr__(obj, "_distribution_at_creation", distributed.current())
        return obj

    def __init__(self, *args, **kwargs):
        functional = Model._functional_class
        if functional_init_arguments(args, kwargs) and not isinstance(self, functional):
            _inject_functional(type(self))  # as Keras: the subclass becomes a Functional one
            functional.__init__(self, *args, **kwargs)
            return
        if args:
            raise TypeError(
                f"{type(self).__name__}() takes no positional arguments besides a graph's "
                f"inputs and outputs: Model(inputs, outputs); received {len(args)}.")
        for key in ("inputs", "outputs"):
            if key in kwargs:
                raise ValueError(
                    "A functional Model needs both inputs and outputs: Model(inputs, outputs). "
                    "To subclass Model instead, call super().__init__() with neither.")
        super().__init__(name=kwargs.pop("name", None), trainable=kwargs.pop("trainable", True),
                         dtype=kwargs.pop("dtype", None), **kwargs)
        self._init_model_state()

    def _init_model_state(self):
        self.compiled = False
        self.train_function = self.test_function = self.predict_function = None

    # ------------------------------------------------------------------ layers
    @property
    def layers(self):
        """The model's layers: its sublayers in the order they were set as attributes."""
        return [m for m in self._modules.values() if isinstance(m, Layer)]

    def _sublayers(self):
        return self.layers

    def reset_states(self):
        """Zero the carried states of every stateful recurrent layer in the model."""
        for layer in self.modules():
            if layer is not self and "_n_states" in layer.__dict__:
                layer.reset_state()

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

    def _no_graph(self, what):
        return AttributeError(
            f"Model {self.name!r} is a subclassed model without a graph, so it has no "
            f"`{what}`. Build it functionally with Model(inputs, outputs) to get one.")

    @property
    def input(self):
        raise self._no_graph("input")

    @property
    def output(self):
        raise self._no_graph("output")

    @property
    def input_names(self):
        raise self._no_graph("input_names")

    @property
    def output_names(self):
        raise self._no_graph("output_names")

    def call(self, inputs, training=None, mask=None):
        raise NotImplementedError(
            f"Model {self.name!r} has no graph and its class does not define `call`. Either "
            "build it as Model(inputs, outputs) or subclass Model and define call().")

    # How fit/evaluate/predict see a model without a graph: inputs keep the structure the
    # user gave (as tensors), outputs are flattened in order.
    def _standardize_inputs(self, inputs, device=None):
        return [tree.map_structure(lambda v: to_tensor(v, device, what="input"), inputs)]

    def _output_names_for_data(self):
        return None

    def _forward_flat(self, xs, training):
        return tree.flatten(self(xs[0], training=training))

    def _pack_inputs(self, xs):
        return xs[0]

    def _pack_outputs(self, values):
        return values[0] if len(values) == 1 else list(values)

    def build(self, input_shape):
        self._build_input_shape = input_shape  # saved, so a loaded subclassed model can rebuild
        self.built = True

    # ------------------------------------------------------------------ configuring training
    optimizer = None
    loss = None
    stop_training = False
    history = None
    run_eagerly = False
    jit_compile = False
    steps_per_execution = 1

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
            run_eagerly: `True` runs `train_step`/`test_step` as plain Python with autograd on
                every batch (no closed-form or compiled step): slower, easiest to debug.
            steps_per_execution: how many batches run back to back between two calls of the
                callbacks' batch hooks (which then see every n-th batch, as in Keras).
            jit_compile: `True` compiles forward, losses and gradients into one
                `torch.compile` graph (the optimizer update stays eager); an overridden
                `train_step` is compiled whole. Compiling takes seconds on the first batch.
                `"auto"`, like `False`, runs eagerly, as Keras does on the torch backend.
            auto_scale_loss: when the model's dtype policy is `"mixed_float16"`, wrap the
                optimizer in a `plexus.optimizers.LossScaleOptimizer` (dynamic loss scaling).
        """
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
        epoch). Every batch goes through `train_step`.
        """
        return trainer.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                           validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                           steps_per_epoch, validation_steps, validation_batch_size,
                           validation_freq)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss and metrics on the data: a scalar (loss only), a list (loss, each output's
        loss, then the metrics), or a dict with `return_dict=True`. Every batch goes through
        `test_step`."""
        return trainer.evaluate(self, x, y, batch_size, verbose, sample_weight, steps,
                                callbacks, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Predictions as NumPy arrays (a list or dict of them for several outputs). Every
        batch goes through `predict_step`."""
        return trainer.predict(self, x, batch_size, verbose, steps, callbacks)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One training step on exactly this batch; returns its loss (and metrics)."""
        return trainer.train_on_batch(self, x, y, sample_weight, class_weight, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) on exactly this batch, without training."""
        return trainer.test_on_batch(self, x, y, sample_weight, return_dict)

    def predict_on_batch(self, x):
        """Predictions for exactly this batch, as NumPy arrays."""
        return trainer.predict_on_batch(self, x)

    # ------------------------------------------------------------------ the steps
    def train_step(self, data):
        """One training step on a batch; `fit` calls it for every batch.

        `data` is what the batch holds: `(x, y)`, `(x, y, sample_weight)` or `x` (tensors on
        the model's device, in the structure given to `fit`). The default runs the forward
        pass, `compute_loss`, backpropagation and `self.optimizer.apply`, then returns
        `compute_metrics(...)`: a dict of metric values. Override it to train another way; a
        model that does not override it trains through a faster equivalent of this method.
        """
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=True)
        self.zero_grad()
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                 training=True)
        self._loss_tracker.update_state(loss.detach(), sample_weight=trainer.batch_size_of(x))
        weights = self.trainable_weights
        if weights:
            if not loss.requires_grad:
                raise trainer.untrainable_loss(self)
            self.optimizer.scale_loss(loss).backward()
            with torch.no_grad():
                self.optimizer.apply([w.grad for w in weights], weights)
            trainer.apply_constraints(self)
        else:
            warnings.warn(f"Model {self.name!r} has no trainable weights: this step updates "
                          "nothing.", stacklevel=2)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data):
        """One evaluation step on a batch (`evaluate` calls it): the forward pass in inference
        mode, `compute_loss`, then `compute_metrics(...)`; returns a dict of metric values."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                 training=False)
        self._loss_tracker.update_state(loss.detach(), sample_weight=trainer.batch_size_of(x))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def predict_step(self, data):
        """The predictions for one batch (`predict` calls it): `self(x, training=False)`."""
        x, _, _ = unpack_x_y_sample_weight(data)
        return self(x, training=False)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The total loss of a batch: the compiled losses (weighted, per output) plus
        `sum(self.losses)` (weight regularizers, activity regularizers, `add_loss`).

        Override it to compute the loss another way; the default `train_step` and
        `test_step` call it. Returns a scalar tensor.
        """
        return trainer.compute_loss(self, y, y_pred, sample_weight)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics with a batch and return `get_metrics_result()`."""
        trainer.update_compiled_metrics(self, y, y_pred, sample_weight)
        return self.get_metrics_result()

    def get_metrics_result(self):
        """The current value of every metric in `self.metrics`, as a dict of tensors."""
        return trainer.metrics_result(self)

    @property
    def metrics(self):
        """The metric objects `fit` resets each epoch: the loss tracker (a `Mean` named
        `"loss"`) once compiled, each output's loss tracker, the compiled metrics once the
        first batch made them, then the `Metric` objects set as attributes of the model."""
        return trainer.model_metrics(self)

    @property
    def metrics_names(self):
        """Names of the values `evaluate` reports: `loss`, each output's loss, the metrics."""
        return trainer.metrics_names(self)

    def reset_metrics(self):
        """Reset the state of every metric in `self.metrics`."""
        for m in self.metrics:
            m.reset_state()

    @property
    def _loss_tracker(self):
        return trainer.compile_state(self).loss_tracker

    def _tracked_metrics(self):
        """`Metric` objects set as attributes of the model (`self.loss_tracker = Mean(...)`)."""
        return [v for v in self.__dict__.values() if isinstance(v, Metric)]

    def _runs_default_step(self, kind):
        """Whether `kind`'s step ("train", "test", "predict") is the default one (no door of
        it overridden, not `run_eagerly`): `fit` & co. may then run it their faster way."""
        cls = type(self)
        return not self.run_eagerly and all(
            getattr(cls, name) is getattr(Model, name) for name in _DOORS[kind])

    def _metrics_overridden(self):
        return type(self).metrics is not Model.metrics

    def make_train_function(self, force=False):
        """The function `fit` calls on each batch (`self.train_function`), made once."""
        if self.train_function is None or force:
            self.train_function = trainer.make_step_function(self, "train")
        return self.train_function

    def make_test_function(self, force=False):
        """The function `evaluate` calls on each batch (`self.test_function`), made once."""
        if self.test_function is None or force:
            self.test_function = trainer.make_step_function(self, "test")
        return self.test_function

    def make_predict_function(self, force=False):
        """The function `predict` calls on each batch (`self.predict_function`), made once."""
        if self.predict_function is None or force:
            self.predict_function = trainer.make_step_function(self, "predict")
        return self.predict_function

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
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from plexus.models.config import model_from_config
        return model_from_config(cls, config, custom_objects)

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

    def export(self, filepath, format="onnx", verbose=None, input_signature=None, **kwargs):
        """Export the model for inference without plexus: `format="onnx"` writes an ONNX file
        (through `torch.onnx.export`, for ONNX Runtime and other runtimes), `format="torch"` a
        `torch.export` program (`.pt2`, for `torch.export.load`). The batch axis (and any other
        `None` axis of the inputs) is dynamic; inputs and outputs are named after the model's.
        See `plexus.models.export.export_model`."""
        from plexus.models.export import export_model
        return export_model(self, filepath, format=format, verbose=verbose,
                            input_signature=input_signature, **kwargs)

    def to_json(self, **kwargs):
        """The architecture as a JSON string; `plexus.models.model_from_json` reads it back."""
        import json
        from plexus.saving.api import model_to_config
        return json.dumps(model_to_config(self), **kwargs)

    def __repr__(self):
        """The module tree, as torch prints a module (`summary()` prints Keras's table)."""
        from plexus.models.display import module_tree
        return module_tree(self)

    # ------------------------------------------------------------------ pickling and copies
    def __getstate__(self):
        """`pickle`, `torch.save(model)` and `copy.deepcopy`: the step functions `fit`,
        `evaluate` and `predict` made, and the compiled training plans, are caches (closures,
        compiled code) and are made again on the copy's first use."""
        state = super().__getstate__()
        for key in ("train_function", "test_function", "predict_function"):
            if key in state:
                state[key] = None
        st = state.get("_compile_state")
        if st is not None and getattr(st, "cache", None):
            # its cache (plans, compiled functions) is made again on the copy's first step
            copied = object.__new__(type(st))
            copied.__dict__.update(st.__dict__)
            copied.cache = {}
            state["_compile_state"] = copied
        return state


# The methods whose override changes each step: a model overriding none of them runs the
# default step, which fit/evaluate/predict run their faster way.
_DOORS = {
    "train": ("train_step", "compute_loss", "compute_metrics", "get_metrics_result", "metrics"),
    "test": ("test_step", "compute_loss", "compute_metrics", "get_metrics_result", "metrics"),
    "predict": ("predict_step",),
}


def _inject_functional(cls):
    """Put `Functional` in place of `Model` among the bases of `cls` (and of its bases), as
    Keras does when a `Model` subclass is called with `(inputs, outputs)`."""
    functional = Model._functional_class
    if cls is Model:
        return functional
    if cls is object or not issubclass(cls, Model) or issubclass(cls, functional):
        return cls
    cls.__bases__ = tuple(_inject_functional(base) for base in cls.__bases__)
    return cls


registry.register_model_class("Model", Model)
