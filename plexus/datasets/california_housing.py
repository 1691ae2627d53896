"""California housing: 20,640 districts with 8 features, the median house value as target."""
import numpy as np

from plexus.datasets._common import fetch, split


def load_data(version="large", path="california_housing.npz", test_split=0.2, seed=113):
    """`(x_train, y_train), (x_test, y_test)`; `version="small"` keeps the first 600
    samples."""
    if not 0 <= test_split < 1:
        raise ValueError(f"test_split must be in [0, 1); received {test_split}.")
    if version not in ("small", "large"):
        raise ValueError(f"version must be 'small' or 'large'; received {version!r}.")
    path = fetch(path, "1a2e3a52e0398de6463aebe6f4a8da34fb21fbb6b934cf88c3425e766f2a1a6f",
                 origin=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
                         "california_housing.npz"))
    with np.load(path, allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    if version == "small":
        x, y = x[:600], y[:600]
    return split(x, y, test_split, seed)
