"""InceptionResNetV2 (Szegedy et al., 2017): Inception branches added to a scaled residual.

Reference: [Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning](
https://arxiv.org/abs/1602.07261).
"""
from plexus import layers
from plexus.applications import builder, imagenet_utils

_FILES = ("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5",
          "e693bd0210a403b3192acc6073ad2e96",
          "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
          "d19885ff4a710c122648d3b5c3b684e4")
# Residual branches of each block type: lists of (filters, kernel size) convolutions in a chain.
_BRANCHES = {
    "block35": (((32, 1),), ((32, 1), (32, 3)), ((32, 1), (48, 3), (64, 3))),
    "block17": (((192, 1),), ((128, 1), (160, (1, 7)), (192, (7, 1)))),
    "block8": (((192, 1),), ((192, 1), (224, (1, 3)), (256, (3, 1)))),
}


class CustomScaleLayer(layers.Layer):
    """`inputs[0] + inputs[1] * scale`: the shortcut plus the scaled residual.

    Args:
        scale: the factor of the residual.
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def call(self, inputs):
        return inputs[0] + inputs[1] * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def conv2d_bn(x, filters, kernel_size, strides=1, padding="same", activation="relu",
              use_bias=False, name=None):
    """Conv2D, then BatchNormalization without scale unless the convolution has a bias, then
    the activation (default names unless `name`: `{name}`, `{name}_bn`, `{name}_ac`)."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
                      name=name)(x)
    if not use_bias:
        x = layers.BatchNormalization(axis=3, scale=False,
                                      name=None if name is None else f"{name}_bn")(x)
    if activation is not None:
        x = layers.Activation(activation, name=None if name is None else f"{name}_ac")(x)
    return x


def _chain(x, convs):
    for filters, kernel in convs:
        x = conv2d_bn(x, filters, kernel)
    return x


def inception_resnet_block(x, scale, block_type, block_idx, activation="relu"):
    """Parallel branches, concatenated, projected back by a 1x1 convolution with bias and
    added to `x` as `x + scale * residual`."""
    name = f"{block_type}_{block_idx}"
    mixed = layers.Concatenate(axis=3, name=f"{name}_mixed")(
        [_chain(x, convs) for convs in _BRANCHES[block_type]])
    up = conv2d_bn(mixed, x.shape[3], 1, activation=None, use_bias=True, name=f"{name}_conv")
    x = CustomScaleLayer(scale)([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_ac")(x)
    return x


def _stem(x):
    """The 299 -> 35 stem and the mixed_5b Inception block."""
    x = conv2d_bn(x, 32, 3, strides=2, padding="valid")
    x = conv2d_bn(x, 32, 3, padding="valid")
    x = conv2d_bn(x, 64, 3)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = conv2d_bn(x, 80, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, padding="valid")
    x = layers.MaxPooling2D(3, strides=2)(x)
    b0 = conv2d_bn(x, 96, 1)
    b1 = conv2d_bn(conv2d_bn(x, 48, 1), 64, 5)
    b2 = _chain(x, ((64, 1), (96, 3), (96, 3)))
    bp = conv2d_bn(layers.AveragePooling2D(3, strides=1, padding="same")(x), 64, 1)
    return layers.Concatenate(axis=3, name="mixed_5b")([b0, b1, b2, bp])


def _reduction_a(x):
    """mixed_6a: 35 -> 17."""
    b0 = conv2d_bn(x, 384, 3, strides=2, padding="valid")
    b1 = conv2d_bn(_chain(x, ((256, 1), (256, 3))), 384, 3, strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    return layers.Concatenate(axis=3, name="mixed_6a")([b0, b1, bp])


def _reduction_b(x):
    """mixed_7a: 17 -> 8."""
    b0 = conv2d_bn(conv2d_bn(x, 256, 1), 384, 3, strides=2, padding="valid")
    b1 = conv2d_bn(conv2d_bn(x, 256, 1), 288, 3, strides=2, padding="valid")
    b2 = conv2d_bn(_chain(x, ((256, 1), (288, 3))), 320, 3, strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    return layers.Concatenate(axis=3, name="mixed_7a")([b0, b1, b2, bp])


def InceptionResNetV2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                      pooling=None, classes=1000, classifier_activation="softmax",
                      name="inception_resnet_v2"):
    """The InceptionResNetV2 network, with ImageNet weights by default.

    Layer names (default names such as `conv2d_7` included, counted from a fresh
    `clear_session()`), order and parameter counts match `keras.applications.InceptionResNetV2`.
    Preprocess images with `plexus.applications.inception_resnet_v2.preprocess_input` (scales
    to -1..1).
    """
    img_input, path = builder.prepare(
        weights, include_top, classes, name or "InceptionResNetV2", classifier_activation,
        pooling, input_tensor, input_shape, 299, 75, _FILES, "inception_resnet_v2")
    x = _stem(img_input)
    for block_idx in range(1, 11):
        x = inception_resnet_block(x, 0.17, "block35", block_idx)
    x = _reduction_a(x)
    for block_idx in range(1, 21):
        x = inception_resnet_block(x, 0.1, "block17", block_idx)
    x = _reduction_b(x)
    for block_idx in range(1, 10):
        x = inception_resnet_block(x, 0.2, "block8", block_idx)
    x = inception_resnet_block(x, 1.0, "block8", 10, activation=None)
    x = conv2d_bn(x, 1536, 1, name="conv_7b")
    x = builder.classifier_top(x, include_top, pooling, classes, classifier_activation)
    return builder.finish(input_tensor, img_input, x, name, path)


builder.add_args_doc(InceptionResNetV2, 75, 299)


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to InceptionResNetV2's input: values scaled to -1..1."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
