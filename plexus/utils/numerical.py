"""Small numerical helpers users know from `keras.utils`."""
import random

import numpy as np
import torch


def to_categorical(x, num_classes=None):
    """One-hot encode integer class ids: `(n,)` -> `(n, num_classes)` float32."""
    x = np.asarray(x, dtype="int64")
    shape = x.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    x = x.reshape(-1)
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical needs non-negative class ids; found {x.min()}.")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(
            f"to_categorical: class id {int(x.max())} does not fit num_classes={num_classes}."
        )
    out = np.zeros((x.size, num_classes), dtype="float32")
    out[np.arange(x.size), x] = 1
    return out.reshape(shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Scale `x` to unit `order`-norm along `axis`."""
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def set_random_seed(seed):
    """Seed Python's, NumPy's and torch's generators: the same seed gives the same run."""
    if not isinstance(seed, int):
        raise TypeError(f"set_random_seed expects an integer seed; received {seed!r}.")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
