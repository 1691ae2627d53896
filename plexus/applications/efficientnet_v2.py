"""EfficientNetV2 B0-B3, S, M and L (Tan and Le, 2021): fused and depthwise inverted residual
blocks, trained for speed and accuracy together.

Reference: [EfficientNetV2: Smaller Models and Faster Training](https://arxiv.org/abs/2104.00298).

With `include_preprocessing=True` (the default) the models take pixels in 0..255 and scale them
themselves, so `preprocess_input` returns its input unchanged.
"""
import math

from plexus import layers
from plexus.applications import builder, imagenet_utils
from plexus.applications.efficientnet import conv_bn_act, conv_init, head, residual, squeeze_excite

_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
_HASHES = {  # (with top, without top)
    "b0": ("21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
    "b1": ("069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
    "b2": ("424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
    "b3": ("1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
    "-s": ("e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
    "-m": ("a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
    "-l": ("27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
}
# Stages: (fused, repeats, filters in, filters out, expansion, stride, squeeze-excite ratio);
# every kernel is 3x3.
_B = ((1, 1, 32, 16, 1, 1, 0), (1, 2, 16, 32, 4, 2, 0), (1, 2, 32, 48, 4, 2, 0),
      (0, 3, 48, 96, 4, 2, 0.25), (0, 5, 96, 112, 6, 1, 0.25), (0, 8, 112, 192, 6, 2, 0.25))
_S = ((1, 2, 24, 24, 1, 1, 0), (1, 4, 24, 48, 4, 2, 0), (1, 4, 48, 64, 4, 2, 0),
      (0, 6, 64, 128, 4, 2, 0.25), (0, 9, 128, 160, 6, 1, 0.25), (0, 15, 160, 256, 6, 2, 0.25))
_M = ((1, 3, 24, 24, 1, 1, 0), (1, 5, 24, 48, 4, 2, 0), (1, 5, 48, 80, 4, 2, 0),
      (0, 7, 80, 160, 4, 2, 0.25), (0, 14, 160, 176, 6, 1, 0.25), (0, 18, 176, 304, 6, 2, 0.25),
      (0, 5, 304, 512, 6, 1, 0.25))
_L = ((1, 4, 32, 32, 1, 1, 0), (1, 7, 32, 64, 4, 2, 0), (1, 7, 64, 96, 4, 2, 0),
      (0, 10, 96, 192, 4, 2, 0.25), (0, 19, 192, 224, 6, 1, 0.25), (0, 25, 224, 384, 6, 2, 0.25),
      (0, 7, 384, 640, 6, 1, 0.25))
# variant: (stages, width coefficient, depth coefficient, image size).
_VARIANTS = {"b0": (_B, 1.0, 1.0, 224), "b1": (_B, 1.0, 1.1, 240), "b2": (_B, 1.1, 1.2, 260),
             "b3": (_B, 1.2, 1.4, 300), "-s": (_S, 1.0, 1.0, 384), "-m": (_M, 1.0, 1.0, 480),
             "-l": (_L, 1.0, 1.0, 480)}
_DROPOUT = 0.2
_DROP_CONNECT = 0.2
_MOMENTUM = 0.9


def _mbconv(inputs, prefix, filters_in, filters_out, expand_ratio, strides, se_ratio,
            drop_rate):
    """1x1 expansion, 3x3 depthwise convolution, squeeze-and-excite, linear 1x1 projection."""
    x = inputs
    if expand_ratio != 1:
        x = conv_bn_act(x, filters_in * expand_ratio, 1, "swish", prefix, "expand_conv",
                        "expand_bn", "expand_activation", momentum=_MOMENTUM)
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                               depthwise_initializer=conv_init(), name=f"{prefix}dwconv2")(x)
    x = layers.BatchNormalization(axis=3, momentum=_MOMENTUM, name=f"{prefix}bn")(x)
    x = layers.Activation("swish", name=f"{prefix}activation")(x)
    if 0 < se_ratio <= 1:
        x = squeeze_excite(x, filters_in, se_ratio, "swish", prefix)
    x = conv_bn_act(x, filters_out, 1, "swish", prefix, "project_conv", "project_bn", None,
                    momentum=_MOMENTUM)
    if strides == 1 and filters_in == filters_out:
        x = residual(x, inputs, drop_rate, prefix)
    return x


def _fused_mbconv(inputs, prefix, filters_in, filters_out, expand_ratio, strides, se_ratio,
                  drop_rate):
    """A full 3x3 convolution in place of expansion and depthwise convolution, then the
    optional squeeze-and-excite and the 1x1 projection (the 3x3 one when not expanding)."""
    x = inputs
    if expand_ratio != 1:
        x = conv_bn_act(x, filters_in * expand_ratio, 3, "swish", prefix, "expand_conv",
                        "expand_bn", "expand_activation", strides=strides, momentum=_MOMENTUM)
    if 0 < se_ratio <= 1:
        x = squeeze_excite(x, filters_in, se_ratio, "swish", prefix)
    expanded = expand_ratio != 1
    x = conv_bn_act(x, filters_out, 1 if expanded else 3, "swish", prefix, "project_conv",
                    "project_bn", None if expanded else "project_activation",
                    strides=1 if expanded else strides, momentum=_MOMENTUM)
    if strides == 1 and filters_in == filters_out:
        x = residual(x, inputs, drop_rate, prefix)
    return x


def _preprocessing(x, variant):
    """B0-B3 scale to 0..1 and normalize with the ImageNet mean and variance; S, M and L scale
    to -1..1."""
    if variant.startswith("b") and x.shape[-1] == 3:
        x = layers.Rescaling(scale=1.0 / 255)(x)
        return layers.Normalization(mean=[0.485, 0.456, 0.406],
                                    variance=[0.229 ** 2, 0.224 ** 2, 0.225 ** 2], axis=3)(x)
    return layers.Rescaling(scale=1.0 / 128.0, offset=-1)(x)


def build_efficientnet_v2(variant, include_top, weights, input_tensor, input_shape, pooling,
                          classes, classifier_activation, include_preprocessing, name):
    """EfficientNetV2 `variant` ('b0'..'b3', '-s', '-m', '-l') with the public arguments."""
    stages, width, depth, size = _VARIANTS[variant]
    arch = f"efficientnetv2{variant if variant.startswith('-') else '-' + variant}"
    label = name or arch
    img_input = builder.prepare_input(weights, include_top, classes, label,
                                      classifier_activation, pooling, input_tensor, input_shape,
                                      size, 32)
    path = builder.imagenet_file(weights, include_top, (f"{arch}.h5", _HASHES[variant][0]),
                                 (f"{arch}_notop.h5", _HASHES[variant][1]), _BASE_URL, label)

    def filters(n):
        return int(max(8, int(n * width + 4) // 8 * 8))

    x = _preprocessing(img_input, variant) if include_preprocessing else img_input
    x = conv_bn_act(x, filters(stages[0][2]), 3, "swish", "stem_", "conv", "bn", "activation",
                    strides=2, momentum=_MOMENTUM)
    total = float(sum(stage[1] for stage in stages))
    b = 0
    for i, (fused, n, f_in, f_out, expand, stride, se_ratio) in enumerate(stages):
        f_in, f_out = filters(f_in), filters(f_out)
        block = _fused_mbconv if fused else _mbconv
        for j in range(int(math.ceil(depth * n))):
            x = block(x, f"block{i + 1}{chr(j + 97)}_", f_in if j == 0 else f_out, f_out,
                      expand, stride if j == 0 else 1, se_ratio, _DROP_CONNECT * b / total)
            b += 1
    x = conv_bn_act(x, filters(1280), 1, "swish", "top_", "conv", "bn", "activation",
                    momentum=_MOMENTUM)
    x = head(x, include_top, pooling, classes, classifier_activation, _DROPOUT)
    return builder.finish(input_tensor, img_input, x, name, path)


_DOC = """ network, with ImageNet weights by default.

    Layer names, order and parameter counts match the Keras application of the same name.
    With `include_preprocessing=True` the model takes pixels in 0..255.
"""
_PREPROCESSING_DOC = """
        include_preprocessing: whether the model starts by scaling (and for B0-B3
            normalizing) pixels in 0..255 itself."""


def EfficientNetV2B0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name="efficientnetv2-b0"):
    return build_efficientnet_v2("b0", include_top, weights, input_tensor, input_shape, pooling,
                                 classes, classifier_activation, include_preprocessing, name)


def EfficientNetV2B1(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name="efficientnetv2-b1"):
    return build_efficientnet_v2("b1", include_top, weights, input_tensor, input_shape, pooling,
                                 classes, classifier_activation, include_preprocessing, name)


def EfficientNetV2B2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name="efficientnetv2-b2"):
    return build_efficientnet_v2("b2", include_top, weights, input_tensor, input_shape, pooling,
                                 classes, classifier_activation, include_preprocessing, name)


def EfficientNetV2B3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name="efficientnetv2-b3"):
    return build_efficientnet_v2("b3", include_top, weights, input_tensor, input_shape, pooling,
                                 classes, classifier_activation, include_preprocessing, name)


def EfficientNetV2S(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name="efficientnetv2-s"):
    return build_efficientnet_v2("-s", include_top, weights, input_tensor, input_shape, pooling,
                                 classes, classifier_activation, include_preprocessing, name)


def EfficientNetV2M(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name="efficientnetv2-m"):
    return build_efficientnet_v2("-m", include_top, weights, input_tensor, input_shape, pooling,
                                 classes, classifier_activation, include_preprocessing, name)


def EfficientNetV2L(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name="efficientnetv2-l"):
    return build_efficientnet_v2("-l", include_top, weights, input_tensor, input_shape, pooling,
                                 classes, classifier_activation, include_preprocessing, name)


for _fn, _v in zip((EfficientNetV2B0, EfficientNetV2B1, EfficientNetV2B2, EfficientNetV2B3,
                    EfficientNetV2S, EfficientNetV2M, EfficientNetV2L), _VARIANTS):
    _fn.__doc__ = (f"The EfficientNetV2{_v.lstrip('-').upper()}" + _DOC
                   + builder.args_doc(32, _VARIANTS[_v][3], extra=_PREPROCESSING_DOC))


def preprocess_input(x, data_format=None):
    """Returns `x` unchanged: EfficientNetV2 models scale pixels (0..255) themselves. Kept so
    that code written for other applications runs unchanged."""
    return x


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
