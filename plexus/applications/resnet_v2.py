"""ResNet50V2, ResNet101V2, ResNet152V2 (He et al., 2016): pre-activation residual blocks.

Reference: [Identity Mappings in Deep Residual Networks](https://arxiv.org/abs/1603.05027).
"""
from plexus import layers
from plexus.applications import imagenet_utils
from plexus.applications.resnet import _ARGS_DOC, _EPS, build_resnet


def block_v2(x, filters, stride=1, conv_shortcut=False, name=None):
    """Pre-activation bottleneck: BN-ReLU first, then 1x1, 3x3 (stride), 1x1 convolutions."""
    preact = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_preact_bn")(x)
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    elif stride > 1:
        shortcut = layers.MaxPooling2D(1, strides=stride)(x)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return layers.Add(name=f"{name}_out")([shortcut, x])


def stack_v2(x, filters, blocks, stride1=2, name=None):
    """`blocks` pre-activation blocks; the last one downsamples by `stride1`."""
    x = block_v2(x, filters, conv_shortcut=True, name=f"{name}_block1")
    for i in range(2, blocks):
        x = block_v2(x, filters, name=f"{name}_block{i}")
    return block_v2(x, filters, stride=stride1, name=f"{name}_block{blocks}")


def _stacks_v2(counts):
    def stack_fn(x):
        for i, (filters, blocks) in enumerate(zip((64, 128, 256, 512), counts)):
            x = stack_v2(x, filters, blocks, stride1=1 if i == 3 else 2, name=f"conv{i + 2}")
        return x
    return stack_fn


def ResNet50V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
               pooling=None, classes=1000, classifier_activation="softmax", name="resnet50v2"):
    return build_resnet(_stacks_v2((3, 4, 6, 3)), True, "resnet50v2", include_top, weights,
                        input_tensor, input_shape, pooling, classes, classifier_activation, name)


def ResNet101V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="resnet101v2"):
    return build_resnet(_stacks_v2((3, 4, 23, 3)), True, "resnet101v2", include_top, weights,
                        input_tensor, input_shape, pooling, classes, classifier_activation, name)


def ResNet152V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="resnet152v2"):
    return build_resnet(_stacks_v2((3, 8, 36, 3)), True, "resnet152v2", include_top, weights,
                        input_tensor, input_shape, pooling, classes, classifier_activation, name)


_V2_DOC = (" network, with ImageNet weights by default. Preprocess images with "
           "`plexus.applications.resnet_v2.preprocess_input`.\n" + _ARGS_DOC)
ResNet50V2.__doc__ = "The ResNet50V2" + _V2_DOC
ResNet101V2.__doc__ = "The ResNet101V2" + _V2_DOC
ResNet152V2.__doc__ = "The ResNet152V2" + _V2_DOC


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to ResNetV2's input: values scaled to -1..1."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
