"""`TextVectorization`: text to token ids (or multi-hot, counts, TF-IDF), with TensorFlow's
text rules reproduced in Python (ASCII lower-casing, its punctuation set, ASCII whitespace)."""
import collections
import re

import numpy as np
import torch

from plexus.layers.preprocessing.base import DataLayer, adapt_batches, numpy_of
from plexus.layers.preprocessing.encoding import check_output_mode
from plexus.layers.preprocessing.lookup import StringLookup

_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_TOKEN = re.compile(r"[^ \t\n\v\f\r]+")  # TensorFlow splits on ASCII whitespace only
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")


def _decode(values, encoding):
    """A NumPy array of text as an array of Python `str`."""
    if values.dtype.kind == "U":
        return values
    if values.dtype.kind not in "SO":
        raise TypeError(f"TextVectorization takes strings; received an array of dtype "
                        f"{values.dtype}.")
    return np.vectorize(lambda v: v.decode(encoding) if isinstance(v, bytes) else str(v),
                        otypes=[object])(values)


def ngrams(tokens, widths):
    """All n-grams of `tokens` for each width in `widths`, joined by spaces (widths in order)."""
    out = []
    for n in widths:
        out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return out


class TextVectorization(DataLayer):
    """Turns strings into sequences of token ids (or multi-hot, count or TF-IDF vectors).

    Each string is standardized, split into tokens, optionally turned into n-grams, and looked
    up in a vocabulary learned with `adapt()` (most frequent first) or given. Id 0 is padding,
    id 1 the out-of-vocabulary token `"[UNK]"`.

    Args:
        max_tokens: the largest vocabulary (padding and OOV included).
        standardize: `"lower_and_strip_punctuation"`, `"lower"`, `"strip_punctuation"`, None,
            or a function of a NumPy array of `str` returning one.
        split: `"whitespace"`, `"character"`, None (inputs are tokens already), or a function
            of one string returning its tokens.
        ngrams: None, an int (all n-grams up to it), or a tuple of widths.
        output_mode: `"int"`, `"multi_hot"`, `"count"` or `"tf_idf"`.
        output_sequence_length: with `"int"`, pad or cut every sequence to this length
            (otherwise to the longest in the batch).
        pad_to_max_tokens: in the vector modes, make outputs `max_tokens` wide.
        vocabulary: a list of terms or a path to a file of one term per line.
        idf_weights: with `vocabulary` and `"tf_idf"`.
        encoding: the encoding of `bytes` inputs.

    Input: strings of shape `(batch,)` or `(batch, 1)` (a NumPy array or list). Output: a
    torch tensor, int64 `(batch, length)` or float32 `(batch, vocabulary_size)`.

    Example:
        >>> layer = TextVectorization(max_tokens=10, output_sequence_length=4)
        >>> layer.adapt(["the cat sat", "the dog"])
        >>> layer(["the cat ran"])
        tensor([[2, 5, 1, 0]])
    """

    _accepts_strings = True

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation",
                 split="whitespace", ngrams=None, output_mode="int",
                 output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None,
                 **kwargs):
        vocabulary_size = kwargs.pop("vocabulary_size", None)
        kwargs.pop("has_input_vocabulary", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        if sparse or ragged:
            raise ValueError("TextVectorization: sparse=True and ragged=True need TensorFlow "
                             "tensors; on torch, outputs are dense (padded) tensors.")
        if not (standardize is None or callable(standardize) or standardize in _STANDARDIZE):
            raise ValueError(f"TextVectorization: standardize must be one of {_STANDARDIZE}, "
                             f"None or a function; received {standardize!r}.")
        if not (split is None or callable(split) or split in ("whitespace", "character")):
            raise ValueError(f"TextVectorization: split must be 'whitespace', 'character', "
                             f"None or a function; received {split!r}.")
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        check_output_mode("TextVectorization", output_mode,
                          ("int", "one_hot", "multi_hot", "count", "tf_idf"))
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (ngrams is None or isinstance(ngrams, int) or (
                isinstance(ngrams, tuple) and all(isinstance(n, int) for n in ngrams))):
            raise ValueError(f"TextVectorization: ngrams must be None, an int or a tuple of "
                             f"ints; received {ngrams!r}.")
        if output_sequence_length is not None and (
                output_mode != "int" or not isinstance(output_sequence_length, int)):
            raise ValueError(
                "TextVectorization: output_sequence_length is an int, used only with "
                f"output_mode='int'; received {output_sequence_length!r} with {output_mode!r}.")
        self._standardize, self._split, self._ngrams_arg = standardize, split, ngrams
        self._ngrams = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self._output_mode = output_mode
        self._output_sequence_length = output_sequence_length
        self._encoding = encoding
        self._lookup_layer = StringLookup(
            max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights,
            pad_to_max_tokens=pad_to_max_tokens, mask_token="", output_mode=output_mode,
            encoding=encoding, vocabulary_size=vocabulary_size)
        self.built = True

    # ------------------------------------------------------------------ text to tokens
    def _standardized(self, texts):
        mode = self._standardize
        if callable(mode):
            return np.asarray(mode(np.asarray(texts.astype(str))), dtype=object)
        if mode is None:
            return texts
        lower = mode in ("lower", "lower_and_strip_punctuation")
        strip = mode in ("strip_punctuation", "lower_and_strip_punctuation")

        def one(s):
            if lower:
                s = s.translate(_ASCII_LOWER)
            return _PUNCTUATION.sub("", s) if strip else s
        return np.vectorize(one, otypes=[object])(texts)

    def _tokens(self, inputs):
        """The token lists of a batch of strings (one list per string)."""
        texts = _decode(numpy_of(inputs), self._encoding)
        texts = self._standardized(texts)
        if self._split is None:
            rows = [list(map(str, r)) for r in (texts.reshape(texts.shape[0], -1)
                                                 if texts.ndim else texts.reshape(1, 1))]
        else:
            if texts.ndim > 1:
                if texts.shape[-1] != 1:
                    raise ValueError(
                        f"Layer {self.name!r} (TextVectorization) splits one string per "
                        f"sample: inputs must have shape (batch,) or (batch, 1); received "
                        f"{texts.shape}.")
                texts = texts.reshape(texts.shape[:-1])
            flat = texts.reshape(-1).tolist()
            if self._split == "whitespace":
                rows = [_TOKEN.findall(s) for s in flat]
            elif self._split == "character":
                rows = [list(s) for s in flat]
            else:
                rows = [[str(t) for t in self._split(s)] for s in flat]
        if self._ngrams is not None:
            rows = [ngrams(r, self._ngrams) for r in rows]
        return rows

    # ------------------------------------------------------------------ adapt
    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary (and, for `"tf_idf"`, document frequencies) from `data`: an
        array or list of strings, or an iterable of batches of strings."""
        lookup = self._lookup_layer
        if lookup._has_input_vocabulary:
            raise ValueError(f"Layer {self.name!r}: cannot adapt a layer created with a "
                             "vocabulary.")
        counts, doc_counts, num_docs = collections.Counter(), collections.Counter(), 0
        for batch in adapt_batches(data, self, steps, lists_are_data=True):
            values = numpy_of(batch)
            if values.ndim == 0:
                values = values.reshape(1)
            rows = self._tokens(values)
            for row in rows:
                counts.update(row)
                if self._output_mode == "tf_idf":
                    doc_counts.update(set(row))
            num_docs += len(rows)
        lookup._finalize(counts, doc_counts, num_docs)

    # ------------------------------------------------------------------ call
    def call(self, inputs):
        rows = self._tokens(inputs)
        lookup = self._lookup_layer
        lengths = [len(r) for r in rows]
        flat = np.array([t for r in rows for t in r], dtype=object)
        if self._output_mode == "int":
            length = self._output_sequence_length
            if length is None:
                length = max(lengths, default=0)
            ids = lookup._lookup(flat) if flat.size else np.zeros(0, "int64")
            out = np.zeros((len(rows), length), dtype="int64")
            pos = 0
            for i, n in enumerate(lengths):
                keep = min(n, length)
                out[i, :keep] = ids[pos:pos + keep]
                pos += n
            return torch.from_numpy(out)
        width = max(lengths, default=0)
        padded = np.full((len(rows), max(width, 1)), "", dtype=object)
        for i, r in enumerate(rows):
            padded[i, :len(r)] = r
        return lookup.call(padded)  # "" is the mask token: dropped from the counts

    def _output_dtype(self, inputs):
        return "int64" if self._output_mode == "int" else "float32"

    def compute_output_shape(self, input_shape):
        if self._output_mode == "int":
            return (input_shape[0], self._output_sequence_length)
        lookup = self._lookup_layer
        depth = lookup.max_tokens if lookup.pad_to_max_tokens else lookup._frozen_vocab_size
        if depth is None:
            raise ValueError(f"Layer {self.name!r}: adapt() or set a vocabulary before using "
                             f"output_mode={self._output_mode!r} in a model.")
        if self._output_mode == "one_hot":
            return (input_shape[0], None, depth)
        return (input_shape[0], depth)

    # ------------------------------------------------------------------ vocabulary
    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary: `""` (padding), `"[UNK]"`, then the terms, most frequent first."""
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self):
        """The number of ids, padding and OOV included."""
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (a list or a file path) and, for `"tf_idf"`, the idf weights."""
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights=idf_weights)

    # ------------------------------------------------------------------ saving
    def get_config(self):
        lookup = self._lookup_layer
        config = {**super().get_config(), "max_tokens": lookup.max_tokens,
                  "standardize": self._standardize, "split": self._split,
                  "ngrams": self._ngrams_arg, "output_mode": self._output_mode,
                  "output_sequence_length": self._output_sequence_length,
                  "pad_to_max_tokens": lookup.pad_to_max_tokens, "sparse": False,
                  "ragged": False, "vocabulary": lookup.get_config()["vocabulary"],
                  "idf_weights": lookup.get_config()["idf_weights"],
                  "encoding": self._encoding, "vocabulary_size": self.vocabulary_size()}
        config.pop("dtype", None)
        return config

    def _keras_named_vars(self):
        return self._lookup_layer._keras_named_vars()

    def _load_keras_named_var(self, name, value):
        self._lookup_layer._load_keras_named_var(name, value)

    def _keras_assets(self):
        return self._lookup_layer._keras_assets()

    def _load_keras_assets(self, read):
        self._lookup_layer._load_keras_assets(read)
