"""ImageNet helpers shared by the applications: input preprocessing and decoding predictions.

`preprocess_input(x, mode=...)` prepares images (RGB, values 0..255) the way each pretrained
family expects; `decode_predictions(preds)` turns a `(samples, 1000)` batch of class
probabilities into `(class_id, class_name, score)` tuples.
"""
import json
import warnings

import numpy as np
import torch

from plexus.applications.weights_files import get_file
from plexus.graph.tensor import KerasTensor

CLASS_INDEX_PATH = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
CLASS_INDEX_HASH = "c2c37ea517e94d9795004a39431a14cb"
_CLASS_INDEX = None

_CAFFE_MEAN = (103.939, 116.779, 123.68)  # BGR order
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_MODES = ("caffe", "tf", "torch")


def preprocess_input(x, data_format=None, mode="caffe"):
    """Preprocess a batch of images (RGB, values in 0..255) for an ImageNet model.

    Args:
        x: a NumPy array, a torch tensor or a symbolic tensor, 3D or 4D.
        data_format: `"channels_last"` (default) or `"channels_first"`.
        mode: `"caffe"`: RGB to BGR, then subtract the ImageNet channel means (no scaling);
            `"tf"`: scale to -1..1; `"torch"`: scale to 0..1, then normalize each channel with
            the ImageNet mean and standard deviation.

    Returns:
        The preprocessed images, float, of the same kind as `x` (integer inputs become
        float32). NumPy and torch inputs are not modified in place.
    """
    if mode not in _MODES:
        raise ValueError(f"preprocess_input: mode must be one of {_MODES}; received mode={mode!r}.")
    data_format = data_format or "channels_last"
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            "preprocess_input: data_format must be 'channels_last' or 'channels_first'; "
            f"received data_format={data_format!r}."
        )
    if isinstance(x, KerasTensor):
        return _preprocess_symbolic(x, data_format, mode)
    if isinstance(x, torch.Tensor):
        return _preprocess_torch(x, data_format, mode)
    x = np.array(x, copy=True)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype("float32")
    return _preprocess_torch(torch.from_numpy(x), data_format, mode).numpy()


def _channel_shape(x, data_format):
    """Shape that broadcasts a per-channel vector against `x`."""
    if data_format == "channels_last":
        return (3,)
    return (3, 1, 1)


def _preprocess_torch(x, data_format, mode):
    if not x.is_floating_point():
        x = x.float()
    if mode == "tf":
        return x / 127.5 - 1.0
    channel_axis = -1 if data_format == "channels_last" else -3
    if mode == "torch":
        shape = _channel_shape(x, data_format)
        mean = torch.tensor(_TORCH_MEAN, dtype=x.dtype, device=x.device).reshape(shape)
        std = torch.tensor(_TORCH_STD, dtype=x.dtype, device=x.device).reshape(shape)
        return (x / 255.0 - mean) / std
    x = torch.flip(x, dims=(channel_axis,))  # RGB -> BGR
    mean = torch.tensor(_CAFFE_MEAN, dtype=x.dtype, device=x.device)
    return x - mean.reshape(_channel_shape(x, data_format))


def _preprocess_symbolic(x, data_format, mode):
    """The same arithmetic recorded as graph operations on a symbolic tensor."""
    if data_format != "channels_last":
        raise ValueError(
            "preprocess_input on symbolic tensors supports data_format='channels_last' only "
            "(plexus models are channels-last)."
        )
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        return (x / 255.0 - np.array(_TORCH_MEAN, "float32")) / np.array(_TORCH_STD, "float32")
    # Reversing the channels is a product with an exchange matrix: exact in floating point.
    flip = np.eye(3, dtype="float32")[::-1].copy()
    return x @ flip - np.array(_CAFFE_MEAN, "float32")


def _class_index():
    global _CLASS_INDEX
    if _CLASS_INDEX is None:
        path = get_file("imagenet_class_index.json", CLASS_INDEX_PATH, file_hash=CLASS_INDEX_HASH,
                        what="the ImageNet class index")
        with open(path) as f:
            _CLASS_INDEX = json.load(f)
    return _CLASS_INDEX


def decode_predictions(preds, top=5):
    """Decode ImageNet predictions into the `top` most likely classes of each sample.

    Args:
        preds: a NumPy array or torch tensor of shape `(samples, 1000)`.
        top: how many classes to return per sample.

    Returns:
        One list per sample of `(class_id, class_name, score)` tuples, most likely first,
        e.g. `('n02123045', 'tabby', 0.82)`.
    """
    if isinstance(preds, torch.Tensor):
        preds = preds.detach().cpu().numpy()
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "decode_predictions expects a batch of ImageNet predictions, a 2D array of shape "
            f"(samples, 1000); received an array of shape {preds.shape}."
        )
    index = _class_index()
    results = []
    for pred in preds:
        best = pred.argsort()[-top:][::-1]
        result = [tuple(index[str(i)]) + (pred[i],) for i in best]
        result.sort(key=lambda r: r[2], reverse=True)
        results.append(result)
    return results


def obtain_input_shape(input_shape, default_size, min_size, require_flatten, weights=None):
    """The image shape `(rows, cols, channels)` an application builds its Input with.

    Args:
        input_shape: the user's `input_shape`, or None.
        default_size: the side the pretrained weights were trained at (224 or 299).
        min_size: the smallest side the network can take.
        require_flatten: True when the classifier top is included (a fixed size is needed).
        weights: the `weights` argument (`'imagenet'` fixes the shape of the top).
    """
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        if input_shape[-1] not in (1, 3):
            warnings.warn(
                f"This model usually takes images with 1 or 3 channels; input_shape "
                f"{tuple(input_shape)} has {input_shape[-1]}.", stacklevel=3)
        default_shape = (default_size, default_size, input_shape[-1])
    else:
        default_shape = (default_size, default_size, 3)
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and tuple(input_shape) != default_shape:
            raise ValueError(
                "With include_top=True and weights='imagenet', input_shape must be "
                f"{default_shape}; received input_shape={tuple(input_shape)}. Pass "
                "include_top=False to use another image size."
            )
        return default_shape
    if input_shape:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                "input_shape must be a tuple of three integers (rows, cols, channels); "
                f"received input_shape={input_shape}."
            )
        if input_shape[-1] != 3 and weights == "imagenet":
            raise ValueError(
                f"ImageNet weights need 3 input channels; received input_shape={input_shape}."
            )
        if any(d is not None and d < min_size for d in input_shape[:2]):
            raise ValueError(
                f"Input size must be at least {min_size}x{min_size}; received "
                f"input_shape={input_shape}."
            )
    elif require_flatten:
        input_shape = default_shape
    else:
        input_shape = (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError(
            "With include_top=True the image size must be fixed; received "
            f"input_shape={input_shape}. Give rows and cols, or pass include_top=False."
        )
    return input_shape


def correct_pad(inputs, kernel_size):
    """Zero padding `((top, bottom), (left, right))` before a strided 'valid' convolution
    so that it covers the image like a 'same' one."""
    rows, cols = inputs.shape[1:3]
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    adjust = (1, 1) if rows is None else (1 - rows % 2, 1 - cols % 2)
    half = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((half[0] - adjust[0], half[0]), (half[1] - adjust[1], half[1]))
