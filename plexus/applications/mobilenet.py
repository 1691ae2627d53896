"""MobileNet (Howard et al., 2017): a stack of depthwise separable convolutions.

Reference: [MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications](
https://arxiv.org/abs/1704.04861).
"""
import warnings

from plexus import layers
from plexus.applications import builder, imagenet_utils
from plexus.applications.weights_files import BASE_URL, get_file

_SIZES = (128, 160, 192, 224)
_ALPHA_TEXT = {0.25: "2_5", 0.50: "5_0", 0.75: "7_5", 1.0: "1_0"}
# (pointwise filters, stride) of the depthwise separable blocks 1..13.
_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
           (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _depthwise_block(x, filters, alpha, depth_multiplier, strides, block_id):
    """Depthwise 3x3 (stride), BN, ReLU6, pointwise 1x1, BN, ReLU6."""
    if strides != 1:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
    x = layers.DepthwiseConv2D((3, 3), padding="same" if strides == 1 else "valid",
                               depth_multiplier=depth_multiplier, strides=strides,
                               use_bias=False, name=f"conv_dw_{block_id}")(x)
    x = layers.BatchNormalization(axis=-1, name=f"conv_dw_{block_id}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = layers.Conv2D(int(filters * alpha), (1, 1), padding="same", use_bias=False,
                      strides=(1, 1), name=f"conv_pw_{block_id}")(x)
    x = layers.BatchNormalization(axis=-1, name=f"conv_pw_{block_id}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


def _weights_file(weights, include_top, alpha, depth_multiplier, rows, cols):
    """`(path, rows)`: the weights file to load and the resolution it was trained at (for
    ImageNet weights 224 when no published size matches, with a warning)."""
    if weights != "imagenet":
        return weights, rows
    if depth_multiplier != 1:
        raise ValueError(
            "MobileNet: ImageNet weights exist for depth_multiplier=1 only; received "
            f"depth_multiplier={depth_multiplier}. Use weights=None for other values.")
    if alpha not in _ALPHA_TEXT:
        raise ValueError(
            f"MobileNet: ImageNet weights exist for alpha in {tuple(_ALPHA_TEXT)}; received "
            f"alpha={alpha}. Use one of these, or weights=None.")
    if rows != cols or rows not in _SIZES:
        warnings.warn(
            "MobileNet: input_shape is undefined, not square, or its size is not one of "
            f"{_SIZES}; loading the weights trained at 224x224.", stacklevel=3)
        rows = 224
    fname = f"mobilenet_{_ALPHA_TEXT[alpha]}_{rows}_tf{'' if include_top else '_no_top'}.h5"
    return get_file(fname, f"{BASE_URL}mobilenet/{fname}",
                    what="the ImageNet weights of MobileNet"), rows


def MobileNet(input_shape=None, alpha=1.0, depth_multiplier=1, dropout=1e-3, include_top=True,
              weights="imagenet", input_tensor=None, pooling=None, classes=1000,
              classifier_activation="softmax", name=None):
    """The MobileNet network, with ImageNet weights by default.

    Layer names, order and parameter counts match `keras.applications.MobileNet`.
    Preprocess images with `plexus.applications.mobilenet.preprocess_input` (scales to -1..1).

    Args:
        input_shape: `(rows, cols, 3)`, at least 32x32; pretrained weights exist for square
            sizes 128, 160, 192 and 224.
        alpha: width multiplier: < 1 thins every layer, > 1 widens it (pretrained: 0.25,
            0.5, 0.75, 1.0).
        depth_multiplier: depthwise channels per input channel (pretrained: 1).
        dropout: dropout rate before the classifier.
        include_top: whether to include the global pooling and the 1x1 convolution classifier.
        weights: None (random), 'imagenet' (looked for in `~/.keras/models`, else downloaded)
            or the path to a weights file.
        input_tensor: a symbolic tensor to use as the image input.
        pooling: without the top, None (4D feature maps), 'avg' or 'max' (global pooling).
        classes: number of classes of the top (1000 for ImageNet weights).
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: the model's name; `mobilenet_{alpha:.2f}_{rows}` by default.

    Returns:
        A `plexus.Model`.
    """
    builder.check_arguments(weights, include_top, classes, "MobileNet", classifier_activation,
                            pooling)
    default_size = 224
    if input_shape is not None and input_shape[0] == input_shape[1] \
            and input_shape[0] in _SIZES:
        default_size = input_shape[0]
    shape = imagenet_utils.obtain_input_shape(input_shape, default_size, 32, include_top,
                                              weights)
    path, rows = _weights_file(weights, include_top, alpha, depth_multiplier, shape[0],
                               shape[1])
    img_input = builder.image_input(input_tensor, shape, "MobileNet")
    x = layers.Conv2D(int(32 * alpha), (3, 3), padding="same", use_bias=False, strides=(2, 2),
                      name="conv1")(img_input)
    x = layers.BatchNormalization(axis=-1, name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block_id, (filters, strides) in enumerate(_BLOCKS, start=1):
        x = _depthwise_block(x, filters, alpha, depth_multiplier, strides, block_id)
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, (1, 1), padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape_2")(x)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = builder.pooled_features(x, pooling)
    name = name or f"mobilenet_{alpha:0.2f}_{rows}"
    return builder.finish(input_tensor, img_input, x, name, path)


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to MobileNet's input: values scaled to -1..1."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
