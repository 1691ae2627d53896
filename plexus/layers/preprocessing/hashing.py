"""`Hashing` (values to bucket ids) and `HashedCrossing` (pairs of features to bucket ids), with
TensorFlow's hash functions, so ids match Keras's."""
import numpy as np
import torch

from plexus.layers.preprocessing import hash_functions as H
from plexus.layers.preprocessing.base import DataLayer
from plexus.layers.preprocessing.encoding import check_output_mode, encode


def _values(x, layer):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype.kind == "O":  # a list of mixed str/bytes: keep as objects
        return x
    if x.dtype.kind not in "USiufb":
        raise TypeError(f"Layer {layer.name!r} ({type(layer).__name__}) takes strings or "
                        f"integers; received an array of dtype {x.dtype}.")
    return x


def _int_mode_dtype(output_mode, dtype):
    if dtype is None:
        return "int64" if output_mode == "int" else "float32"
    return dtype


class Hashing(DataLayer):
    """Hashes strings or integers into `num_bins` buckets (FarmHash Fingerprint64, or SipHash
    when `salt` is given), the same ids as Keras (TensorFlow's `to_hash_bucket_fast` /
    `to_hash_bucket_strong`). Integers are hashed as their decimal text, floats truncated
    to integers first.

    Args:
        num_bins: the number of buckets, including the mask bucket when `mask_value` is set.
        mask_value: a value that always gets bucket 0 (the other values get 1..num_bins-1).
        salt: an int or a pair of ints: the key of a keyed (strong) hash.
        output_mode: `"int"` (ids, int64), `"one_hot"`, `"multi_hot"` or `"count"`.
        sparse: not supported on torch.

    Example:
        >>> Hashing(num_bins=3)(np.array([["A"], ["B"], ["C"], ["D"], ["E"]]))
        tensor([[1], [0], [1], [1], [2]])
    """

    _accepts_strings = True
    _accepts_int_inputs = True

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False,
                 **kwargs):
        kwargs["dtype"] = _int_mode_dtype(output_mode, kwargs.get("dtype"))
        super().__init__(**kwargs)
        if num_bins is None or num_bins <= 0:
            raise ValueError(f"Hashing: num_bins must be a positive integer; received "
                             f"num_bins={num_bins}.")
        check_output_mode("Hashing", output_mode)
        if output_mode == "int" and self.dtype_policy.name not in ("int32", "int64"):
            raise ValueError(f"Hashing: with output_mode='int', dtype must be 'int32' or "
                             f"'int64'; received dtype={kwargs['dtype']!r}.")
        if sparse:
            raise ValueError("Hashing: sparse=True is not supported on torch.")
        self.num_bins, self.mask_value, self.output_mode, self.sparse = \
            int(num_bins), mask_value, output_mode, False
        self.salt = None
        if salt is not None:
            if isinstance(salt, (tuple, list)) and len(salt) == 2:
                self.salt = [int(s) for s in salt]
            elif isinstance(salt, int) and not isinstance(salt, bool):
                self.salt = [salt, salt]
            else:
                raise ValueError(f"Hashing: salt must be an int or a pair of ints; received "
                                 f"salt={salt!r}.")
        self.strong_hash = self.salt is not None

    def _output_dtype(self, inputs):
        return self.compute_dtype

    def hash_values(self, values):
        """Bucket ids (an int64 NumPy array) of a NumPy array of values."""
        bins = self.num_bins
        mask = None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            mask = values == self._mask_like(values)
        ids = H.hash_buckets(values, bins, self.salt)
        if mask is not None:
            ids = np.where(mask, 0, ids + 1)
        return ids

    def _mask_like(self, values):
        m = self.mask_value
        if values.dtype.kind == "S" and isinstance(m, str):
            return m.encode()
        if values.dtype.kind == "U" and isinstance(m, bytes):
            return m.decode()
        return m

    def call(self, inputs):
        values = _values(inputs, self)
        if self.output_mode == "one_hot" and values.ndim and values.shape[-1] == 1:
            values = values.reshape(values.shape[:-1])
        ids = torch.from_numpy(self.hash_values(values))
        device = inputs.device if isinstance(inputs, torch.Tensor) else None
        if device is not None:
            ids = ids.to(device)
        return encode(ids, self.output_mode, self.num_bins, self.compute_dtype, self)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        if not input_shape:
            return (self.num_bins,)
        return tuple(input_shape[:-1]) + (self.num_bins,)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "salt": self.salt,
                "mask_value": self.mask_value, "output_mode": self.output_mode,
                "sparse": False}


class HashedCrossing(DataLayer):
    """Crosses two or more categorical features into one by hashing each combination of
    values into `num_bins` buckets (as Keras does, with TensorFlow's `sparse.cross_hashed`).

    Args:
        num_bins: the number of buckets.
        output_mode: `"int"` (ids, int64) or `"one_hot"`.
        sparse: not supported on torch.

    Input: a tuple of features, each of shape `()`, `(batch,)` or `(batch, 1)`, strings or
    integers. Output: ids of the same shape (or one-hot vectors).

    Example:
        >>> HashedCrossing(num_bins=5)((np.array(["A", "B"]), np.array([101, 101])))
        tensor([1, 4])
    """

    _accepts_strings = True
    _accepts_int_inputs = True

    def __init__(self, num_bins, output_mode="int", sparse=False, name=None, dtype=None,
                 **kwargs):
        super().__init__(name=name, dtype=_int_mode_dtype(output_mode, dtype), **kwargs)
        check_output_mode("HashedCrossing", output_mode, ("int", "one_hot"))
        if sparse:
            raise ValueError("HashedCrossing: sparse=True is not supported on torch.")
        self.num_bins, self.output_mode, self.sparse = int(num_bins), output_mode, False

    def __call__(self, inputs, *args, **kwargs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(
                f"Layer {self.name!r} (HashedCrossing) takes a tuple of at least two features; "
                f"received {type(inputs).__name__}.")
        from plexus.layers.layer import Layer
        return Layer.__call__(self, tuple(inputs), *args, **kwargs)

    def _output_dtype(self, inputs):
        return self.compute_dtype

    def call(self, inputs):
        features = [_values(x, self) for x in inputs]
        shape = features[0].shape
        if len(shape) > 2 or (len(shape) == 2 and shape[-1] != 1):
            raise ValueError(
                f"Layer {self.name!r} (HashedCrossing): every feature must have shape (), "
                f"(batch,) or (batch, 1); received {shape}.")
        for f in features:
            if f.shape != shape:
                raise ValueError(f"Layer {self.name!r} (HashedCrossing): all features must have "
                                 f"the same shape; received {[x.shape for x in features]}.")
            if f.dtype.kind not in "USOiub":
                raise ValueError(f"Layer {self.name!r} (HashedCrossing): features must be "
                                 f"integers or strings; received dtype {f.dtype}.")
        columns = [self._feature_hashes(f.reshape(-1)) for f in features]
        ids = []
        for row in zip(*columns):
            h = H.DEFAULT_CROSS_KEY
            for v in row:
                h = H.fingerprint_cat64(h, v)
            ids.append(h % self.num_bins)
        ids = torch.tensor(ids, dtype=torch.int64).reshape(shape)
        return encode(ids, self.output_mode, self.num_bins, self.compute_dtype, self)

    @staticmethod
    def _feature_hashes(values):
        if values.dtype.kind in "iub":  # integers enter the cross as their own value
            return [int(v) & 0xFFFFFFFFFFFFFFFF for v in values.tolist()]
        uniq, inverse = np.unique(values, return_inverse=True)
        fps = [H.fingerprint64(H.as_bytes(v)) for v in uniq.tolist()]
        return [fps[i] for i in inverse.reshape(-1).tolist()]

    def compute_output_shape(self, input_shape):
        first = tuple(input_shape[0])
        if self.output_mode == "int":
            return first
        if first and first[-1] == 1:
            return first[:-1] + (self.num_bins,)
        return first + (self.num_bins,)

    def get_config(self):
        return {"num_bins": self.num_bins, "output_mode": self.output_mode, "sparse": False,
                "name": self.name, "dtype": self.dtype_policy.name}
