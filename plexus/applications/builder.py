"""What every application shares: checking arguments, the image input, the classifier top,
and loading weights."""
import os

from plexus import activations, layers
from plexus.applications import imagenet_utils
from plexus.applications.weights_files import BASE_URL, get_file
from plexus.graph.tensor import KerasTensor
from plexus.layers.input_layer import InputLayer
from plexus.models import Model


def check_weights(weights, include_top, classes, model_name):
    """Validate the `weights` and `classes` arguments of an application."""
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


def classifier_top(x, include_top, pooling, classes, classifier_activation, weights,
                   avg_name=None, max_name=None, top_pool_name="avg_pool"):
    """Global pooling then the `predictions` Dense layer, or the optional feature pooling.

    `top_pool_name` names the pooling before the classifier (None: a default name);
    `avg_name` / `max_name` name the optional pooling of a headless model.
    """
    if include_top:
        x = layers.GlobalAveragePooling2D(name=top_pool_name)(x)
        return dense_predictions(x, classes, classifier_activation, weights)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    if pooling is not None:
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'; received pooling={pooling!r}.")
    return x


def dense_predictions(x, classes, classifier_activation, weights):
    """The final `predictions` layer; pretrained tops allow only softmax or no activation."""
    if weights is not None:
        act = activations.get(classifier_activation)
        if act not in (activations.get("softmax"), activations.get(None)):
            raise ValueError(
                "With pretrained weights and include_top=True, classifier_activation must be "
                f"None or 'softmax'; received classifier_activation={classifier_activation!r}."
            )
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def make_model(input_tensor, img_input, x, name):
    """The functional model from the image input (or `input_tensor`'s sources) to `x`."""
    inputs = img_input if input_tensor is None else source_inputs(input_tensor)
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    return Model(inputs, x, name=name)


def load_weights(model, weights, include_top, files, subdir, model_name):
    """Load `weights` into `model`: a path, or 'imagenet' from the cache or the download.

    Args:
        files: `(top_file, top_hash, notop_file, notop_hash)` of the ImageNet weights.
        subdir: the folder of these files under the published base URL.
    """
    if weights is None:
        return model
    if weights == "imagenet":
        fname, file_hash = (files[0], files[1]) if include_top else (files[2], files[3])
        weights = get_file(fname, f"{BASE_URL}{subdir}/{fname}", file_hash=file_hash,
                           what=f"the ImageNet weights of {model_name}")
    model.load_weights(weights)
    return model
