"""`StringLookup` and `IntegerLookup`: a vocabulary maps values to ids (and back).

The vocabulary is a Python list; a batch is looked up once per distinct value (`np.unique`),
so repeated categories cost one dictionary lookup each. Ids layout, as in Keras:
`[mask (int mode only)] [num_oov_indices OOV ids] [vocabulary terms...]`.
"""
import collections
import os

import numpy as np
import torch

from plexus.layers.preprocessing import hash_functions as H
from plexus.layers.preprocessing.base import DataLayer, adapt_batches, numpy_of
from plexus.layers.preprocessing.encoding import check_output_mode, encode, encoded_shape

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _text(x, encoding="utf-8"):
    return x.decode(encoding) if isinstance(x, bytes) else str(x)


def read_vocabulary_file(path, layer, strings=True):
    """The terms of a vocabulary file, one per line."""
    if not os.path.isfile(path):
        raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}): vocabulary file "
                         f"{path!r} does not exist.")
    with open(path, encoding="utf-8") as f:
        return _terms_from_lines(f.read(), layer, strings, path)


def _terms_from_lines(text, layer, strings, where):
    lines = text.splitlines()
    while lines and lines[-1] == "":
        lines.pop()
    if strings:
        return lines
    try:
        return [int(line) for line in lines]
    except ValueError:
        raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}): {where} must hold "
                         "one integer per line.") from None


class IndexLookup(DataLayer):
    """What `StringLookup` and `IntegerLookup` share (not a public layer)."""

    _accepts_int_inputs = True
    _strings = True  # the vocabulary's terms are strings (False: integers)

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=None,
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 pad_to_max_tokens=False, sparse=False, oov_method="floormod", salt=None,
                 name=None, **kwargs):
        self._frozen_vocab_size = kwargs.pop("vocabulary_size", None)
        kwargs.pop("has_input_vocabulary", None)
        kwargs.pop("dtype", None)  # a lookup layer's dtype is its vocabulary's
        super().__init__(name=name, **kwargs)
        cls = type(self).__name__
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"{cls}: max_tokens must be greater than 1; received {max_tokens}.")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"{cls}: pad_to_max_tokens=True needs max_tokens.")
        if num_oov_indices < 0:
            raise ValueError(f"{cls}: num_oov_indices must be >= 0; received {num_oov_indices}.")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(f"{cls}: oov_method must be 'floormod' or 'farmhash'; received "
                             f"{oov_method!r}.")
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        check_output_mode(cls, output_mode, _MODES)
        if invert and output_mode != "int":
            raise ValueError(f"{cls}: invert=True needs output_mode='int'; received "
                             f"{output_mode!r}.")
        if sparse:
            raise ValueError(f"{cls}: sparse=True is not supported on torch (dense outputs).")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(f"{cls}: idf_weights is only used with output_mode='tf_idf'.")
        if salt is not None:
            if not self._strings and oov_method != "farmhash":
                raise ValueError(f"{cls}: salt is only used with oov_method='farmhash'.")
            if isinstance(salt, (tuple, list)) and len(salt) == 2:
                salt = [int(s) for s in salt]
            elif isinstance(salt, int):
                salt = [salt, salt]
            else:
                raise ValueError(f"{cls}: salt must be an int or a pair of ints; received "
                                 f"{salt!r}.")
        self.invert, self.max_tokens, self.num_oov_indices = invert, max_tokens, num_oov_indices
        self.mask_token, self.oov_token = mask_token, oov_token
        self.output_mode, self.sparse = output_mode, False
        self.pad_to_max_tokens = pad_to_max_tokens
        self.oov_method, self.salt = oov_method, salt
        self.input_vocabulary = vocabulary if not isinstance(vocabulary, str) else None
        self.input_idf_weights = idf_weights
        self._has_input_vocabulary = vocabulary is not None
        self._tokens = []  # the learned or given terms, without mask and OOV entries
        self._index = {}  # term -> id
        self.idf_weights = None  # a float32 tensor in "tf_idf" mode
        if output_mode == "tf_idf" and self._has_input_vocabulary and idf_weights is None:
            raise ValueError(f"{cls}: with a vocabulary and output_mode='tf_idf', pass "
                             "idf_weights too.")
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # ------------------------------------------------------------------ vocabulary
    def _oov_start_index(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start_index(self):
        return self._oov_start_index() + self.num_oov_indices

    def _term(self, x):
        return _text(x, getattr(self, "encoding", "utf-8")) if self._strings else int(x)

    def vocabulary_size(self):
        """The number of ids: vocabulary terms plus the mask and OOV ids."""
        return len(self._tokens) + self._token_start_index()

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary; with the special tokens, a term's position is its id."""
        vocab = ([self.mask_token] * self._oov_start_index()
                 + [self.oov_token] * self.num_oov_indices + list(self._tokens))
        return vocab if include_special_tokens else vocab[self._token_start_index():]

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (a list, an array, or a path to a file of one term per line)
        and, for `output_mode="tf_idf"`, the inverse document frequencies."""
        cls = f"Layer {self.name!r} ({type(self).__name__})"
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError(f"{cls}: output_mode='tf_idf' needs idf_weights with the "
                             "vocabulary.")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(f"{cls}: idf_weights is only used with output_mode='tf_idf'.")
        if isinstance(vocabulary, (str, os.PathLike)):
            self._check_safe_file(vocabulary)
            vocabulary = read_vocabulary_file(os.fspath(vocabulary), self, self._strings)
        vocab = [self._term(v) for v in numpy_of(vocabulary).reshape(-1).tolist()]
        if not vocab:
            raise ValueError(f"{cls}: the vocabulary is empty.")
        start = self._token_start_index()
        special = [self.mask_token] * self._oov_start_index() + [self.oov_token] * \
            self.num_oov_indices
        has_special = vocab[:start] == special
        tokens = vocab[start:] if has_special else vocab
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError(f"{cls}: the vocabulary repeats terms {repeated[:10]}; each term "
                             "must appear once.")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(f"{cls}: the mask token {self.mask_token!r} is in the vocabulary "
                             f"at an unexpected place. Leave mask and OOV tokens out, or put "
                             f"them first in this order: {special}.")
        if self.invert and self.oov_token is not None and self.oov_token in tokens:
            raise ValueError(f"{cls}: the OOV token {self.oov_token!r} is in the vocabulary at "
                             f"an unexpected place. Leave it out, or start with {special}.")
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError(f"{cls}: a vocabulary of {start + len(tokens)} ids (with special "
                             f"tokens) is larger than max_tokens={self.max_tokens}.")
        self._set_tokens(tokens)
        if idf_weights is not None:
            idf = numpy_of(idf_weights).astype("float32").reshape(-1)
            if len(idf) != len(vocab):
                raise ValueError(f"{cls}: idf_weights has {len(idf)} values for a vocabulary "
                                 f"of {len(vocab)} terms; give one per term.")
            front = (0, 0.0) if has_special else (start, float(np.average(idf)))
            self._set_idf(np.concatenate([np.full(front[0], front[1], "float32"), idf]))

    def _check_safe_file(self, path):
        from plexus.saving.context import _context
        ctx = _context.get()
        if ctx is not None and ctx.safe_mode:  # a file being loaded names another file
            raise ValueError(
                f"Layer {self.name!r}: the model being loaded asks to read the vocabulary file "
                f"{os.fspath(path)!r}, outside the model archive; refused in safe mode. If you "
                "trust the file, load with safe_mode=False.")

    def _set_tokens(self, tokens):
        start = self._token_start_index()
        self._tokens = list(tokens)
        self._index = {t: i + start for i, t in enumerate(self._tokens)}
        self._table = None
        size = self.vocabulary_size()
        if self._frozen_vocab_size is not None and self._fixed_depth_needed() \
                and self.built and size != self._frozen_vocab_size:
            raise RuntimeError(
                f"Layer {self.name!r}: the vocabulary size cannot change after the layer was "
                f"called with output_mode={self.output_mode!r} (was {self._frozen_vocab_size}, "
                f"now {size}). Set pad_to_max_tokens=True for a fixed width.")
        self._frozen_vocab_size = size

    def _set_idf(self, weights):
        if self.pad_to_max_tokens and self.max_tokens is not None:
            weights = np.pad(weights, (0, max(0, self.max_tokens - len(weights))))
        self.idf_weights = torch.from_numpy(weights.astype("float32"))

    def _fixed_depth_needed(self):
        return self.output_mode != "int" and not self.pad_to_max_tokens

    # ------------------------------------------------------------------ adapt
    def adapt(self, data, steps=None):
        """Learn the vocabulary from `data` (an array, a list, or an iterable of batches):
        terms sorted by frequency (ties: by term, high to low), at most `max_tokens` ids."""
        if self._has_input_vocabulary:
            raise ValueError(f"Layer {self.name!r}: cannot adapt a layer created with a "
                             "vocabulary.")
        counts, doc_counts, num_docs = collections.Counter(), collections.Counter(), 0
        for batch in adapt_batches(data, self, steps, lists_are_data=True):
            values = self._adapt_values(numpy_of(batch))
            if values.ndim < 2:  # one document per value
                values = values.reshape(-1, 1) if values.ndim else values.reshape(1, 1)
            uniq, n = np.unique(values.reshape(-1), return_counts=True)
            counts.update(dict(zip(uniq.tolist(), n.tolist())))
            if self.output_mode == "tf_idf":
                for row in values.reshape(values.shape[0], -1):
                    doc_counts.update(set(row.tolist()))
                num_docs += values.shape[0]
        self._finalize(counts, doc_counts, num_docs)

    def _adapt_values(self, values):
        if self._strings:
            if values.dtype.kind not in "USO":
                raise TypeError(f"Layer {self.name!r} (StringLookup) adapts on strings; "
                                f"received an array of dtype {values.dtype}.")
            return np.vectorize(self._term, otypes=[object])(values) if values.dtype.kind != "U" \
                else values
        if values.dtype.kind not in "iu":
            raise TypeError(f"Layer {self.name!r} (IntegerLookup) adapts on integers; "
                            f"received an array of dtype {values.dtype}.")
        return values.astype("int64")

    def _finalize(self, counts, doc_counts, num_docs):
        for special in (self.mask_token, self.oov_token):
            if special is not None:
                counts.pop(special, None)
        if not counts:
            return
        tokens = sorted(counts, key=lambda t: (counts[t], t), reverse=True)
        if self.max_tokens:
            tokens = tokens[:self.max_tokens - self._token_start_index()]
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            docs = np.array([doc_counts[t] for t in tokens], dtype="float64")
            idf = np.log(1 + num_docs / (1 + docs)).astype("float32")
            front = np.full(self._token_start_index(), idf.mean(), "float32")
            self._set_idf(np.concatenate([front, idf]))

    # ------------------------------------------------------------------ call
    def _lookup(self, values):
        """Ids (int64 array) of a NumPy array of terms."""
        flat = values.reshape(-1)
        uniq, inverse = np.unique(flat, return_inverse=True)
        terms = [self._term(u) for u in uniq.tolist()]
        missing = -2
        ids = np.array([self._index.get(t, missing) for t in terms], dtype="int64")
        if self.mask_token is not None:
            mask_id = 0 if self.output_mode == "int" else -1  # other modes drop mask tokens
            ids[np.array([t == self.mask_token for t in terms], dtype=bool)] = mask_id
        oov = ids == missing
        if oov.any():
            ids[oov] = self._oov_ids([t for t, o in zip(terms, oov) if o])
        return ids[inverse.reshape(-1)].reshape(values.shape)

    def _oov_ids(self, terms):
        if self.num_oov_indices == 0:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) with num_oov_indices=0 received "
                f"terms outside its vocabulary: {terms[:10]}. Set num_oov_indices=1 to map "
                "them to an OOV id.")
        start, n = self._oov_start_index(), self.num_oov_indices
        if n == 1:
            return start
        if not self._strings and self.oov_method == "floormod":
            return np.mod(np.array(terms, dtype="int64"), n) + start
        return H.hash_buckets(np.array([str(t) for t in terms]), n, self.salt) + start

    def _invert(self, ids):
        vocab = self.get_vocabulary()
        table = np.array(vocab, dtype=object if self._strings else "int64")
        flat = ids.reshape(-1)
        out = np.empty(flat.shape, dtype=table.dtype)
        inside = (flat >= 0) & (flat < len(vocab))
        out[inside] = table[flat[inside]]
        out[~inside] = self.oov_token
        if self.mask_token is not None:
            out[flat == 0] = self.mask_token
        return out.reshape(ids.shape)

    def call(self, inputs):
        device = inputs.device if isinstance(inputs, torch.Tensor) else None
        values = numpy_of(inputs)
        if self.invert:
            if values.dtype.kind not in "iu":
                raise TypeError(f"Layer {self.name!r} (invert=True) maps integer ids back to "
                                f"terms; received an array of dtype {values.dtype}.")
            out = self._invert(values.astype("int64"))
            if self._strings:
                return out.astype(str)
            return torch.from_numpy(out).to(device or "cpu")
        self._check_input_kind(values)
        if not self._tokens and self._fixed_depth_needed():
            raise RuntimeError(
                f"Layer {self.name!r}: with output_mode={self.output_mode!r} the vocabulary "
                "must be set (vocabulary=... or adapt()) before the layer is called.")
        ids = torch.from_numpy(self._lookup(values))
        if device is not None:
            ids = ids.to(device)
        if self.output_mode == "int":
            return ids
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        out = encode(ids, mode, depth, "float32", self)
        if self.output_mode == "tf_idf":
            out = out * self.idf_weights.to(out.device)
        return out

    def _check_input_kind(self, values):
        kinds = "USO" if self._strings else "iu"
        if values.dtype.kind not in kinds:
            what = "strings" if self._strings else "integers"
            raise TypeError(f"Layer {self.name!r} ({type(self).__name__}) looks up {what}; "
                            f"received an array of dtype {values.dtype}.")

    def _output_dtype(self, inputs):
        if self.invert:
            return "string" if self._strings else "int64"
        return "int64" if self.output_mode == "int" else "float32"

    def compute_output_shape(self, input_shape):
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_vocab_size
        if self.output_mode != "int" and depth is None:
            raise ValueError(f"Layer {self.name!r}: set the vocabulary (or adapt) before using "
                             f"output_mode={self.output_mode!r} in a model.")
        return encoded_shape(input_shape, "count" if self.output_mode == "tf_idf"
                             else self.output_mode, depth)

    # ------------------------------------------------------------------ saving
    def get_config(self):
        vocab = self.input_vocabulary
        if vocab is not None:
            vocab = [self._term(v) for v in numpy_of(vocab).reshape(-1).tolist()]
        idf = self.input_idf_weights
        config = {**super().get_config(), "invert": self.invert, "max_tokens": self.max_tokens,
                  "num_oov_indices": self.num_oov_indices, "oov_token": self.oov_token,
                  "mask_token": self.mask_token, "output_mode": self.output_mode,
                  "sparse": False, "pad_to_max_tokens": self.pad_to_max_tokens,
                  "idf_weights": None if idf is None else numpy_of(idf).tolist(),
                  "vocabulary": vocab, "vocabulary_size": self._frozen_vocab_size,
                  "oov_method": self.oov_method, "salt": self.salt}
        config.pop("dtype", None)
        return config

    def _keras_named_vars(self):
        """Variables Keras stores by name: the idf weights of "tf_idf" mode."""
        if self.output_mode == "tf_idf" and self.idf_weights is not None:
            return {"idf_weights": self.idf_weights.numpy()}
        return {}

    def _load_keras_named_var(self, name, value):
        if name != "idf_weights" or self.output_mode != "tf_idf":
            raise ValueError(f"Layer {self.name!r}: unexpected variable {name!r} in the file.")
        self.idf_weights = torch.from_numpy(np.asarray(value, dtype="float32").reshape(-1))

    def _keras_assets(self):
        """Files Keras keeps in the archive's assets: an adapted vocabulary."""
        if self.input_vocabulary is not None or not self._tokens:
            return {}
        text = "\n".join(str(w) for w in self.get_vocabulary(include_special_tokens=True))
        return {"vocabulary.txt": text.encode("utf-8")}

    def _load_keras_assets(self, read):
        if self.input_vocabulary is not None:
            return
        data = read("vocabulary.txt")
        if data is None:
            return
        terms = _terms_from_lines(data.decode("utf-8"), self, self._strings,
                                  "the archive's vocabulary.txt")
        if self.output_mode == "tf_idf":
            idf, self.idf_weights = self.idf_weights, None
            self.set_vocabulary(terms, idf_weights=np.zeros(len(terms), "float32"))
            self.idf_weights = idf  # the saved weights, already laid out for the ids
        else:
            self.set_vocabulary(terms)


class StringLookup(IndexLookup):
    """Maps strings to integer ids through a vocabulary (learned with `adapt` or given).

    Args:
        max_tokens: the largest vocabulary, special tokens included; None for no limit.
        num_oov_indices: how many ids out-of-vocabulary terms share (hashed among them).
        mask_token: a term that maps to id 0 (and is dropped in the non-int modes).
        oov_token: the term `invert=True` returns for OOV ids.
        vocabulary: a list or array of terms, or the path of a file with one term per line.
        idf_weights: for `output_mode="tf_idf"` with a given vocabulary.
        invert: map ids back to terms (returns a NumPy array of `str`: torch has no strings).
        output_mode: `"int"`, `"one_hot"`, `"multi_hot"`, `"count"` or `"tf_idf"`.
        pad_to_max_tokens: in the multi-hot modes, make outputs `max_tokens` wide.
        encoding: the text encoding of `bytes` inputs.

    Inputs are NumPy arrays (or lists) of `str` or `bytes`. Outputs are torch tensors: int64
    ids, or float32 encodings.

    Example:
        >>> layer = StringLookup(vocabulary=["a", "b", "c", "d"])
        >>> layer(np.array([["a", "c", "d"], ["d", "z", "b"]]))
        tensor([[1, 3, 4],
                [4, 0, 2]])
    """

    _accepts_strings = True

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]",
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 pad_to_max_tokens=False, sparse=False, encoding="utf-8", name=None, salt=None,
                 **kwargs):
        self.encoding = encoding
        kwargs.pop("vocabulary_dtype", None)
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                         mask_token=mask_token, oov_token=oov_token, vocabulary=vocabulary,
                         idf_weights=idf_weights, invert=invert, output_mode=output_mode,
                         pad_to_max_tokens=pad_to_max_tokens, sparse=sparse, name=name,
                         salt=salt, **kwargs)

    def get_config(self):
        return {**super().get_config(), "encoding": self.encoding}


class IntegerLookup(IndexLookup):
    """Maps integers (any values, e.g. user ids) to contiguous ids through a vocabulary.

    Arguments as `StringLookup`, with integer terms: `mask_token` and `oov_token` (default -1)
    are integers, and `oov_method` (`"floormod"`: `value % num_oov_indices`, or `"farmhash"`)
    says how several OOV ids are shared.

    Example:
        >>> layer = IntegerLookup(vocabulary=[12, 36, 1138, 42])
        >>> layer(np.array([[12, 1138, 42], [42, 1000, 36]]))
        tensor([[1, 3, 4],
                [4, 0, 2]])
    """

    _strings = False

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                 vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False,
                 output_mode="int", sparse=False, pad_to_max_tokens=False,
                 oov_method="floormod", salt=None, name=None, **kwargs):
        if vocabulary_dtype != "int64":
            raise ValueError(f"IntegerLookup: only vocabulary_dtype='int64' is supported; "
                             f"received {vocabulary_dtype!r}.")
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                         mask_token=mask_token, oov_token=oov_token, vocabulary=vocabulary,
                         idf_weights=idf_weights, invert=invert, output_mode=output_mode,
                         pad_to_max_tokens=pad_to_max_tokens, sparse=sparse,
                         oov_method=oov_method, salt=salt, name=name, **kwargs)

    def get_config(self):
        config = {**super().get_config(), "vocabulary_dtype": "int64"}
        for key in ("oov_token", "mask_token"):
            if config[key] is not None:
                config[key] = int(config[key])
        return config
