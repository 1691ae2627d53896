"""`Pipeline`: preprocessing layers applied in turn, as one layer."""
from torch import nn

from plexus.graph.functional import call_accepts
from plexus.layers.preprocessing.base import DataLayer


class Pipeline(DataLayer):
    """Applies `layers` one after the other (e.g. a chain of augmentations), passing
    `training` on to those that take it.

    Example:
        >>> augment = Pipeline([RandomFlip("horizontal"), RandomRotation(0.1)])
        >>> augment(np.zeros((2, 32, 32, 3))).shape
        torch.Size([2, 32, 32, 3])
    """

    _accepts_strings = True  # the first layer decides what it takes
    _training_from_model = True  # (Keras writes its `training=True` default into saved nodes)

    def __init__(self, layers, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._pipeline_layers = nn.ModuleList(layers)

    @property
    def layers(self):
        return list(self._pipeline_layers)

    def call(self, inputs, training=True, mask=None):
        for layer in self._pipeline_layers:
            kwargs = {"training": training} if training is not None and call_accepts(
                layer, "training") else {}
            if mask is not None and call_accepts(layer, "mask"):
                kwargs["mask"] = mask
            inputs = layer(inputs, **kwargs)
        return inputs

    def compute_output_spec(self, inputs, *args, **kwargs):
        for layer in self._pipeline_layers:
            inputs = layer.compute_output_spec(inputs)
        return inputs

    def get_config(self):
        from plexus.layers.serialization import serialize
        return {"layers": [serialize(layer) for layer in self._pipeline_layers],
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        from plexus.layers.serialization import deserialize
        layers = config.get("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError("A Pipeline config needs 'layers': a list of serialized layers.")
        return cls(**{**config, "layers": [deserialize(x) for x in layers]})
