"""Boston housing prices: 506 samples of 13 features, the median value as the target."""
import numpy as np

from plexus.datasets._common import fetch, split


def load_data(path="boston_housing.npz", test_split=0.2, seed=113):
    """`(x_train, y_train), (x_test, y_test)`, shuffled with `seed`, the last `test_split`
    fraction held out."""
    if not 0 <= test_split < 1:
        raise ValueError(f"test_split must be in [0, 1); received {test_split}.")
    path = fetch(path, "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5",
                 origin=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
                         "boston_housing.npz"))
    with np.load(path, allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    return split(x, y, test_split, seed)
