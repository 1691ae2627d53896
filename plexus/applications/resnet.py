"""ResNet50, ResNet101 and ResNet152 (He et al., 2015): bottleneck residual blocks.

Reference: [Deep Residual Learning for Image Recognition](https://arxiv.org/abs/1512.03385).
The shared builder `build_resnet` also serves the pre-activation ResNetV2 family.
"""
from plexus import layers
from plexus.applications import builder, imagenet_utils

# ImageNet weight-file hashes: (with top, without top).
_HASHES = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
}
_EPS = 1.001e-5

_ARGS_DOC = """
    Layer names, order and parameter counts match the Keras application of the same name, so
    Keras weight files load into it.
""" + builder.args_doc(32, 224)


def build_resnet(stack_fn, preact, arch, include_top, weights, input_tensor, input_shape,
                 pooling, classes, classifier_activation, name):
    """Stem, residual stacks (`stack_fn`) and top of a ResNet (`preact`: the V2 variant)."""
    label = name or arch
    img_input, path = builder.prepare(
        weights, include_top, classes, label, classifier_activation, pooling, input_tensor,
        input_shape, 224, 32, builder.tf_kernel_files(arch, *_HASHES[arch]), "resnet")
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=True, name="conv1_conv")(x)
    if not preact:
        x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = stack_fn(x)
    if preact:
        x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="post_bn")(x)
        x = layers.Activation("relu", name="post_relu")(x)
    x = builder.classifier_top(x, include_top, pooling, classes, classifier_activation,
                               avg_name="avg_pool", max_name="max_pool")
    return builder.finish(input_tensor, img_input, x, name, path)


def conv_bn(x, filters, kernel_size, name, strides=1, padding="valid", relu=True):
    """Conv2D `{name}_conv` + BatchNormalization `{name}_bn` (+ ReLU `{name}_relu`)."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def block_v1(x, filters, stride=1, conv_shortcut=True, name=None):
    """Bottleneck block: 1x1 (stride), 3x3, 1x1 to `4 * filters`, plus the shortcut."""
    if conv_shortcut:
        shortcut = conv_bn(x, 4 * filters, 1, f"{name}_0", strides=stride, relu=False)
    else:
        shortcut = x
    x = conv_bn(x, filters, 1, f"{name}_1", strides=stride)
    x = conv_bn(x, filters, 3, f"{name}_2", padding="same")
    x = conv_bn(x, 4 * filters, 1, f"{name}_3", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def stack_v1(x, filters, blocks, stride1=2, name=None):
    """`blocks` bottleneck blocks; the first one projects the shortcut and may downsample."""
    x = block_v1(x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = block_v1(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def _stacks_v1(counts):
    def stack_fn(x):
        for i, (filters, blocks) in enumerate(zip((64, 128, 256, 512), counts)):
            x = stack_v1(x, filters, blocks, stride1=1 if i == 0 else 2, name=f"conv{i + 2}")
        return x
    return stack_fn


def ResNet50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="resnet50"):
    return build_resnet(_stacks_v1((3, 4, 6, 3)), False, "resnet50", include_top, weights,
                        input_tensor, input_shape, pooling, classes, classifier_activation, name)


def ResNet101(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax", name="resnet101"):
    return build_resnet(_stacks_v1((3, 4, 23, 3)), False, "resnet101", include_top, weights,
                        input_tensor, input_shape, pooling, classes, classifier_activation, name)


def ResNet152(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax", name="resnet152"):
    return build_resnet(_stacks_v1((3, 8, 36, 3)), False, "resnet152", include_top, weights,
                        input_tensor, input_shape, pooling, classes, classifier_activation, name)


ResNet50.__doc__ = "The ResNet50 network, with ImageNet weights by default.\n" + _ARGS_DOC
ResNet101.__doc__ = "The ResNet101 network, with ImageNet weights by default.\n" + _ARGS_DOC
ResNet152.__doc__ = "The ResNet152 network, with ImageNet weights by default.\n" + _ARGS_DOC


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to ResNet's input: BGR, minus the ImageNet channel means."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
