"""IMDB movie reviews: 25,000 training and 25,000 test reviews as word ids, sentiment labels."""
import json

import numpy as np

from plexus.datasets._common import fetch, load_npz, remove_long_seq, word_ids


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113,
              start_char=1, oov_char=2, index_from=3, **kwargs):
    """`(x_train, y_train), (x_test, y_test)`: reviews as lists of word ids (an object array)
    and 0/1 labels.

    Args:
        num_words: keep the `num_words` most frequent words (others become `oov_char`).
        skip_top: also replace the `skip_top` most frequent words.
        maxlen: drop reviews of `maxlen` words or more.
        seed: the shuffle's seed.
        start_char: the id that starts every review (None: none).
        oov_char: the id of dropped words (None: remove them).
        index_from: shift word ids by this much (ids below are reserved).
    """
    if kwargs:
        raise TypeError(f"imdb.load_data: unexpected argument(s) {sorted(kwargs)}.")
    path = fetch(path, "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
                 origin="https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz")
    f = load_npz(path)
    rng = np.random.RandomState(seed)
    parts = []
    for x_key, y_key in (("x_train", "y_train"), ("x_test", "y_test")):
        x, y = f[x_key], f[y_key]
        order = np.arange(len(x))
        rng.shuffle(order)
        parts.append((x[order], y[order]))
    (x_train, y_train), (x_test, y_test) = parts
    xs_train = _shift(x_train, start_char, index_from)
    xs_test = _shift(x_test, start_char, index_from)
    if maxlen:
        xs_train, y_train = remove_long_seq(maxlen, xs_train, y_train)
        xs_test, y_test = remove_long_seq(maxlen, xs_test, y_test)
        if not xs_train or not xs_test:
            raise ValueError(f"No review is shorter than maxlen={maxlen}; increase maxlen.")
    xs = word_ids(xs_train + xs_test, num_words, skip_top, None, oov_char, 0)
    labels = np.concatenate([np.asarray(y_train), np.asarray(y_test)])
    idx = len(xs_train)
    return ((_objects(xs[:idx]), labels[:idx]), (_objects(xs[idx:]), labels[idx:]))


def _shift(xs, start_char, index_from):
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in xs]
    if index_from:
        return [[w + index_from for w in x] for x in xs]
    return [list(x) for x in xs]


def _objects(lists):
    out = np.empty(len(lists), dtype=object)
    out[:] = lists
    return out


def get_word_index(path="imdb_word_index.json"):
    """The word -> id dictionary of the reviews (ids before `index_from` shifting)."""
    path = fetch(path, "bfafd718b763782e994055a2d397834f",
                 origin=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
                         "imdb_word_index.json"))
    with open(path, encoding="utf-8") as f:
        return json.load(f)
