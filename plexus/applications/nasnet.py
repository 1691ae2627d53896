"""NASNetMobile and NASNetLarge (Zoph et al., 2018): normal and reduction cells found by neural
architecture search, each combining the two previous cells' outputs.

Reference: [Learning Transferable Architectures for Scalable Image Recognition](
https://arxiv.org/abs/1707.07012).
"""
from plexus import layers
from plexus.applications import builder, imagenet_utils
from plexus.applications.weights_files import BASE_URL

# default image size: the (cached file, hash, published file) with and without the top.
_FILES = {
    224: (("nasnet_mobile.h5", "020fb642bf7360b370c678b08e0adf61", "NASNet-mobile.h5"),
          ("nasnet_mobile_no_top.h5", "1ed92395b5b598bdda52abe5c0dbfd63",
           "NASNet-mobile-no-top.h5")),
    331: (("nasnet_large.h5", "11577c9a518f0070763c2b964a382f17", "NASNet-large.h5"),
          ("nasnet_large_no_top.h5", "d81d89dc07e6e56530c4e77faddd61b5",
           "NASNet-large-no-top.h5")),
}


def _bn(x, name):
    return layers.BatchNormalization(axis=-1, momentum=0.9997, epsilon=1e-3, name=name)(x)


def _conv1x1(x, filters, name):
    return layers.Conv2D(filters, (1, 1), strides=(1, 1), padding="same", use_bias=False,
                         name=name, kernel_initializer="he_normal")(x)


def _separable_conv_block(x, filters, kernel_size=(3, 3), strides=(1, 1), block_id=None):
    """Twice ReLU, separable convolution, BatchNormalization (the first one strided)."""
    x = layers.Activation("relu")(x)
    if strides == (2, 2):
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, kernel_size),
                                 name=f"separable_conv_1_pad_{block_id}")(x)
    x = layers.SeparableConv2D(filters, kernel_size, strides=strides,
                               name=f"separable_conv_1_{block_id}",
                               padding="valid" if strides == (2, 2) else "same",
                               use_bias=False)(x)
    x = _bn(x, f"separable_conv_1_bn_{block_id}")
    x = layers.Activation("relu")(x)
    x = layers.SeparableConv2D(filters, kernel_size, name=f"separable_conv_2_{block_id}",
                               padding="same", use_bias=False)(x)
    return _bn(x, f"separable_conv_2_bn_{block_id}")


def _adjust_block(p, ip, filters, block_id):
    """The previous cell's output `p` brought to the grid and width of `ip`: halved by two
    offset strided paths when its grid is larger, projected when its width differs."""
    if p is None:
        return ip
    if p.shape[-2] != ip.shape[-2]:
        p = layers.Activation("relu", name=f"adjust_relu_1_{block_id}")(p)
        p1 = layers.AveragePooling2D((1, 1), strides=(2, 2), padding="valid",
                                     name=f"adjust_avg_pool_1_{block_id}")(p)
        p1 = _conv1x1(p1, filters // 2, f"adjust_conv_1_{block_id}")
        p2 = layers.ZeroPadding2D(padding=((0, 1), (0, 1)))(p)
        p2 = layers.Cropping2D(cropping=((1, 0), (1, 0)))(p2)
        p2 = layers.AveragePooling2D((1, 1), strides=(2, 2), padding="valid",
                                     name=f"adjust_avg_pool_2_{block_id}")(p2)
        p2 = _conv1x1(p2, filters // 2, f"adjust_conv_2_{block_id}")
        p = layers.concatenate([p1, p2], axis=-1)
        return _bn(p, f"adjust_bn_{block_id}")
    if p.shape[-1] != filters:
        p = layers.Activation("relu")(p)
        p = _conv1x1(p, filters, f"adjust_conv_projection_{block_id}")
        return _bn(p, f"adjust_bn_{block_id}")
    return p


def _cell_input(ip, p, filters, kind, block_id):
    """The adjusted previous output and the ReLU-1x1-BN projection of the current input."""
    p = _adjust_block(p, ip, filters, block_id)
    h = layers.Activation("relu")(ip)
    h = _conv1x1(h, filters, f"{kind}_conv_1_{block_id}")
    return p, _bn(h, f"{kind}_bn_1_{block_id}")


def _avg_pool(x, name, strides=(1, 1), padding="same"):
    return layers.AveragePooling2D((3, 3), strides=strides, padding=padding, name=name)(x)


def _normal_a_cell(ip, p, filters, block_id):
    """Normal cell: five pairwise combinations of `h` (this input) and `p` (the previous one),
    concatenated with `p`. Returns `(output, ip)`."""
    p, h = _cell_input(ip, p, filters, "normal", block_id)
    x1 = layers.add([_separable_conv_block(h, filters, (5, 5), block_id=f"normal_left1_{block_id}"),
                     _separable_conv_block(p, filters, block_id=f"normal_right1_{block_id}")],
                    name=f"normal_add_1_{block_id}")
    x2 = layers.add([_separable_conv_block(p, filters, (5, 5), block_id=f"normal_left2_{block_id}"),
                     _separable_conv_block(p, filters, (3, 3),
                                           block_id=f"normal_right2_{block_id}")],
                    name=f"normal_add_2_{block_id}")
    x3 = layers.add([_avg_pool(h, f"normal_left3_{block_id}"), p],
                    name=f"normal_add_3_{block_id}")
    x4 = layers.add([_avg_pool(p, f"normal_left4_{block_id}"),
                     _avg_pool(p, f"normal_right4_{block_id}")],
                    name=f"normal_add_4_{block_id}")
    x5 = layers.add([_separable_conv_block(h, filters, block_id=f"normal_left5_{block_id}"), h],
                    name=f"normal_add_5_{block_id}")
    x = layers.concatenate([p, x1, x2, x3, x4, x5], axis=-1, name=f"normal_concat_{block_id}")
    return x, ip


def _reduction_a_cell(ip, p, filters, block_id):
    """Reduction cell: halves the grid with strided separable convolutions and poolings.
    Returns `(output, ip)`."""
    p, h = _cell_input(ip, p, filters, "reduction", block_id)
    h3 = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(h, 3),
                              name=f"reduction_pad_1_{block_id}")(h)
    x1 = layers.add([
        _separable_conv_block(h, filters, (5, 5), (2, 2), f"reduction_left1_{block_id}"),
        _separable_conv_block(p, filters, (7, 7), (2, 2), f"reduction_right1_{block_id}")],
        name=f"reduction_add_1_{block_id}")
    x2 = layers.add([
        layers.MaxPooling2D((3, 3), strides=(2, 2), padding="valid",
                            name=f"reduction_left2_{block_id}")(h3),
        _separable_conv_block(p, filters, (7, 7), (2, 2), f"reduction_right2_{block_id}")],
        name=f"reduction_add_2_{block_id}")
    x3 = layers.add([
        _avg_pool(h3, f"reduction_left3_{block_id}", (2, 2), "valid"),
        _separable_conv_block(p, filters, (5, 5), (2, 2), f"reduction_right3_{block_id}")],
        name=f"reduction_add3_{block_id}")
    x4 = layers.add([x2, _avg_pool(x1, f"reduction_left4_{block_id}")])
    x5 = layers.add([
        _separable_conv_block(x1, filters, (3, 3), block_id=f"reduction_left4_{block_id}"),
        layers.MaxPooling2D((3, 3), strides=(2, 2), padding="valid",
                            name=f"reduction_right5_{block_id}")(h3)],
        name=f"reduction_add4_{block_id}")
    x = layers.concatenate([x2, x3, x4, x5], axis=-1, name=f"reduction_concat_{block_id}")
    return x, ip


def build_nasnet(input_shape, penultimate_filters, num_blocks, stem_block_filters,
                 skip_reduction, filter_multiplier, include_top, weights, input_tensor, pooling,
                 classes, default_size, classifier_activation, name):
    """A NASNet-A network: a strided stem, two reduction cells, then three stacks of
    `num_blocks` normal cells separated by reduction cells."""
    label = name or f"NASNet{'Mobile' if default_size == 224 else 'Large'}"
    if (isinstance(input_shape, tuple) and None in input_shape and weights == "imagenet"):
        raise ValueError(
            f"{label}: ImageNet weights need a fixed input size; received "
            f"input_shape={input_shape}. Give rows and cols, or use weights=None.")
    img_input = builder.prepare_input(weights, include_top, classes, label,
                                      classifier_activation, pooling, input_tensor, input_shape,
                                      default_size, 32)
    path = builder.imagenet_file(weights, include_top, *_FILES[default_size],
                                 f"{BASE_URL}nasnet/", label)
    filters = penultimate_filters // 24
    x = layers.Conv2D(stem_block_filters, (3, 3), strides=(2, 2), padding="valid",
                      use_bias=False, name="stem_conv1", kernel_initializer="he_normal")(
        img_input)
    x = _bn(x, "stem_bn1")
    x, p = _reduction_a_cell(x, None, filters // filter_multiplier ** 2, "stem_1")
    x, p = _reduction_a_cell(x, p, filters // filter_multiplier, "stem_2")
    for stack in range(3):
        if stack:
            width = filters * filter_multiplier ** stack
            x, p0 = _reduction_a_cell(x, p, width, f"reduce_{stack * num_blocks}")
            p = p if skip_reduction else p0
        for i in range(num_blocks):
            block_id = f"{stack * num_blocks + i + (1 if stack else 0)}"
            x, p = _normal_a_cell(x, p, filters * filter_multiplier ** stack, block_id)
    x = layers.Activation("relu")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D()(x)
        x = builder.dense_predictions(x, classes, classifier_activation)
    else:
        x = builder.pooled_features(x, pooling)
    return builder.finish(input_tensor, img_input, x, name, path)


_DOC = """ network, with ImageNet weights by default.

    Layer names (default names such as `activation_12` included, counted from a fresh
    `clear_session()`), order and parameter counts match the Keras application of the same
    name. Preprocess images with `plexus.applications.nasnet.preprocess_input` (scales to
    -1..1).
"""


def NASNetMobile(input_shape=None, include_top=True, weights="imagenet", input_tensor=None,
                 pooling=None, classes=1000, classifier_activation="softmax",
                 name="nasnet_mobile"):
    if not include_top and input_shape is None:
        input_shape = (224, 224, 3)
    return build_nasnet(input_shape, 1056, 4, 32, False, 2, include_top, weights, input_tensor,
                        pooling, classes, 224, classifier_activation, name)


def NASNetLarge(input_shape=None, include_top=True, weights="imagenet", input_tensor=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="nasnet_large"):
    return build_nasnet(input_shape, 4032, 6, 96, True, 2, include_top, weights, input_tensor,
                        pooling, classes, 331, classifier_activation, name)


NASNetMobile.__doc__ = "The NASNetMobile" + _DOC + builder.args_doc(
    32, 224, shape_note=" Without the top it is (224, 224, 3) unless given.")
NASNetLarge.__doc__ = "The NASNetLarge" + _DOC + builder.args_doc(32, 331)


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to NASNet's input: values scaled to -1..1."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
