"""MNIST: 60,000 28x28 grayscale digits and 10,000 test digits."""
import numpy as np

from plexus.datasets._common import ORIGIN, fetch


def load_data(path="mnist.npz"):
    """`(x_train, y_train), (x_test, y_test)`: uint8 images `(n, 28, 28)` and labels `(n,)`.

    Args:
        path: the file name in the cache (`~/.keras/datasets/` or `$KERAS_HOME/datasets/`).
    """
    path = fetch(path, "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                 origin=ORIGIN + "mnist.npz")
    with np.load(path, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
