"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Embedding, Lambda."""
import math

import torch
import torch.nn.functional as F

from plexus import activations, constraints, initializers, regularizers
from plexus.graph import tree
from plexus.graph.tensor import KerasTensor
from plexus.layers import closed_form as cf
from plexus.layers import conv_utils as cu
from plexus.layers.layer import Layer


def reject_lora(cls_name, lora_rank):
    """LoRA adapters are not implemented: a `lora_rank` other than None is an error, not a
    silently ignored argument."""
    if lora_rank is not None:
        raise ValueError(
            f"{cls_name}: lora_rank={lora_rank!r} asks for LoRA adapters, which plexus does not "
            "implement. Remove lora_rank (train the full kernel, or freeze the layer with "
            "trainable=False).")


def _last_dim(layer, input_shape):
    dim = input_shape[-1] if input_shape else None
    if dim is None:
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) needs the last dimension of its input "
            f"to be known, but received an input of shape {tuple(input_shape)}. Give the Input a "
            "fixed feature size, e.g. Input(shape=(None, 64))."
        )
    return dim


class Dense(Layer):
    """A densely connected layer: `activation(inputs @ kernel + bias)`.

    Args:
        units: size of the output's last dimension.
        activation: an activation name or function; none by default.
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: initializers for the kernel `(in, units)` and bias.

    Input shape: `(batch, ..., in)`. Output shape: `(batch, ..., units)`.

    Example:
        >>> y = Dense(32, activation="relu")(Input(shape=(64,)))
        >>> y.shape
        (None, 32)
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 lora_rank=None, **kwargs):
        super().__init__(**kwargs)
        reject_lora("Dense", lora_rank)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"Dense units must be a positive integer; received {units!r}.")
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        resolve_weight_args(self, kernel_initializer=kernel_initializer,
                            bias_initializer=bias_initializer,
                            kernel_regularizer=kernel_regularizer,
                            bias_regularizer=bias_regularizer,
                            activity_regularizer=activity_regularizer,
                            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        in_dim = _last_dim(self, input_shape)
        self.kernel = self.add_weight(shape=(in_dim, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.units,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")
        self.built = True

    def call(self, inputs):
        kernel, bias = self.kernel, self.bias
        if inputs.dim() == 2 and bias is not None and inputs.dtype == kernel.dtype:
            y = torch.addmm(bias, inputs, kernel)  # the kernel as stored: no transposed view
        else:
            if not inputs.is_floating_point():  # integer data: promoted, as Keras's matmul
                inputs = inputs.to(kernel.dtype)
            y = F.linear(inputs, kernel.t(), bias)
        return self.activation(y)

    def _closed_form_rule(self, in_rank):
        kernel, bias = self.kernel, self.bias
        if in_rank != 2 or kernel.dtype != torch.float32:
            return None
        return cf.DenseRule.make(self, (kernel,) if bias is None else (kernel, bias))

    def compute_output_shape(self, input_shape):
        in_dim = _last_dim(self, input_shape)
        if self.built and in_dim != self.kernel.shape[0]:
            raise ValueError(
                f"Layer {self.name!r} (Dense) was built for inputs with last dimension "
                f"{self.kernel.shape[0]} (kernel shape {tuple(self.kernel.shape)}), but received "
                f"an input of shape {tuple(input_shape)}."
            )
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                **weight_args_config(self, "kernel_initializer", "bias_initializer",
                                     "kernel_regularizer", "bias_regularizer",
                                     "activity_regularizer", "kernel_constraint",
                                     "bias_constraint")}


def _ser(obj):
    """Keras-style serialization of a regularizer or constraint object (None stays None)."""
    if obj is None:
        return None
    if hasattr(obj, "get_config"):
        return {"module": "keras." + type(obj).__module__.split(".")[-1],
                "class_name": type(obj).__name__, "config": obj.get_config(),
                "registered_name": None}
    return getattr(obj, "__name__", None)

_RESOLVERS = {"initializer": initializers.get, "regularizer": regularizers.get,
              "constraint": constraints.get}


def resolve_weight_args(layer, **args):
    """Store `<weight>_initializer`, `<weight>_regularizer`, `<weight>_constraint` and
    `activity_regularizer` arguments on `layer`, each resolved from a name, a config or an
    object."""
    for key, value in args.items():
        setattr(layer, key, _RESOLVERS[key.rsplit("_", 1)[-1]](value))


def weight_args_config(layer, *names):
    """The config entries of the weight arguments `resolve_weight_args` stored, in the order
    given: initializers serialized, regularizers and constraints serialized or None."""
    return {key: initializers.serialize(getattr(layer, key)) if key.endswith("_initializer")
            else _ser(getattr(layer, key)) for key in names}


class Activation(Layer):
    """Applies an activation function: `Activation("relu")`."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True

    def call(self, inputs):
        return self.activation(inputs)

    def _closed_form_rule(self, in_rank):
        return cf.ActivationRule.make(self)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


def _resolve_training(layer, training):
    return layer.training if training is None else bool(training)


class Dropout(Layer):
    """Sets a fraction `rate` of inputs to 0 during training, scaling the rest by `1/(1-rate)`.

    Inactive at inference (`model.predict`, `model(x)`), active in `fit`.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"Dropout rate must be between 0 and 1; received {rate!r}.")
        self.rate = float(rate)
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.seed = seed
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not _resolve_training(self, training) or self.rate == 0:
            return inputs
        if self.noise_shape is None:
            return F.dropout(inputs, self.rate, True)
        shape = tuple(inputs.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))
        keep = torch.empty(shape, device=inputs.device, dtype=inputs.dtype).bernoulli_(1 - self.rate)
        return inputs * keep / (1 - self.rate)

    def _closed_form_rule(self, in_rank):
        if self.noise_shape is not None or self.rate >= 1:
            return None  # (rate 1: F.dropout gives zeros, the scaled mask would give 0/0)
        return cf.DropoutRule(self)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _output_dtype(self, inputs):
        return inputs.dtype

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape,
                "seed": self.seed}


class Flatten(Layer):
    """Flattens each sample: `(batch, d1, d2, ...)` -> `(batch, d1 * d2 * ...)`."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = cu.normalize_data_format(data_format, type(self).__name__)

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = inputs.permute(0, *range(2, inputs.ndim), 1)
        return inputs.reshape(inputs.shape[0], -1)

    def _closed_form_rule(self, in_rank):
        if self.data_format == "channels_first" and in_rank > 2:
            return None
        return cf.FlattenRule(self)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def _output_dtype(self, inputs):
        return inputs.dtype

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (batch dimension excluded; one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)
        if sum(1 for d in self.target_shape if d == -1) > 1:
            raise ValueError(f"Reshape target_shape {self.target_shape} may contain at most one -1.")

    def call(self, inputs):
        return inputs.reshape((inputs.shape[0],) + self.target_shape)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        known = None if any(d is None for d in rest) else math.prod(rest)
        target = list(self.target_shape)
        fixed = math.prod(d for d in target if d != -1)
        if -1 in target:
            i = target.index(-1)
            if known is None:
                target[i] = None
            elif fixed == 0 or known % fixed:
                raise ValueError(self._mismatch(input_shape))
            else:
                target[i] = known // fixed
        elif known is not None and known != fixed:
            raise ValueError(self._mismatch(input_shape))
        return (input_shape[0],) + tuple(target)

    def _mismatch(self, input_shape):
        return (f"Layer {self.name!r} (Reshape) cannot reshape an input of shape "
                f"{tuple(input_shape)} to target_shape {self.target_shape}: the number of "
                "elements per sample differs.")

    def _output_dtype(self, inputs):
        return inputs.dtype

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


class Embedding(Layer):
    """Turns integer ids into dense vectors: `(batch, length)` -> `(batch, length, output_dim)`.

    Args:
        input_dim: vocabulary size (largest id + 1).
        output_dim: size of each vector.
        mask_zero: treat id 0 as padding; downstream recurrent layers skip those steps.
        input_length: accepted for Keras 2 code; fills in an unknown sequence length in the
            output shape.
    """

    _accepts_int_inputs = True  # ids stay integers: the model does not cast them to float
    _autocast = _autocast_weights = False  # mixed precision: look up float32 rows, cast them
    _cast_outputs = True

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, input_length=None, activity_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        reject_lora("Embedding", lora_rank)
        if not isinstance(input_dim, int) or input_dim <= 0:
            raise ValueError(f"Embedding input_dim must be a positive integer; received {input_dim!r}.")
        if not isinstance(output_dim, int) or output_dim <= 0:
            raise ValueError(f"Embedding output_dim must be a positive integer; received {output_dim!r}.")
        self.input_dim, self.output_dim = input_dim, output_dim
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        if embeddings_initializer == "uniform":
            self.embeddings_initializer = initializers.RandomUniform(-0.05, 0.05)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.mask_zero = mask_zero
        self.supports_masking = mask_zero
        self.input_length = input_length
        self._initial_weights = weights

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint, name="embeddings")
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def call(self, inputs):
        return self._lookup(inputs, self.embeddings)

    def _lookup(self, inputs, table):
        """The rows of `table` (this layer's table, or a view of it) at the ids `inputs`."""
        if inputs.is_floating_point():
            inputs = inputs.long()
        try:
            return F.embedding(inputs, table)
        except IndexError as e:
            raise ValueError(
                f"Layer {self.name!r} (Embedding) received an id outside [0, {self.input_dim}): "
                f"ids seen range from {int(inputs.min())} to {int(inputs.max())}. Make input_dim "
                "larger than the largest id."
            ) from e

    def _closed_form_rule(self, in_rank):
        if self.mask_zero or self.embeddings.dtype != torch.float32:
            return None
        return cf.EmbeddingRule(self, self.embeddings)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if self.input_length is not None and len(shape) == 2 and shape[1] is None:
            shape[1] = self.input_length
        return tuple(shape) + (self.output_dim,)

    def _makes_mask(self):
        return self.mask_zero

    def _symbolic_mask(self, inputs, in_masked):
        return self.mask_zero

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return inputs != 0

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": _ser(self.embeddings_regularizer),
                "activity_regularizer": _ser(self.activity_regularizer),
                "embeddings_constraint": _ser(self.embeddings_constraint),
                "mask_zero": self.mask_zero}


class Lambda(Layer):
    """Wraps a Python function as a layer: `Lambda(lambda x: x * 2)`.

    Args:
        function: called as `function(inputs, **arguments)` on torch tensors.
        output_shape: the output shape (without batch) or a function of the input shape; traced
            from the function when not given.
        arguments: extra keyword arguments for `function`.
    """

    _accepts_strings = True  # the function decides what it takes

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a callable; received {function!r}.")
        self.function = function
        self._output_shape = output_shape
        self.mask = mask
        self.arguments = arguments or {}

    def call(self, inputs, mask=None):
        return self.function(inputs, **self.arguments)

    def compute_output_spec(self, inputs, *args, **kwargs):
        if self._output_shape is None:
            return self._traced_output_spec(inputs, *args, **kwargs)
        in_shape = inputs.shape if isinstance(inputs, KerasTensor) else [t.shape for t in inputs]
        if callable(self._output_shape):
            shape = tuple(self._output_shape(in_shape))
        else:
            shape = tuple(self._output_shape)
            batch = in_shape[0] if isinstance(inputs, KerasTensor) else in_shape[0][0]
            shape = (batch,) + shape
        return KerasTensor(shape, "float32")

    def get_config(self):
        config = super().get_config()
        config.update({"function": self.function, "output_shape": self._output_shape,
                       "arguments": self.arguments})
        return config


class Identity(Layer):
    """Returns its inputs unchanged (any structure of tensors); a placeholder in a graph.

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs, *args, **kwargs):
        return tree.map_structure(lambda t: KerasTensor(t.shape, t.dtype), inputs)
