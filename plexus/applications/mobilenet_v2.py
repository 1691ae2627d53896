"""MobileNetV2 (Sandler et al., 2018): inverted residual blocks with linear bottlenecks.

Reference: [MobileNetV2: Inverted Residuals and Linear Bottlenecks](
https://arxiv.org/abs/1801.04381).
"""
import warnings

from plexus import layers
from plexus.applications import builder, imagenet_utils
from plexus.applications.weights_files import BASE_URL, get_file

_SIZES = (96, 128, 160, 192, 224)
_ALPHAS = (0.35, 0.50, 0.75, 1.0, 1.3, 1.4)
# (filters, stride, expansion) of blocks 0..16.
_BLOCKS = ((16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6),
           (64, 1, 6), (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6),
           (160, 1, 6), (160, 1, 6), (320, 1, 6))


def _bn(x, name):
    return layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=name)(x)


def _inverted_res_block(inputs, expansion, stride, alpha, filters, block_id):
    """Expand (1x1), depthwise 3x3 (stride), project (1x1, linear); add the input back when
    the shapes allow."""
    in_channels = inputs.shape[-1]
    pointwise_filters = builder.make_divisible(int(filters * alpha), 8)
    x = inputs
    prefix = f"block_{block_id}_"
    if block_id:
        x = layers.Conv2D(expansion * in_channels, kernel_size=1, padding="same", use_bias=False,
                          activation=None, name=f"{prefix}expand")(x)
        x = _bn(x, f"{prefix}expand_BN")
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    else:
        prefix = "expanded_conv_"
    if stride == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(kernel_size=3, strides=stride, activation=None, use_bias=False,
                               padding="same" if stride == 1 else "valid",
                               name=f"{prefix}depthwise")(x)
    x = _bn(x, f"{prefix}depthwise_BN")
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(pointwise_filters, kernel_size=1, padding="same", use_bias=False,
                      activation=None, name=f"{prefix}project")(x)
    x = _bn(x, f"{prefix}project_BN")
    if in_channels == pointwise_filters and stride == 1:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def _weights_path(weights, include_top, alpha, rows):
    """The weights file: a given path, or the ImageNet file for this width and resolution."""
    if weights != "imagenet":
        return weights
    suffix = "" if include_top else "_no_top"
    fname = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}{suffix}.h5"
    return get_file(fname, f"{BASE_URL}mobilenet_v2/{fname}",
                    what="the ImageNet weights of MobileNetV2")


def _default_size(input_shape, input_tensor):
    """The pretrained resolution matching the requested square size, else 224."""
    if input_shape is not None:
        rows, cols = input_shape[0], input_shape[1]
    elif input_tensor is not None:
        rows, cols = input_tensor.shape[1], input_tensor.shape[2]
    else:
        return 224
    return rows if rows == cols and rows in _SIZES else 224


def MobileNetV2(input_shape=None, alpha=1.0, include_top=True, weights="imagenet",
                input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax",
                name=None):
    """The MobileNetV2 network, with ImageNet weights by default.

    Layer names, order and parameter counts match `keras.applications.MobileNetV2`.
    Preprocess images with `plexus.applications.mobilenet_v2.preprocess_input` (scales to -1..1).

    Args:
        input_shape: `(rows, cols, 3)`, at least 32x32; pretrained weights exist for square
            sizes 96, 128, 160, 192 and 224.
        alpha: width multiplier: < 1 thins every layer, > 1 widens it (pretrained: 0.35,
            0.5, 0.75, 1.0, 1.3, 1.4).
        include_top: whether to include the global pooling and the `predictions` layer.
        weights: None (random), 'imagenet' (looked for in `~/.keras/models`, else downloaded)
            or the path to a weights file.
        input_tensor: a symbolic tensor to use as the image input.
        pooling: without the top, None (4D feature maps), 'avg' or 'max' (global pooling).
        classes: number of classes of the top (1000 for ImageNet weights).
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: the model's name; `mobilenetv2_{alpha:.2f}_{rows}` by default.

    Returns:
        A `plexus.Model`.
    """
    builder.check_arguments(weights, include_top, classes, "MobileNetV2",
                            classifier_activation, pooling)
    if input_tensor is not None:
        builder.image_input(input_tensor, None, "MobileNetV2")  # checks it is symbolic
    if input_tensor is not None and input_shape is not None \
            and input_tensor.shape[2] != input_shape[1]:
        raise ValueError(
            "MobileNetV2: input_tensor and input_shape disagree: input_tensor.shape is "
            f"{input_tensor.shape} but input_shape is {tuple(input_shape)}. Pass one of them."
        )
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=_default_size(input_shape, input_tensor), min_size=32,
        require_flatten=include_top, weights=weights)
    rows, cols = input_shape[0], input_shape[1]
    if weights == "imagenet":
        if alpha not in _ALPHAS:
            raise ValueError(
                f"MobileNetV2: ImageNet weights exist for alpha in {_ALPHAS}; received "
                f"alpha={alpha}. Use one of these, or weights=None."
            )
        if rows != cols or rows not in _SIZES:
            rows = 224
            warnings.warn(
                "MobileNetV2: input_shape is undefined, not square, or its size is not one of "
                f"{_SIZES}; loading the weights trained at 224x224.", stacklevel=2)
    path = _weights_path(weights, include_top, alpha, rows)
    img_input = builder.image_input(input_tensor, input_shape, "MobileNetV2")
    x = layers.Conv2D(builder.make_divisible(32 * alpha, 8), kernel_size=3, strides=(2, 2),
                      padding="same", use_bias=False, name="Conv1")(img_input)
    x = _bn(x, "bn_Conv1")
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    for block_id, (filters, stride, expansion) in enumerate(_BLOCKS):
        x = _inverted_res_block(x, filters=filters, alpha=alpha, stride=stride,
                                expansion=expansion, block_id=block_id)
    last_filters = builder.make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last_filters, kernel_size=1, use_bias=False, name="Conv_1")(x)
    x = _bn(x, "Conv_1_bn")
    x = layers.ReLU(6.0, name="out_relu")(x)
    x = builder.classifier_top(x, include_top, pooling, classes, classifier_activation,
                               top_pool_name=None)
    name = name or f"mobilenetv2_{alpha:0.2f}_{rows}"
    return builder.finish(input_tensor, img_input, x, name, path)


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to MobileNetV2's input: values scaled to -1..1."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
