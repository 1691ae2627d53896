"""Fashion-MNIST: 60,000 28x28 grayscale images of 10 kinds of clothing, 10,000 test images."""
import gzip
import os

import numpy as np

from plexus.datasets._common import ORIGIN
from plexus.utils.file_utils import get_file

_FILES = ["train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
          "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"]


def load_data():
    """`(x_train, y_train), (x_test, y_test)`: uint8 images `(n, 28, 28)` and labels `(n,)`.
    Files are cached in `datasets/fashion-mnist/`."""
    paths = [get_file(f, origin=ORIGIN + f, cache_subdir=os.path.join("datasets",
                                                                      "fashion-mnist"))
             for f in _FILES]
    out = []
    for labels_path, images_path in ((paths[0], paths[1]), (paths[2], paths[3])):
        with gzip.open(labels_path, "rb") as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8)
        with gzip.open(images_path, "rb") as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(len(y), 28, 28)
        out.append((x, y))
    return tuple(out)
