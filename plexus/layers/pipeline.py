"""`Pipeline`: a plain layer that applies a list of layers in order (typically preprocessing
and augmentation layers), without being a model."""
from torch import nn

from plexus.graph.functional import call_accepts
from plexus.graph.tensor import KerasTensor
from plexus.layers import layer as layer_module
from plexus.layers.layer import Layer


class Pipeline(Layer):
    """Applies `layers` one after the other: `Pipeline([RandomFlip(), RandomRotation(0.1)])`.

    Unlike a `Sequential` model it is just a layer: it has no `fit` or `summary`, and it can
    sit anywhere in a model or in a data pipeline.

    Training mode: a pipeline called on its own (not inside a model) runs its layers in
    training mode unless `training=False` is passed, as in Keras, so augmentations apply; inside
    a model it follows the model (inference in `predict`, training in `fit`). Masks pass from
    one layer to the next.

    Args:
        layers: the list of layers to apply, in order.
        name: the layer's name.

    Example:
        >>> augment = Pipeline([Rescaling(1 / 255), RandomFlip("horizontal")])
        >>> images = augment(batch_of_images)
    """

    _accepts_strings = True  # its first layer decides (a StringLookup takes text)

    def __init__(self, layers, name=None):
        super().__init__(name=name)
        layers = list(layers) if isinstance(layers, (list, tuple, nn.ModuleList)) else layers
        if not isinstance(layers, list) or not all(isinstance(lay, Layer) for lay in layers):
            raise ValueError(
                f"Pipeline {self.name!r}: `layers` must be a list of plexus layers; received "
                f"{layers!r}.")
        # A module list named `layers`: `pipeline.layers[i]` as in Keras, and saved files
        # address the layers at `<pipeline>/layers/<layer>` as Keras's do.
        self.layers = nn.ModuleList(layers)

    def _sublayers(self):
        return list(self.layers)

    def call(self, inputs, training=None, mask=None):
        if training is None:
            # Outermost call (no model around it): Keras's default is training mode.
            training = True if layer_module._call_state().depth <= 1 else self.training
        x = inputs
        for lay in self.layers:
            kwargs = {"training": training} if call_accepts(lay, "training") else {}
            if mask is not None and call_accepts(lay, "mask"):
                kwargs["mask"] = mask
            out = lay(x, **kwargs)
            mask = lay.compute_mask(x, mask)
            x = out
        self.__dict__["_out_mask"] = mask  # the run loop asks for it right after the call
        return x

    def compute_mask(self, inputs, mask=None):
        return self.__dict__.get("_out_mask")

    def compute_output_spec(self, inputs, *args, **kwargs):
        x, masked = inputs, bool(getattr(inputs, "has_mask", False))
        for lay in self.layers:
            lay._maybe_build(x.shape)
            out = lay.compute_output_spec(x)
            if masked or lay._makes_mask():
                masked = bool(lay._symbolic_mask(x, [masked]))
            x = KerasTensor(out.shape, out.dtype)
            x.has_mask = masked
        self.__dict__["_spec_mask"] = masked
        return KerasTensor(x.shape, x.dtype)

    def _makes_mask(self):
        return self.__dict__.get("_spec_mask", False)

    def _symbolic_mask(self, inputs, in_masked):
        return self.__dict__.get("_spec_mask", False)

    def get_config(self):
        from plexus.saving.serialization import serialize_layer
        return {"layers": [serialize_layer(lay) for lay in self.layers], "name": self.name}

    @classmethod
    def from_config(cls, config):
        layers = config.get("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError(
                "A Pipeline config needs `layers`, a list of layer configs; received "
                f"layers={layers!r}.")
        from plexus.saving.serialization import deserialize_keras_object
        built = [lay if isinstance(lay, Layer) else
                 deserialize_keras_object(lay, category="layers") for lay in layers]
        return cls(built, name=config.get("name"))
