"""InceptionV3 (Szegedy et al., 2016): parallel branches of factorized convolutions.

Reference: [Rethinking the Inception Architecture for Computer Vision](
https://arxiv.org/abs/1512.00567).
"""
from plexus import layers
from plexus.applications import builder, imagenet_utils

_FILES = ("inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
          "9a0d58056eeedaa3f26cb7ebd46da564",
          "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
          "bcbd6486424b2319ff4ef7d526e38f63")


def conv2d_bn(x, filters, rows, cols, padding="same", strides=(1, 1), name=None):
    """Conv2D without bias, BatchNormalization without scale, ReLU (default names unless
    `name` is given: then `{name}_conv`, `{name}_bn`, `{name}`)."""
    x = layers.Conv2D(filters, (rows, cols), strides=strides, padding=padding, use_bias=False,
                      name=f"{name}_conv" if name else None)(x)
    x = layers.BatchNormalization(axis=3, scale=False, name=f"{name}_bn" if name else None)(x)
    return layers.Activation("relu", name=name)(x)


def _avg_pool_branch(x, filters):
    branch = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    return conv2d_bn(branch, filters, 1, 1)


def _block_35(x, pool_filters, name):
    """mixed0..2: 1x1, 5x5, double 3x3 and pooled branches on the 35x35 grid."""
    b1 = conv2d_bn(x, 64, 1, 1)
    b5 = conv2d_bn(conv2d_bn(x, 48, 1, 1), 64, 5, 5)
    b3 = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
    bp = _avg_pool_branch(x, pool_filters)
    return layers.concatenate([b1, b5, b3, bp], axis=3, name=name)


def _reduce_35(x):
    """mixed3: 35x35 -> 17x17."""
    b3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="valid")
    bd = conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3)
    bd = conv2d_bn(bd, 96, 3, 3, strides=(2, 2), padding="valid")
    bp = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    return layers.concatenate([b3, bd, bp], axis=3, name="mixed3")


def _block_17(x, width, name):
    """mixed4..7: 1x1, 7x7 and double 7x7 factorized into 1x7 / 7x1 convolutions."""
    b1 = conv2d_bn(x, 192, 1, 1)
    b7 = conv2d_bn(x, width, 1, 1)
    b7 = conv2d_bn(b7, width, 1, 7)
    b7 = conv2d_bn(b7, 192, 7, 1)
    bd = conv2d_bn(x, width, 1, 1)
    for rows, cols in ((7, 1), (1, 7), (7, 1)):
        bd = conv2d_bn(bd, width, rows, cols)
    bd = conv2d_bn(bd, 192, 1, 7)
    bp = _avg_pool_branch(x, 192)
    return layers.concatenate([b1, b7, bd, bp], axis=3, name=name)


def _reduce_17(x):
    """mixed8: 17x17 -> 8x8."""
    b3 = conv2d_bn(x, 192, 1, 1)
    b3 = conv2d_bn(b3, 320, 3, 3, strides=(2, 2), padding="valid")
    b7 = conv2d_bn(x, 192, 1, 1)
    b7 = conv2d_bn(b7, 192, 1, 7)
    b7 = conv2d_bn(b7, 192, 7, 1)
    b7 = conv2d_bn(b7, 192, 3, 3, strides=(2, 2), padding="valid")
    bp = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    return layers.concatenate([b3, b7, bp], axis=3, name="mixed8")


def _block_8(x, i):
    """mixed9, mixed10: branches that split into parallel 1x3 and 3x1 convolutions."""
    b1 = conv2d_bn(x, 320, 1, 1)
    b3 = conv2d_bn(x, 384, 1, 1)
    b3 = layers.concatenate([conv2d_bn(b3, 384, 1, 3), conv2d_bn(b3, 384, 3, 1)], axis=3,
                            name=f"mixed9_{i}")
    bd = conv2d_bn(x, 448, 1, 1)
    bd = conv2d_bn(bd, 384, 3, 3)
    bd = layers.concatenate([conv2d_bn(bd, 384, 1, 3), conv2d_bn(bd, 384, 3, 1)], axis=3)
    bp = _avg_pool_branch(x, 192)
    return layers.concatenate([b1, b3, bd, bp], axis=3, name=f"mixed{9 + i}")


def InceptionV3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="inception_v3"):
    """The InceptionV3 network, with ImageNet weights by default.

    Layer names (default names such as `conv2d_5` included, counted from a fresh
    `clear_session()`), order and parameter counts match `keras.applications.InceptionV3`.
    Preprocess images with `plexus.applications.inception_v3.preprocess_input` (scales to -1..1).
    """
    img_input, path = builder.prepare(
        weights, include_top, classes, "InceptionV3", classifier_activation, pooling,
        input_tensor, input_shape, 299, 75, _FILES, "inception_v3")
    x = conv2d_bn(img_input, 32, 3, 3, strides=(2, 2), padding="valid")
    x = conv2d_bn(x, 32, 3, 3, padding="valid")
    x = conv2d_bn(x, 64, 3, 3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv2d_bn(x, 80, 1, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    for i, pool_filters in enumerate((32, 64, 64)):
        x = _block_35(x, pool_filters, f"mixed{i}")
    x = _reduce_35(x)
    for i, width in enumerate((128, 160, 160, 192)):
        x = _block_17(x, width, f"mixed{4 + i}")
    x = _reduce_17(x)
    for i in range(2):
        x = _block_8(x, i)
    x = builder.classifier_top(x, include_top, pooling, classes, classifier_activation)
    return builder.finish(input_tensor, img_input, x, name, path)


builder.add_args_doc(InceptionV3, 75, 299)


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to InceptionV3's input: values scaled to -1..1."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
