"""CIFAR-100: 50,000 32x32 colour images in 100 classes (20 superclasses), 10,000 test."""
import os

import numpy as np

from plexus.datasets._cifar import channels_last, load_batch
from plexus.utils.file_utils import get_file


def load_data(label_mode="fine"):
    """`(x_train, y_train), (x_test, y_test)`: uint8 images `(n, 32, 32, 3)` and labels
    `(n, 1)`: the 100 `"fine"` classes or the 20 `"coarse"` ones."""
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse'; received {label_mode!r}.")
    path = get_file(fname="cifar-100-python-target",
                    origin="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                    extract=True,
                    file_hash="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7")
    path = os.path.join(path, "cifar-100-python")
    out = []
    for part in ("train", "test"):
        x, y = load_batch(os.path.join(path, part), label_key=f"{label_mode}_labels")
        if channels_last():
            x = x.transpose(0, 2, 3, 1)
        out.append((x, np.reshape(np.asarray(y), (len(y), 1))))
    return tuple(out)
