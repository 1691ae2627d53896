"""California housing: 20,640 districts with 8 features, the median house value as target."""
from plexus.datasets import _common


def load_data(version="large", path="california_housing.npz", test_split=0.2, seed=113):
    """`(x_train, y_train), (x_test, y_test)`; `version="small"` keeps the first 600
    samples."""
    if version not in ("small", "large"):
        raise ValueError(f"version must be 'small' or 'large'; received {version!r}.")
    return _common.load_xy_split(
        path, "california_housing.npz",
        "1a2e3a52e0398de6463aebe6f4a8da34fb21fbb6b934cf88c3425e766f2a1a6f", test_split, seed,
        limit=600 if version == "small" else None)
