"""`keras.datasets`: small standard datasets, downloaded once into Keras's cache
(`$KERAS_HOME` or `~/.keras`, then `datasets/`) under Keras's file names, so files Keras
downloaded are reused. Files are read without running code from them."""
from plexus.datasets import (
    boston_housing, california_housing, cifar10, cifar100, fashion_mnist, imdb, mnist, reuters,
)
