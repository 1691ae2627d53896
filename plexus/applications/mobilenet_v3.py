"""MobileNetV3 Small and Large (Howard et al., 2019): inverted residual blocks with
squeeze-and-excite and hard-swish, found by architecture search.

Reference: [Searching for MobileNetV3](https://arxiv.org/abs/1905.02244).

With `include_preprocessing=True` (the default) the models take pixels in 0..255 and scale them
themselves, so `preprocess_input` returns its input unchanged.
"""
import warnings

from plexus import layers
from plexus.applications import builder, imagenet_utils
from plexus.applications.weights_files import BASE_URL, get_file

_HASHES = {  # (with top, without top)
    "large_224_0.75_float": ("765b44a33ad4005b3ac83185abf1d0eb",
                             "40af19a13ebea4e2ee0c676887f69a2e"),
    "large_224_1.0_float": ("59e551e166be033d707958cf9e29a6a7",
                            "07fb09a5933dd0c8eaafa16978110389"),
    "large_minimalistic_224_1.0_float": ("675e7b876c45c57e9e63e6d90a36599c",
                                         "ec5221f64a2f6d1ef965a614bdae7973"),
    "small_224_0.75_float": ("cb65d4e5be93758266aa0a7f2c6708b7",
                             "ebdb5cc8e0b497cd13a7c275d475c819"),
    "small_224_1.0_float": ("8768d4c2e7dee89b9d02b2d03d65d862",
                            "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "small_minimalistic_224_1.0_float": ("99cd97fb2fcdad2bf028eb838de69e37",
                                         "cde8136e733e811080d9fcd8a252f7e4"),
}
# Blocks: (expansion, filters, kernel, stride, squeeze-excite, activation). A kernel of None is
# the model's own (5, or 3 when minimalistic); activation "relu" is always ReLU, "act" is the
# model's own (hard-swish, or ReLU when minimalistic); squeeze-excite is off when minimalistic.
_SMALL = ((1, 16, 3, 2, True, "relu"), (72.0 / 16, 24, 3, 2, False, "relu"),
          (88.0 / 24, 24, 3, 1, False, "relu"), (4, 40, None, 2, True, "act"),
          (6, 40, None, 1, True, "act"), (6, 40, None, 1, True, "act"),
          (3, 48, None, 1, True, "act"), (3, 48, None, 1, True, "act"),
          (6, 96, None, 2, True, "act"), (6, 96, None, 1, True, "act"),
          (6, 96, None, 1, True, "act"))
_LARGE = ((1, 16, 3, 1, False, "relu"), (4, 24, 3, 2, False, "relu"),
          (3, 24, 3, 1, False, "relu"), (3, 40, None, 2, True, "relu"),
          (3, 40, None, 1, True, "relu"), (3, 40, None, 1, True, "relu"),
          (6, 80, 3, 2, False, "act"), (2.5, 80, 3, 1, False, "act"),
          (2.3, 80, 3, 1, False, "act"), (2.3, 80, 3, 1, False, "act"),
          (6, 112, 3, 1, True, "act"), (6, 112, 3, 1, True, "act"),
          (6, 160, None, 2, True, "act"), (6, 160, None, 1, True, "act"),
          (6, 160, None, 1, True, "act"))
_SE_RATIO = 0.25


def _relu(x):
    return layers.ReLU()(x)


def _hard_swish(x):
    return layers.Activation("hard_swish")(x)


def _hard_sigmoid(x):
    # Recorded as operations around a ReLU6, as Keras builds it (so the layers match).
    return layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)


def _bn(x, name):
    return layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=name)(x)


def _se_block(inputs, filters, prefix):
    """Squeeze-and-excite gates with a hard sigmoid."""
    x = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(
        inputs)
    x = layers.Conv2D(builder.make_divisible(filters * _SE_RATIO), kernel_size=1, padding="same",
                      name=f"{prefix}squeeze_excite_conv")(x)
    x = layers.ReLU(name=f"{prefix}squeeze_excite_relu")(x)
    x = layers.Conv2D(filters, kernel_size=1, padding="same",
                      name=f"{prefix}squeeze_excite_conv_1")(x)
    x = _hard_sigmoid(x)
    return layers.Multiply(name=f"{prefix}squeeze_excite_mul")([inputs, x])


def _inverted_res_block(x, expansion, filters, kernel_size, stride, se, activation, block_id):
    """Expand (1x1), depthwise (stride), optional squeeze-and-excite, project (1x1, linear);
    add the input back when the shapes allow."""
    shortcut = x
    infilters = x.shape[-1]
    prefix = f"expanded_conv_{block_id}_" if block_id else "expanded_conv_"
    if block_id:
        x = layers.Conv2D(builder.make_divisible(infilters * expansion), kernel_size=1,
                          padding="same", use_bias=False, name=f"{prefix}expand")(x)
        x = activation(_bn(x, f"{prefix}expand_bn"))
    if stride == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, kernel_size),
                                 name=f"{prefix}depthwise_pad")(x)
    x = layers.DepthwiseConv2D(kernel_size, strides=stride,
                               padding="same" if stride == 1 else "valid", use_bias=False,
                               name=f"{prefix}depthwise")(x)
    x = activation(_bn(x, f"{prefix}depthwise_bn"))
    if se:
        x = _se_block(x, builder.make_divisible(infilters * expansion), prefix)
    x = layers.Conv2D(filters, kernel_size=1, padding="same", use_bias=False,
                      name=f"{prefix}project")(x)
    x = _bn(x, f"{prefix}project_bn")
    if stride == 1 and infilters == filters:
        x = layers.Add(name=f"{prefix}add")([shortcut, x])
    return x


def _input_shape(input_shape, input_tensor, label):
    """The image shape: `input_shape`, else the tensor's, else any size; at least 32x32."""
    if input_tensor is not None:
        builder.image_input(input_tensor, None, label)  # checks that it is symbolic
        if input_shape is not None and input_tensor.shape[2] != input_shape[1]:
            raise ValueError(
                f"{label}: input_tensor and input_shape disagree: input_tensor.shape is "
                f"{input_tensor.shape} but input_shape is {tuple(input_shape)}. Pass one of them.")
        if input_shape is None:
            input_shape = tuple(input_tensor.shape[1:3]) + (3,)
    input_shape = tuple(input_shape) if input_shape is not None else (None, None, 3)
    if len(input_shape) != 3:
        raise ValueError(
            f"{label}: input_shape must be (rows, cols, channels); received {input_shape}.")
    if any(d is not None and d < 32 for d in input_shape[:2]):
        raise ValueError(
            f"{label}: input size must be at least 32x32; received input_shape={input_shape}.")
    return input_shape


def _weights_file(weights, include_top, model_type, alpha, minimalistic, shape, label):
    """The weights file to load: a given path, or the ImageNet file for this width."""
    if weights != "imagenet":
        return weights
    if alpha not in ((1.0,) if minimalistic else (0.75, 1.0)):
        raise ValueError(
            f"{label}: ImageNet weights exist for alpha 0.75 or 1.0 (1.0 only when "
            f"minimalistic); received alpha={alpha}, minimalistic={minimalistic}. Use "
            "weights=None for other widths.")
    if shape[0] != shape[1] or shape[0] != 224:
        warnings.warn(f"{label}: input_shape is undefined, not square, or not 224x224; the "
                      "ImageNet weights were trained at 224x224.", stacklevel=4)
    model_name = f"{model_type}{'_minimalistic' if minimalistic else ''}_224_{float(alpha)}_float"
    fname = f"weights_mobilenet_v3_{model_name}{'' if include_top else '_no_top_v2'}.h5"
    return get_file(fname, f"{BASE_URL}mobilenet_v3/{fname}",
                    file_hash=_HASHES[model_name][0 if include_top else 1],
                    what=f"the ImageNet weights of {label}")


def build_mobilenet_v3(blocks, last_point_ch, model_type, input_shape, alpha, minimalistic,
                       include_top, weights, input_tensor, classes, pooling, dropout_rate,
                       classifier_activation, include_preprocessing, name):
    """MobileNetV3 from its block table with the arguments of the public constructors."""
    label = name or f"MobileNetV3{model_type.capitalize()}"
    builder.check_arguments(weights, include_top, classes, label, classifier_activation,
                            pooling)
    shape = _input_shape(input_shape, input_tensor, label)
    path = _weights_file(weights, include_top, model_type, alpha, minimalistic, shape, label)
    img_input = builder.image_input(input_tensor, shape, label)
    kernel, activation = (3, _relu) if minimalistic else (5, _hard_swish)
    x = img_input
    if include_preprocessing:
        x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)(x)
    x = layers.Conv2D(16, kernel_size=3, strides=(2, 2), padding="same", use_bias=False,
                      name="conv")(x)
    x = activation(_bn(x, "conv_bn"))
    for block_id, (expansion, filters, k, stride, se, act) in enumerate(blocks):
        x = _inverted_res_block(x, expansion, builder.make_divisible(filters * alpha),
                                k or kernel, stride, se and not minimalistic,
                                _relu if act == "relu" else activation, block_id)
    last_conv_ch = builder.make_divisible(x.shape[-1] * 6)
    if alpha > 1.0:
        last_point_ch = builder.make_divisible(last_point_ch * alpha)
    x = layers.Conv2D(last_conv_ch, kernel_size=1, padding="same", use_bias=False,
                      name="conv_1")(x)
    x = activation(_bn(x, "conv_1_bn"))
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Conv2D(last_point_ch, kernel_size=1, padding="same", use_bias=True,
                          name="conv_2")(x)
        x = activation(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate)(x)
        x = layers.Conv2D(classes, kernel_size=1, padding="same", name="logits")(x)
        x = layers.Flatten()(x)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = builder.pooled_features(x, pooling, "avg_pool", "max_pool")
    return builder.finish(input_tensor, img_input, x, name, path)


_DOC = """ network, with ImageNet weights by default.

    Layer names, order and parameter counts match the Keras application of the same name.
    With `include_preprocessing=True` the model takes pixels in 0..255.

    Args:
        input_shape: `(rows, cols, 3)`, at least 32x32; any size (None, None) by default. The
            ImageNet weights were trained at 224x224.
        alpha: width multiplier (pretrained: 0.75 and 1.0; 1.0 when minimalistic).
        minimalistic: without squeeze-and-excite and hard-swish, with 3x3 kernels only.
        include_top: whether to include the global pooling and the classifier convolutions.
        weights: None (random), 'imagenet' (looked for in `~/.keras/models`, else downloaded)
            or the path to a weights file.
        input_tensor: a symbolic tensor to use as the image input.
        classes: number of classes of the top (1000 for ImageNet weights).
        pooling: without the top, None (4D feature maps), 'avg' or 'max' (global pooling).
        dropout_rate: dropout rate before the last convolution of the top.
        classifier_activation: activation of the `predictions` layer (None for logits).
        include_preprocessing: whether the model starts by scaling pixels (0..255) to -1..1.
        name: the model's name.

    Returns:
        A `plexus.Model`.
"""


def MobileNetV3Small(input_shape=None, alpha=1.0, minimalistic=False, include_top=True,
                     weights="imagenet", input_tensor=None, classes=1000, pooling=None,
                     dropout_rate=0.2, classifier_activation="softmax",
                     include_preprocessing=True, name="MobileNetV3Small"):
    return build_mobilenet_v3(_SMALL, 1024, "small", input_shape, alpha, minimalistic,
                              include_top, weights, input_tensor, classes, pooling, dropout_rate,
                              classifier_activation, include_preprocessing, name)


def MobileNetV3Large(input_shape=None, alpha=1.0, minimalistic=False, include_top=True,
                     weights="imagenet", input_tensor=None, classes=1000, pooling=None,
                     dropout_rate=0.2, classifier_activation="softmax",
                     include_preprocessing=True, name="MobileNetV3Large"):
    return build_mobilenet_v3(_LARGE, 1280, "large", input_shape, alpha, minimalistic,
                              include_top, weights, input_tensor, classes, pooling, dropout_rate,
                              classifier_activation, include_preprocessing, name)


MobileNetV3Small.__doc__ = "The MobileNetV3Small" + _DOC
MobileNetV3Large.__doc__ = "The MobileNetV3Large" + _DOC


def preprocess_input(x, data_format=None):
    """Returns `x` unchanged: MobileNetV3 models scale pixels (0..255) themselves. Kept so
    that code written for other applications runs unchanged."""
    return x


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
