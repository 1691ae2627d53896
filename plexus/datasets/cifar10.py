"""CIFAR-10: 50,000 32x32 colour images in 10 classes, 10,000 test images."""
import os

import numpy as np

from plexus.datasets._cifar import channels_last, load_batch
from plexus.utils.file_utils import get_file


def load_data():
    """`(x_train, y_train), (x_test, y_test)`: uint8 images `(n, 32, 32, 3)` and labels
    `(n, 1)`. The archive is cached and extracted as Keras does
    (`datasets/cifar-10-batches-py-target/cifar-10-batches-py/`)."""
    path = get_file(fname="cifar-10-batches-py-target",
                    origin="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    extract=True,
                    file_hash="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")
    path = os.path.join(path, "cifar-10-batches-py")
    parts = [load_batch(os.path.join(path, f"data_batch_{i}")) for i in range(1, 6)]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([np.asarray(p[1], "uint8") for p in parts]).reshape(-1, 1)
    x_test, y_test = load_batch(os.path.join(path, "test_batch"))
    y_test = np.asarray(y_test, "uint8").reshape(-1, 1)
    if channels_last():
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    return (x_train, y_train), (x_test, y_test)
