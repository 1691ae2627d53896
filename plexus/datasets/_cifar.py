"""CIFAR's pickled batches, read with the restricted unpickler."""
import numpy as np

from plexus.datasets._common import load_pickle


def load_batch(fpath, label_key="labels"):
    """`(data (n, 3, 32, 32) uint8, labels)` of one CIFAR batch file."""
    d = {k.decode("utf8") if isinstance(k, bytes) else k: v
         for k, v in load_pickle(fpath).items()}
    data = np.asarray(d["data"], dtype="uint8")
    return data.reshape(data.shape[0], 3, 32, 32), d[label_key]


def channels_last():
    from plexus.layers.preprocessing.image_base import image_data_format
    return image_data_format(None) == "channels_last"
