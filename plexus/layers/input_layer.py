"""`Input` and `InputLayer`: where a functional graph starts."""
from plexus.graph.node import Node
from plexus.graph.tensor import KerasTensor, standardize_dtype
from plexus.layers.layer import Layer


class InputLayer(Layer):
    """The layer behind `Input`: it has no weights and produces the graph's symbolic input.

    It is `model.layers[0]` of a functional model and shows in `summary()`.
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None,
                 input_tensor=None, optional=False, name=None, input_shape=None,
                 batch_input_shape=None, **kwargs):
        if shape is None and input_shape is not None:
            shape = input_shape
        if batch_shape is None and batch_input_shape is not None:
            batch_shape = batch_input_shape
        if shape is not None and batch_shape is not None:
            raise ValueError("Pass either `shape` or `batch_shape` to Input, not both.")
        if sparse:
            raise ValueError("Sparse inputs are not supported; pass dense arrays.")
        if batch_shape is None:
            if shape is None:
                raise ValueError(
                    "Input needs a shape: `Input(shape=(64,))` for samples of 64 features "
                    "(use None for sizes that vary, e.g. `shape=(None,)` for sequences)."
                )
            if isinstance(shape, int):
                shape = (shape,)
            if not isinstance(shape, (tuple, list)):
                raise TypeError(f"Input shape must be a tuple such as (64,); received {shape!r}.")
            batch_shape = (batch_size,) + tuple(shape)
        for d in batch_shape:
            if d is not None and (not isinstance(d, int) or d < 0):
                raise ValueError(
                    f"Input shape {tuple(batch_shape)} is invalid: sizes must be non-negative "
                    "integers or None."
                )
        kwargs.pop("dtype_policy", None)
        super().__init__(name=name, **kwargs)  # the layer's policy is the global one
        self._input_dtype = standardize_dtype(dtype)
        self.batch_shape = tuple(batch_shape)
        self.sparse = False
        self.optional = optional
        self.built = True
        tensor = KerasTensor(self.batch_shape, standardize_dtype(dtype), name=self.name)
        Node(self, (), {}, tensor)
        self._input_tensor = tensor

    @property
    def dtype(self):
        """The dtype of the data this input takes (`"float32"` unless given)."""
        return self._input_dtype

    def count_params(self):
        return 0

    def get_config(self):
        return {"batch_shape": self.batch_shape, "dtype": self.dtype, "sparse": False,
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("ragged", None), config.pop("trainable", None)
        return cls(**config)


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
          tensor=None, optional=False):
    """A symbolic input for a functional model.

    Args:
        shape: the shape of one sample, without the batch dimension; `None` for sizes that vary.
        batch_size: a fixed batch size, if any.
        dtype: the data type, `"float32"` by default (`"int32"` for token ids).
        batch_shape: the full shape, batch dimension included (instead of `shape`).
        name: the input's name; also the key for this input when data is passed as a dict.

    Returns:
        A symbolic tensor of shape `(batch_size,) + shape`.

    Example:
        >>> x = Input(shape=(64,))
        >>> x.shape
        (None, 64)
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                       batch_shape=batch_shape, name=name, optional=optional)
    return layer._input_tensor
