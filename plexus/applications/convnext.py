"""ConvNeXt Tiny, Small, Base, Large and XLarge (Liu et al., 2022): a ResNet modernized with
large depthwise kernels, LayerNormalization, GELU and per-channel layer scale.

Reference: [A ConvNet for the 2020s](https://arxiv.org/abs/2201.03545).

The models take pixels in 0..255: normalization is the model's first layer, so
`preprocess_input` returns its input unchanged.
"""
from plexus import initializers, layers, models
from plexus.applications import builder, imagenet_utils

_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/convnext/"
_HASHES = {  # SHA-256 (with top, without top)
    "tiny": ("8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff",
             "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1"),
    "small": ("ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c",
              "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab"),
    "base": ("52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6",
             "40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45"),
    "large": ("070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6",
              "96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd"),
    "xlarge": ("c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee",
               "de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05"),
}
# variant: (blocks per stage, channels per stage).
_CONFIGS = {"tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
            "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
            "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
            "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
            "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048))}
_LAYER_SCALE = 1e-6
_EPS = 1e-6


class LayerScale(layers.Layer):
    """Multiplies each channel by a learned factor `gamma` (initially `init_values`).

    Args:
        init_values: the initial value of every factor.
        projection_dim: the number of channels (the last axis).
    """

    def __init__(self, init_values, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.init_values, self.projection_dim = init_values, projection_dim

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(self.projection_dim,),
                                     initializer=initializers.Constant(self.init_values),
                                     name="gamma")
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, x):
        return x * self.gamma

    def get_config(self):
        return {**super().get_config(), "init_values": self.init_values,
                "projection_dim": self.projection_dim}


def _block(inputs, dim, name):
    """7x7 depthwise convolution, LayerNormalization, an MLP of 4 * `dim` with GELU (Dense on
    the channels), layer scale, plus the input."""
    x = layers.Conv2D(dim, kernel_size=7, padding="same", groups=dim,
                      name=f"{name}_depthwise_conv")(inputs)
    x = layers.LayerNormalization(epsilon=_EPS, name=f"{name}_layernorm")(x)
    x = layers.Dense(4 * dim, name=f"{name}_pointwise_conv_1")(x)
    x = layers.Activation("gelu", name=f"{name}_gelu")(x)
    x = layers.Dense(dim, name=f"{name}_pointwise_conv_2")(x)
    x = LayerScale(_LAYER_SCALE, dim, name=f"{name}_layer_scale")(x)
    # Stochastic depth is off in every published configuration: an identity stands in its place.
    x = layers.Activation("linear", name=f"{name}_identity")(x)
    return inputs + x


def _downsampling(name, dims):
    """The patchify stem (4x4 convolution, stride 4) and the three 2x2 downsampling steps,
    each a nested Sequential model as in Keras."""
    stem = models.Sequential([
        layers.Conv2D(dims[0], kernel_size=4, strides=4, name=f"{name}_stem_conv"),
        layers.LayerNormalization(epsilon=_EPS, name=f"{name}_stem_layernorm"),
    ], name=f"{name}_stem")
    steps = [stem]
    for i in range(3):
        steps.append(models.Sequential([
            layers.LayerNormalization(epsilon=_EPS, name=f"{name}_downsampling_layernorm_{i}"),
            layers.Conv2D(dims[i + 1], kernel_size=2, strides=2,
                          name=f"{name}_downsampling_conv_{i}"),
        ], name=f"{name}_downsampling_block_{i}"))
    return steps


def build_convnext(variant, include_top, include_preprocessing, weights, input_tensor,
                   input_shape, pooling, classes, classifier_activation, name):
    """ConvNeXt `variant` ('tiny' .. 'xlarge') with the arguments of the public constructors."""
    depths, dims = _CONFIGS[variant]
    arch = f"convnext_{variant}"
    label = name or arch
    img_input = builder.prepare_input(weights, include_top, classes, label,
                                      classifier_activation, pooling, input_tensor, input_shape,
                                      224, 32)
    path = builder.imagenet_file(weights, include_top, (f"{arch}.h5", _HASHES[variant][0]),
                                 (f"{arch}_notop.h5", _HASHES[variant][1]), _BASE_URL, label)
    name = name or arch
    x = img_input
    if include_preprocessing and x.shape[-1] == 3:
        x = layers.Normalization(
            mean=[0.485 * 255, 0.456 * 255, 0.406 * 255],
            variance=[(0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2],
            name=f"{name}_prestem_normalization")(x)
    for i, step in enumerate(_downsampling(name, dims)):
        x = step(x)
        for j in range(depths[i]):
            x = _block(x, dims[i], f"{name}_stage_{i}_block_{j}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name=f"{name}_head_gap")(x)
        x = layers.LayerNormalization(epsilon=_EPS, name=f"{name}_head_layernorm")(x)
        x = layers.Dense(classes, activation=classifier_activation, name=f"{name}_head_dense")(x)
    else:
        x = builder.pooled_features(x, pooling)
        x = layers.LayerNormalization(epsilon=_EPS)(x)
    return builder.finish(input_tensor, img_input, x, name, path)


_DOC = """ network, with ImageNet weights by default.

    Layer names, order and parameter counts match the Keras application of the same name.
    The model takes pixels in 0..255 (its first layer normalizes them) when
    `include_preprocessing` is true; without the top, the features end with a
    LayerNormalization (after the optional pooling).
"""
_PREPROCESSING_DOC = """
        include_preprocessing: whether the model starts by normalizing pixels in 0..255
            with the ImageNet mean and standard deviation."""


def ConvNeXtTiny(include_top=True, include_preprocessing=True, weights="imagenet",
                 input_tensor=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", name="convnext_tiny"):
    return build_convnext("tiny", include_top, include_preprocessing, weights, input_tensor,
                          input_shape, pooling, classes, classifier_activation, name)


def ConvNeXtSmall(include_top=True, include_preprocessing=True, weights="imagenet",
                  input_tensor=None, input_shape=None, pooling=None, classes=1000,
                  classifier_activation="softmax", name="convnext_small"):
    return build_convnext("small", include_top, include_preprocessing, weights, input_tensor,
                          input_shape, pooling, classes, classifier_activation, name)


def ConvNeXtBase(include_top=True, include_preprocessing=True, weights="imagenet",
                 input_tensor=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", name="convnext_base"):
    return build_convnext("base", include_top, include_preprocessing, weights, input_tensor,
                          input_shape, pooling, classes, classifier_activation, name)


def ConvNeXtLarge(include_top=True, include_preprocessing=True, weights="imagenet",
                  input_tensor=None, input_shape=None, pooling=None, classes=1000,
                  classifier_activation="softmax", name="convnext_large"):
    return build_convnext("large", include_top, include_preprocessing, weights, input_tensor,
                          input_shape, pooling, classes, classifier_activation, name)


def ConvNeXtXLarge(include_top=True, include_preprocessing=True, weights="imagenet",
                   input_tensor=None, input_shape=None, pooling=None, classes=1000,
                   classifier_activation="softmax", name="convnext_xlarge"):
    return build_convnext("xlarge", include_top, include_preprocessing, weights, input_tensor,
                          input_shape, pooling, classes, classifier_activation, name)


for _fn, _v in zip((ConvNeXtTiny, ConvNeXtSmall, ConvNeXtBase, ConvNeXtLarge, ConvNeXtXLarge),
                   _CONFIGS):
    _fn.__doc__ = (f"The ConvNeXt{_v.capitalize().replace('Xl', 'XL')}" + _DOC
                   + builder.args_doc(32, 224, extra=_PREPROCESSING_DOC))


def preprocess_input(x, data_format=None):
    """Returns `x` unchanged: ConvNeXt models normalize pixels (0..255) themselves. Kept so
    that code written for other applications runs unchanged."""
    return x


def decode_predictions(preds, top=5):
    """The `top` ImageNet classes of each sample as `(class_id, class_name, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
