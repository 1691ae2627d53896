"""DenseNet121, DenseNet169, DenseNet201 (Huang et al., 2017): every layer of a dense block
sees the concatenated outputs of all earlier ones.

Reference: [Densely Connected Convolutional Networks](https://arxiv.org/abs/1608.06993).
"""
from plexus import layers
from plexus.applications import builder, imagenet_utils

_EPS = 1.001e-5
_HASHES = {  # (with top, without top)
    "densenet121": ("9d60b8095a5708f2dcce2bca79d332c7", "30ee3e1110167f948a6b9946edeeb738"),
    "densenet169": ("d699b8f76981ab1b30698df4c175e90b", "b8c4d4c20dd625c148057b9ff1c1176b"),
    "densenet201": ("1ceb130c1ea1b78c3bf6114dbdfd8807", "c13680b51ded0fb44dff2d8f86ac8bb1"),
}
_BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32),
           "densenet201": (6, 12, 48, 32)}


def _bn_relu(x, name):
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def conv_block(x, growth_rate, name):
    """BN-ReLU-1x1 conv (4 * growth_rate), BN-ReLU-3x3 conv (growth_rate), concatenated to `x`."""
    y = _bn_relu(x, f"{name}_0")
    y = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(y)
    y = _bn_relu(y, f"{name}_1")
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    return layers.Concatenate(axis=3, name=f"{name}_concat")([x, y])


def dense_block(x, blocks, name):
    for i in range(blocks):
        x = conv_block(x, 32, name=f"{name}_block{i + 1}")
    return x


def transition_block(x, reduction, name):
    """BN-ReLU, a 1x1 convolution keeping `reduction` of the channels, 2x2 average pooling."""
    x = _bn_relu(x, name)
    x = layers.Conv2D(int(x.shape[3] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def build_densenet(arch, include_top, weights, input_tensor, input_shape, pooling, classes,
                   classifier_activation, name):
    """A DenseNet of depth `arch` with the arguments of the public constructors."""
    label = name or arch
    img_input, path = builder.prepare(
        weights, include_top, classes, label, classifier_activation, pooling, input_tensor,
        input_shape, 224, 32, builder.tf_kernel_files(arch, *_HASHES[arch]), "densenet")
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)))(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = _bn_relu(x, "conv1")
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    blocks = _BLOCKS[arch]
    for i, n in enumerate(blocks):
        x = dense_block(x, n, name=f"conv{i + 2}")
        if i < len(blocks) - 1:
            x = transition_block(x, 0.5, name=f"pool{i + 2}")
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = builder.classifier_top(x, include_top, pooling, classes, classifier_activation,
                               avg_name="avg_pool", max_name="max_pool")
    return builder.finish(input_tensor, img_input, x, name, path)


_DOC = """ network, with ImageNet weights by default.

    Layer names, order and parameter counts match the Keras application of the same name.
    Preprocess images with `plexus.applications.densenet.preprocess_input`.
""" + builder.args_doc(32, 224)


def DenseNet121(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="densenet121"):
    return build_densenet("densenet121", include_top, weights, input_tensor, input_shape,
                          pooling, classes, classifier_activation, name)


def DenseNet169(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="densenet169"):
    return build_densenet("densenet169", include_top, weights, input_tensor, input_shape,
                          pooling, classes, classifier_activation, name)


def DenseNet201(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="densenet201"):
    return build_densenet("densenet201", include_top, weights, input_tensor, input_shape,
                          pooling, classes, classifier_activation, name)


DenseNet121.__doc__ = "The DenseNet121" + _DOC
DenseNet169.__doc__ = "The DenseNet169" + _DOC
DenseNet201.__doc__ = "The DenseNet201" + _DOC


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to DenseNet's input: scaled to 0..1, then normalized per channel
    with the ImageNet mean and standard deviation."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="torch")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
