"""What the dataset loaders share: Keras's download locations and hashes, reading `.npz` files
and CIFAR's pickled batches without running code from them."""
import io
import pickle
import zipfile

import numpy as np

from plexus.utils.file_utils import get_file

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

# The only classes a dataset file may name: how NumPy rebuilds an array. Lists, dicts, ints
# and bytes need no class at all; anything else in a file is refused.
_ALLOWED = frozenset({("numpy", "ndarray"), ("numpy", "dtype"),
                      ("numpy.core.multiarray", "_reconstruct"),
                      ("numpy._core.multiarray", "_reconstruct")})


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain Python containers only."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"Refusing to load `{module}.{name}` from a dataset file: dataset files hold "
            "arrays only. The file is corrupt or was crafted; delete it and download it again.")


def fetch(fname, file_hash, origin=None, **kwargs):
    """The cached path of a Keras dataset file (downloaded once, hash-checked)."""
    return get_file(fname=fname, origin=origin or ORIGIN + fname.split("/")[-1],
                    file_hash=file_hash, **kwargs)


def _read_npy(fp):
    try:
        return np.lib.format.read_array(fp, allow_pickle=False)
    except ValueError:  # an object array (ragged sequences): restricted unpickling
        fp.seek(0)
        major, _ = np.lib.format.read_magic(fp)
        if major == 1:
            np.lib.format.read_array_header_1_0(fp)
        elif major in (2, 3):
            np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(f"Unsupported .npy version {major}.") from None
        return RestrictedUnpickler(fp).load()


def load_npz(path):
    """The arrays of an `.npz` file, as a dict (object arrays through the restricted
    unpickler, numeric ones without unpickling at all)."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as raw:
                    arrays[member[:-4]] = _read_npy(io.BytesIO(raw.read()))
    return arrays


def load_pickle(path):
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, encoding="bytes").load()


def load_xy_split(path, origin_name, file_hash, test_split, seed, limit=None):
    """`x`, `y` of a cached `.npz` (the first `limit` samples), split as `split` does."""
    if not 0 <= test_split < 1:  # checked before anything is downloaded
        raise ValueError(f"test_split must be in [0, 1); received {test_split}.")
    path = fetch(path, file_hash, origin=ORIGIN + origin_name)
    with np.load(path, allow_pickle=False) as f:
        x, y = f["x"][:limit], f["y"][:limit]
    return split(x, y, test_split, seed)


def split(x, y, test_split, seed):
    """Shuffle with `seed`, then hold out the last `test_split` fraction (as Keras)."""
    if not 0 <= test_split < 1:
        raise ValueError(f"test_split must be in [0, 1); received {test_split}.")
    order = np.arange(len(x))
    np.random.RandomState(seed).shuffle(order)
    x, y = x[order], y[order]
    at = int(len(x) * (1 - test_split))
    return (np.array(x[:at]), np.array(y[:at])), (np.array(x[at:]), np.array(y[at:]))


def remove_long_seq(maxlen, seq, label):
    """Keep the sequences shorter than `maxlen` (and their labels)."""
    kept = [(x, y) for x, y in zip(seq, label) if len(x) < maxlen]
    return [x for x, _ in kept], [y for _, y in kept]


def word_ids(xs, num_words, skip_top, start_char, oov_char, index_from):
    """Keras's id shifting and vocabulary cut for imdb and reuters."""
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    elif index_from:
        xs = [[w + index_from for w in x] for x in xs]
    else:
        xs = [list(x) for x in xs]
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]
