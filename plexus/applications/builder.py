"""What every application shares: checking arguments, the image input, the classifier top,
and loading weights."""
import os

from plexus import activations, layers
from plexus.applications import imagenet_utils
from plexus.applications.weights_files import BASE_URL, get_file
from plexus.graph.tensor import KerasTensor
from plexus.layers.input_layer import InputLayer
from plexus.models import Model


def check_arguments(weights, include_top, classes, model_name, classifier_activation="softmax",
                    pooling=None):
    """Validate `weights`, `classes`, `classifier_activation` and `pooling` before anything
    is built."""
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            f"{model_name}: `pooling` must be None, 'avg' or 'max'; received pooling={pooling!r}."
        )
    if not (weights in ("imagenet", None) or (isinstance(weights, (str, os.PathLike))
                                              and os.path.exists(weights))):
        raise ValueError(
            f"{model_name}: `weights` must be None (random initialization), 'imagenet' "
            "(pretrained on ImageNet) or the path to an existing weights file; received "
            f"weights={weights!r}."
        )
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            f"{model_name}: with weights='imagenet' and include_top=True, `classes` must be "
            f"1000 (the ImageNet classes); received classes={classes}. Pass include_top=False "
            "and add your own classifier, or weights=None."
        )
    if weights is not None and include_top:
        act = activations.get(classifier_activation)
        if act not in (activations.get("softmax"), activations.get(None)):
            raise ValueError(
                f"{model_name}: with pretrained weights and include_top=True, "
                "classifier_activation must be None or 'softmax'; received "
                f"classifier_activation={classifier_activation!r}."
            )


def image_input(input_tensor, input_shape, model_name):
    """The tensor the network starts from: `input_tensor` if given, else a new `Input`."""
    if input_tensor is None:
        return layers.Input(shape=input_shape)
    if not isinstance(input_tensor, KerasTensor):
        raise TypeError(
            f"{model_name}: `input_tensor` must be a symbolic tensor (from plexus.Input or a "
            f"layer); received {type(input_tensor).__name__}. Pass `input_shape=` instead to "
            "let the model make its own Input."
        )
    return input_tensor


def source_inputs(tensor):
    """The `Input` tensors that `tensor` is computed from, in the order they are met."""
    found, seen, stack = [], set(), [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        node = t.node
        if node is None or isinstance(node.layer, InputLayer):
            found.append(t)
        else:
            stack.extend(reversed(node.input_tensors))
    return found


def classifier_top(x, include_top, pooling, classes, classifier_activation,
                   avg_name=None, max_name=None, top_pool_name="avg_pool"):
    """Global pooling then the `predictions` Dense layer, or the optional feature pooling.

    `top_pool_name` names the pooling before the classifier (None: a default name);
    `avg_name` / `max_name` name the optional pooling of a headless model.
    """
    if include_top:
        x = layers.GlobalAveragePooling2D(name=top_pool_name)(x)
        return dense_predictions(x, classes, classifier_activation)
    return pooled_features(x, pooling, avg_name, max_name)


def dense_predictions(x, classes, classifier_activation):
    """The final `predictions` layer."""
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def make_model(input_tensor, img_input, x, name):
    """The functional model from the image input (or `input_tensor`'s sources) to `x`."""
    inputs = img_input if input_tensor is None else source_inputs(input_tensor)
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    return Model(inputs, x, name=name)


def weights_path(weights, include_top, files, subdir, model_name):
    """The weights file to load: None, the given path, or for 'imagenet' the cached (else
    downloaded) file. Resolved before the model is built, so a missing file fails fast.

    Args:
        files: `(top_file, top_hash, notop_file, notop_hash)` of the ImageNet weights.
        subdir: the folder of these files under the published base URL.
    """
    if weights != "imagenet":
        return weights
    fname, file_hash = (files[0], files[1]) if include_top else (files[2], files[3])
    return get_file(fname, f"{BASE_URL}{subdir}/{fname}", file_hash=file_hash,
                    what=f"the ImageNet weights of {model_name}")


def finish(input_tensor, img_input, x, name, path):
    """The functional model from the image input to `x`, with the weights at `path` loaded."""
    model = make_model(input_tensor, img_input, x, name)
    if path is not None:
        model.load_weights(path)
    return model


def prepare_input(weights, include_top, classes, label, classifier_activation, pooling,
                  input_tensor, input_shape, default_size, min_size):
    """Check the arguments, then make the image input (the tensor the network starts from)."""
    check_arguments(weights, include_top, classes, label, classifier_activation, pooling)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=default_size, min_size=min_size, require_flatten=include_top,
        weights=weights)
    return image_input(input_tensor, input_shape, label)


def prepare(weights, include_top, classes, label, classifier_activation, pooling, input_tensor,
            input_shape, default_size, min_size, files, subdir):
    """Check the arguments, then make the image input and resolve the weights file.

    Returns:
        `(img_input, path)`: the tensor the network starts from and the weights file to load
        once it is built (None for random weights).
    """
    img_input = prepare_input(weights, include_top, classes, label, classifier_activation,
                              pooling, input_tensor, input_shape, default_size, min_size)
    return img_input, weights_path(weights, include_top, files, subdir, label)


def tf_kernel_files(arch, top_hash, notop_hash):
    """`(top_file, top_hash, notop_file, notop_hash)` of the published `{arch}` weights."""
    return (f"{arch}_weights_tf_dim_ordering_tf_kernels.h5", top_hash,
            f"{arch}_weights_tf_dim_ordering_tf_kernels_notop.h5", notop_hash)


def args_doc(min_size, default_size, top="the global pooling and the `predictions` layer",
             shape_note="", example="", extra=""):
    """The `Args` and `Returns` sections shared by the applications' constructor docstrings.

    Args:
        min_size: the smallest `rows` / `cols` accepted.
        default_size: the image size with the top.
        top: what `include_top` adds.
        shape_note: a sentence appended to the `input_shape` entry (with its leading space).
        example: an `Example` section appended after `Returns`.
        extra: entries appended to `Args` (each starting with a newline and 8 spaces).
    """
    at_least = f"{min_size}x{min_size}"
    return f"""
    Args:
        include_top: whether to include {top}.
        weights: None (random), 'imagenet' (looked for in `~/.keras/models`, else downloaded)
            or the path to a weights file.
        input_tensor: a symbolic tensor to use as the image input.
        input_shape: `(rows, cols, 3)`, at least {at_least}; only without the top (with it the
            shape is `({default_size}, {default_size}, 3)`).{shape_note}
        pooling: without the top, None (4D feature maps), 'avg' or 'max' (global pooling).
        classes: number of classes of the top (1000 for ImageNet weights).
        classifier_activation: activation of the `predictions` layer (None for logits).
        name: the model's name.{extra}

    Returns:
        A `plexus.Model`.
{example}"""


def add_args_doc(fn, *args, **kwargs):
    """Append `args_doc(*args, **kwargs)` to the docstring of the constructor `fn`."""
    fn.__doc__ = fn.__doc__.rstrip() + "\n" + args_doc(*args, **kwargs)


def make_divisible(v, divisor=8, min_value=None):
    """`v` rounded to the nearest multiple of `divisor` (at least `min_value`, default
    `divisor`), raised by one `divisor` when rounding lost more than 10% of `v`."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def imagenet_file(weights, include_top, top, notop, base_url, model_name):
    """The weights file to load: None, the given path, or for 'imagenet' the cached (else
    downloaded) file `top` or `notop`.

    Args:
        top, notop: `(file name, hash or None)`, or `(file name in the cache, hash, file name
            under base_url)` where the published name differs.
    """
    if weights != "imagenet":
        return weights
    fname, file_hash, *published = top if include_top else notop
    return get_file(fname, base_url + (published[0] if published else fname),
                    file_hash=file_hash, what=f"the ImageNet weights of {model_name}")


def pooled_features(x, pooling, avg_name=None, max_name=None):
    """The optional global pooling of a headless model."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    return x
