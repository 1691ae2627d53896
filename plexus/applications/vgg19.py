"""VGG19: VGG16 with four convolutions in each of the last three blocks."""
from plexus.applications.vgg16 import build_vgg, decode_predictions, preprocess_input

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]


def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg19"):
    """The VGG19 network, with ImageNet weights by default.

    Same arguments as `plexus.applications.VGG16`; layer names, order and parameter counts
    match `keras.applications.VGG19`. Preprocess images with
    `plexus.applications.vgg19.preprocess_input`.

    Example (feature extraction):
        >>> vgg19 = VGG19(weights=None)
        >>> features = Model(inputs=vgg19.input,
        ...                  outputs=[layer.output for layer in vgg19.layers])
    """
    return build_vgg("vgg19", include_top, weights, input_tensor, input_shape, pooling, classes,
                     classifier_activation, name)
