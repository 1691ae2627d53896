"""Reuters newswires: 11,228 articles as word ids, labelled with 46 topics."""
import json

import numpy as np

from plexus.datasets._common import fetch, load_npz, remove_long_seq, word_ids
from plexus.datasets.imdb import _objects

_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2,
              seed=113, start_char=1, oov_char=2, index_from=3):
    """`(x_train, y_train), (x_test, y_test)`: articles as lists of word ids and topic ids
    (arguments as `imdb.load_data`; `test_split` is the held-out fraction)."""
    path = fetch(path, "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
                 origin=_ORIGIN + "reuters.npz")
    f = load_npz(path)
    xs, labels = f["x"], f["y"]
    order = np.arange(len(xs))
    np.random.RandomState(seed).shuffle(order)
    xs, labels = xs[order], labels[order]
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    elif index_from:
        xs = [[w + index_from for w in x] for x in xs]
    if maxlen:
        xs, labels = remove_long_seq(maxlen, xs, labels)
    xs = word_ids(xs, num_words, skip_top, None, oov_char, 0)
    idx = int(len(xs) * (1 - test_split))
    labels = np.asarray(labels)
    return (_objects(xs[:idx]), np.array(labels[:idx])), (_objects(xs[idx:]),
                                                           np.array(labels[idx:]))


def get_word_index(path="reuters_word_index.json"):
    """The word -> id dictionary of the articles."""
    path = fetch(path, "4d44cc38712099c9e383dc6e5f11a921",
                 origin=_ORIGIN + "reuters_word_index.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def get_label_names():
    """The names of the 46 topics, by topic id."""
    return ("cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing",
            "money-supply", "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass",
            "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum",
            "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi",
            "iron-steel", "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem",
            "dlr", "gas", "silver", "wpi", "hog", "lead")
