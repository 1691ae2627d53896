"""Xception (Chollet, 2017): depthwise separable convolutions with residual connections.

Reference: [Xception: Deep Learning with Depthwise Separable Convolutions](
https://arxiv.org/abs/1610.02357).
"""
from plexus import layers
from plexus.applications import builder, imagenet_utils

_FILES = ("xception_weights_tf_dim_ordering_tf_kernels.h5", "0a58e3b7378bc2990ea3b43d5981f1f6",
          "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
          "b0042744bf5b25fce3cb969f33bebb97")


def _sep_bn(x, filters, name):
    """SeparableConv2D `name` (3x3, same, no bias) + BatchNormalization `{name}_bn`."""
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(axis=-1, name=f"{name}_bn")(x)


def _projection(x, filters):
    """The strided 1x1 shortcut of a downsampling block (default layer names)."""
    residual = layers.Conv2D(filters, (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    return layers.BatchNormalization(axis=-1)(residual)


def _down_block(x, filters, block, first_relu=True):
    """Two separable convolutions, a strided max pooling and a projected shortcut."""
    residual = _projection(x, filters[1])
    if first_relu:
        x = layers.Activation("relu", name=f"block{block}_sepconv1_act")(x)
    x = _sep_bn(x, filters[0], f"block{block}_sepconv1")
    x = layers.Activation("relu", name=f"block{block}_sepconv2_act")(x)
    x = _sep_bn(x, filters[1], f"block{block}_sepconv2")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{block}_pool")(x)
    return layers.add([x, residual])


def _middle_block(x, block):
    """Three ReLU-separable convolutions of 728 filters around an identity shortcut."""
    residual = x
    for i in (1, 2, 3):
        x = layers.Activation("relu", name=f"block{block}_sepconv{i}_act")(x)
        x = _sep_bn(x, 728, f"block{block}_sepconv{i}")
    return layers.add([x, residual])


def Xception(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="xception"):
    """The Xception network, with ImageNet weights by default.

    Layer names (default names such as `conv2d_1` included, counted from a fresh
    `clear_session()`), order and parameter counts match `keras.applications.Xception`.
    Preprocess images with `plexus.applications.xception.preprocess_input` (scales to -1..1).
    """
    img_input, path = builder.prepare(
        weights, include_top, classes, "Xception", classifier_activation, pooling,
        input_tensor, input_shape, 299, 71, _FILES, "xception")
    x = layers.Conv2D(32, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(img_input)
    x = layers.BatchNormalization(axis=-1, name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, (3, 3), use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(axis=-1, name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)
    x = _down_block(x, (128, 128), 2, first_relu=False)
    x = _down_block(x, (256, 256), 3)
    x = _down_block(x, (728, 728), 4)
    for block in range(5, 13):
        x = _middle_block(x, block)
    x = _down_block(x, (728, 1024), 13)
    x = _sep_bn(x, 1536, "block14_sepconv1")
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = _sep_bn(x, 2048, "block14_sepconv2")
    x = layers.Activation("relu", name="block14_sepconv2_act")(x)
    x = builder.classifier_top(x, include_top, pooling, classes, classifier_activation)
    return builder.finish(input_tensor, img_input, x, name, path)


builder.add_args_doc(Xception, 71, 299,
                     shape_note=" Without it and without the top, any image size works.",
                     example="""
    Example (one vision model applied to two images, weights shared):
        >>> base = Xception(weights=None, include_top=False)
        >>> left, right = Input(shape=(250, 250, 3)), Input(shape=(250, 250, 3))
        >>> merged = layers.concatenate([base(left), base(right)], axis=-1)
""")


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to Xception's input: values scaled to -1..1."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
