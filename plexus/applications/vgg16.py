"""VGG16 (Simonyan & Zisserman, 2015): stacks of 3x3 convolutions and max pooling.

Reference: [Very Deep Convolutional Networks for Large-Scale Image Recognition](
https://arxiv.org/abs/1409.1556).
"""
from plexus import layers
from plexus.applications import builder, imagenet_utils

_FILES = {
    "vgg16": ("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b",
              "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
              "6d6bbae143d832006294945121d1f1fc"),
    "vgg19": ("vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318",
              "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
              "253f8cb515780f3b799900260a226db6"),
}
# Convolutions per block for each depth; the blocks have 64, 128, 256, 512, 512 filters.
_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}


def build_vgg(arch, include_top, weights, input_tensor, input_shape, pooling, classes,
              classifier_activation, name):
    """VGG16 or VGG19 (`arch`), with the arguments of the public constructors."""
    label = arch.upper()
    img_input, path = builder.prepare(
        weights, include_top, classes, label, classifier_activation, pooling, input_tensor,
        input_shape, 224, 32, _FILES[arch], arch)
    x = img_input
    for block, (n_convs, filters) in enumerate(zip(_BLOCKS[arch], (64, 128, 256, 512, 512)), 1):
        for i in range(1, n_convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same",
                              name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = builder.dense_predictions(x, classes, classifier_activation)
    else:
        x = builder.classifier_top(x, False, pooling, classes, classifier_activation)
    return builder.finish(input_tensor, img_input, x, name, path)


def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg16"):
    """The VGG16 network, with ImageNet weights by default.

    Layer names, order and parameter counts match `keras.applications.VGG16`, so Keras weight
    files load into it. Use `plexus.applications.vgg16.preprocess_input` on images first
    (RGB to BGR, minus the ImageNet channel means).
    """
    return build_vgg("vgg16", include_top, weights, input_tensor, input_shape, pooling, classes,
                     classifier_activation, name)


builder.add_args_doc(VGG16, 32, 224, top="the three fully connected layers at the top",
                     example="""
    Example:
        >>> model = VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 2, 2, 512)
""")


def preprocess_input(x, data_format=None):
    """Images (RGB, 0..255) to VGG's input: BGR, minus the ImageNet channel means."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
