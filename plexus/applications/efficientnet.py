"""EfficientNetB0 to B7 (Tan and Le, 2019): mobile inverted bottlenecks with squeeze-and-excite,
scaled in width, depth and resolution together.

Reference: [EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks](
https://arxiv.org/abs/1905.11946).

The models take pixels in 0..255: scaling and normalization are layers of the model, so
`preprocess_input` returns its input unchanged.
"""
import math

from plexus import initializers, layers
from plexus.applications import builder, imagenet_utils

_BASE_URL = "https://storage.googleapis.com/keras-applications/"
_HASHES = {  # (with top, without top)
    "b0": ("902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    "b1": ("1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    "b2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "b3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    "b4": ("18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    "b5": ("ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    "b6": ("165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    "b7": ("8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
}
# (width coefficient, depth coefficient, image size, dropout before the classifier).
_SCALING = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
            "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
            "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5)}
# (kernel size, repeats, filters in, filters out, expansion, stride) of the seven stages of B0;
# every block has squeeze-and-excite (ratio 0.25) and an identity shortcut where shapes allow.
_STAGES = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
           (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))
_DROP_CONNECT = 0.2
# Keras's published ImageNet standard deviations; the stem divides by their square roots once
# more because the original network divided by the variance (see `_stem`).
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def conv_init():
    """He-style initializer of the convolution kernels (fan-out, truncated normal)."""
    return initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")


def dense_init():
    """Initializer of the classifier kernel (fan-out, uniform, scale 1/3)."""
    return initializers.VarianceScaling(1.0 / 3.0, "fan_out", "uniform")


def squeeze_excite(x, filters_in, se_ratio, activation, prefix):
    """Channel attention: global average, a bottleneck of `filters_in * se_ratio` channels,
    sigmoid gates that scale `x`'s channels."""
    filters = x.shape[-1]
    se = layers.GlobalAveragePooling2D(name=f"{prefix}se_squeeze")(x)
    se = layers.Reshape((1, 1, filters), name=f"{prefix}se_reshape")(se)
    se = layers.Conv2D(max(1, int(filters_in * se_ratio)), 1, padding="same",
                       activation=activation, kernel_initializer=conv_init(),
                       name=f"{prefix}se_reduce")(se)
    se = layers.Conv2D(filters, 1, padding="same", activation="sigmoid",
                       kernel_initializer=conv_init(), name=f"{prefix}se_expand")(se)
    return layers.multiply([x, se], name=f"{prefix}se_excite")


def conv_bn_act(x, filters, kernel_size, activation, prefix, conv, bn, act, strides=1,
                momentum=0.99):
    """Conv2D (same padding, no bias) `prefix+conv`, BatchNormalization `prefix+bn`,
    Activation `prefix+act` (none when `act` is None)."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                      kernel_initializer=conv_init(), name=f"{prefix}{conv}")(x)
    x = layers.BatchNormalization(axis=3, momentum=momentum, name=f"{prefix}{bn}")(x)
    if act is None:
        return x
    return layers.Activation(activation, name=f"{prefix}{act}")(x)


def residual(x, inputs, drop_rate, prefix):
    """`x + inputs`, after dropping whole samples of `x` at `drop_rate` while training."""
    if drop_rate > 0:
        x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{prefix}drop")(x)
    return layers.add([x, inputs], name=f"{prefix}add")


def head(x, include_top, pooling, classes, classifier_activation, dropout_rate):
    """Global average pooling, dropout and the `predictions` layer, or the optional pooling."""
    if not include_top:
        return builder.pooled_features(x, pooling, "avg_pool", "max_pool")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="top_dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, kernel_initializer=dense_init(),
                        name="predictions")(x)


def _block(inputs, activation, drop_rate, prefix, filters_in, filters_out, kernel_size,
           strides, expand_ratio, se_ratio=0.25):
    """Inverted residual block: 1x1 expansion, depthwise convolution, squeeze-and-excite,
    linear 1x1 projection, and the shortcut when the shapes allow."""
    x = inputs
    if expand_ratio != 1:
        x = conv_bn_act(x, filters_in * expand_ratio, 1, activation, prefix, "expand_conv",
                        "expand_bn", "expand_activation")
    if strides == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, kernel_size),
                                 name=f"{prefix}dwconv_pad")(x)
    x = layers.DepthwiseConv2D(kernel_size, strides=strides,
                               padding="valid" if strides == 2 else "same", use_bias=False,
                               depthwise_initializer=conv_init(), name=f"{prefix}dwconv")(x)
    x = layers.BatchNormalization(axis=3, name=f"{prefix}bn")(x)
    x = layers.Activation(activation, name=f"{prefix}activation")(x)
    x = squeeze_excite(x, filters_in, se_ratio, activation, prefix)
    x = conv_bn_act(x, filters_out, 1, activation, prefix, "project_conv", "project_bn", None)
    if strides == 1 and filters_in == filters_out:
        x = residual(x, inputs, drop_rate, prefix)
    return x


def _stem(img_input, weights, filters):
    """Scale pixels to 0..1 and normalize them (the `Normalization` layer's statistics come
    with the weights), then the strided 3x3 convolution."""
    x = layers.Rescaling(1.0 / 255.0)(img_input)
    x = layers.Normalization(axis=3)(x)
    if weights == "imagenet":
        x = layers.Rescaling([1.0 / math.sqrt(s) for s in _IMAGENET_STDDEV_RGB])(x)
    x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name="stem_conv_pad")(x)
    x = layers.Conv2D(filters, 3, strides=2, padding="valid", use_bias=False,
                      kernel_initializer=conv_init(), name="stem_conv")(x)
    x = layers.BatchNormalization(axis=3, name="stem_bn")(x)
    return layers.Activation("swish", name="stem_activation")(x)


def build_efficientnet(variant, include_top, weights, input_tensor, input_shape, pooling,
                       classes, classifier_activation, name):
    """EfficientNet `variant` ('b0' to 'b7') with the arguments of the public constructors."""
    width, depth, size, dropout_rate = _SCALING[variant]
    arch = f"efficientnet{variant}"
    img_input = builder.prepare_input(weights, include_top, classes, name or arch,
                                      classifier_activation, pooling, input_tensor, input_shape,
                                      size, 32)
    path = builder.imagenet_file(weights, include_top, (f"{arch}.h5", _HASHES[variant][0]),
                                 (f"{arch}_notop.h5", _HASHES[variant][1]), _BASE_URL,
                                 name or arch)

    def filters(n):
        return int(builder.make_divisible(n * width, 8))

    def repeats(n):
        return int(math.ceil(depth * n))

    x = _stem(img_input, weights, filters(32))
    total = float(sum(repeats(stage[1]) for stage in _STAGES))
    b = 0
    for i, (kernel, n, f_in, f_out, expand, stride) in enumerate(_STAGES):
        f_in, f_out = filters(f_in), filters(f_out)
        for j in range(repeats(n)):
            x = _block(x, "swish", _DROP_CONNECT * b / total, f"block{i + 1}{chr(j + 97)}_",
                       f_in if j == 0 else f_out, f_out, kernel, stride if j == 0 else 1,
                       expand)
            b += 1
    x = conv_bn_act(x, filters(1280), 1, "swish", "top_", "conv", "bn", "activation")
    x = head(x, include_top, pooling, classes, classifier_activation, dropout_rate)
    return builder.finish(input_tensor, img_input, x, name, path)


_DOC = """ network, with ImageNet weights by default.

    Layer names, order and parameter counts match the Keras application of the same name.
    The model takes pixels in 0..255 (its first layers rescale and normalize them).
"""


def EfficientNetB0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb0"):
    return build_efficientnet("b0", include_top, weights, input_tensor, input_shape, pooling,
                              classes, classifier_activation, name)


def EfficientNetB1(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb1"):
    return build_efficientnet("b1", include_top, weights, input_tensor, input_shape, pooling,
                              classes, classifier_activation, name)


def EfficientNetB2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb2"):
    return build_efficientnet("b2", include_top, weights, input_tensor, input_shape, pooling,
                              classes, classifier_activation, name)


def EfficientNetB3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb3"):
    return build_efficientnet("b3", include_top, weights, input_tensor, input_shape, pooling,
                              classes, classifier_activation, name)


def EfficientNetB4(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb4"):
    return build_efficientnet("b4", include_top, weights, input_tensor, input_shape, pooling,
                              classes, classifier_activation, name)


def EfficientNetB5(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb5"):
    return build_efficientnet("b5", include_top, weights, input_tensor, input_shape, pooling,
                              classes, classifier_activation, name)


def EfficientNetB6(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb6"):
    return build_efficientnet("b6", include_top, weights, input_tensor, input_shape, pooling,
                              classes, classifier_activation, name)


def EfficientNetB7(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax",
                   name="efficientnetb7"):
    return build_efficientnet("b7", include_top, weights, input_tensor, input_shape, pooling,
                              classes, classifier_activation, name)


for _fn, _v in zip((EfficientNetB0, EfficientNetB1, EfficientNetB2, EfficientNetB3,
                    EfficientNetB4, EfficientNetB5, EfficientNetB6, EfficientNetB7), _SCALING):
    _fn.__doc__ = f"The EfficientNet{_v.upper()}" + _DOC + builder.args_doc(32, _SCALING[_v][2])


def preprocess_input(x, data_format=None):
    """Returns `x` unchanged: EfficientNet models rescale and normalize pixels (0..255)
    themselves. Kept so that code written for other applications runs unchanged."""
    return x


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
