"""Boston housing prices: 506 samples of 13 features, the median value as the target."""
from plexus.datasets import _common


def load_data(path="boston_housing.npz", test_split=0.2, seed=113):
    """`(x_train, y_train), (x_test, y_test)`, shuffled with `seed`, the last `test_split`
    fraction held out."""
    return _common.load_xy_split(
        path, "boston_housing.npz",
        "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5", test_split, seed)
