"""`CategoryEncoding` (ids to one-hot, multi-hot or counts) and `Discretization` (numbers to
bucket ids)."""
import numpy as np
import torch

from plexus.layers.layer import text_refused
from plexus.layers.preprocessing.base import DataLayer, adapt_batches, numpy_of
from plexus.layers.preprocessing.encoding import check_output_mode, encode, encoded_shape


def _tensor(x):
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    return torch.as_tensor(x)


class CategoryEncoding(DataLayer):
    """Encodes integer ids as one-hot, multi-hot or count vectors of length `num_tokens`.

    Args:
        num_tokens: the number of ids; inputs must lie in `[0, num_tokens)`.
        output_mode: `"multi_hot"` (1 where an id occurs in the sample), `"one_hot"` (one
            vector per id), or `"count"` (how often each id occurs; `count_weights` weights
            them).
        sparse: not supported (torch tensors are dense); `True` raises.

    Input shape: `(batch, ids)` (or `(batch,)`). Output shape: `(batch, num_tokens)`, or
    `(batch, ids, num_tokens)` for `"one_hot"` with several ids per sample.

    Example:
        >>> CategoryEncoding(num_tokens=4, output_mode="multi_hot")(np.array([[0, 1], [0, 0]]))
        tensor([[1., 1., 0., 0.],
                [1., 0., 0., 0.]])
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if output_mode == "binary":
            output_mode = "multi_hot"
        check_output_mode("CategoryEncoding", output_mode, ("count", "one_hot", "multi_hot"))
        if num_tokens is None:
            raise ValueError(
                "CategoryEncoding needs num_tokens. If the number of ids is not known "
                "beforehand, use IntegerLookup instead.")
        if num_tokens < 1:
            raise ValueError(f"CategoryEncoding: num_tokens must be >= 1; received "
                             f"num_tokens={num_tokens}.")
        if sparse:
            raise ValueError("CategoryEncoding: sparse=True is not supported on torch; "
                             "outputs are dense tensors.")
        self.num_tokens, self.output_mode, self.sparse = int(num_tokens), output_mode, False

    def call(self, inputs, count_weights=None):
        if count_weights is not None and self.output_mode != "count":
            raise ValueError(f"Layer {self.name!r}: count_weights is only used with "
                             f"output_mode='count'; this layer has {self.output_mode!r}.")
        return encode(_tensor(inputs), self.output_mode, self.num_tokens, self.compute_dtype,
                      self, count_weights)

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens,
                "output_mode": self.output_mode, "sparse": False}


class Discretization(DataLayer):
    """Buckets continuous values into ids: value `x` gets id `i` when
    `bin_boundaries[i-1] <= x < bin_boundaries[i]`.

    Args:
        bin_boundaries: sorted boundaries (`[0., 1., 2.]` makes 4 buckets), or None to learn
            them with `adapt()`.
        num_bins: the number of buckets `adapt()` learns (quantiles of the data).
        epsilon: the precision of the quantiles `adapt()` estimates.
        output_mode: `"int"` (bucket ids, int32), `"one_hot"`, `"multi_hot"` or `"count"`.
        sparse: not supported on torch.

    Example:
        >>> Discretization(bin_boundaries=[0., 1., 2.])(np.array([[-1.5, 1.0, 3.4, 0.5]]))
        tensor([[0, 2, 3, 1]], dtype=torch.int32)
    """

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
                 sparse=False, dtype=None, name=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        check_output_mode("Discretization", output_mode)
        if sparse:
            raise ValueError("Discretization: sparse=True is not supported on torch.")
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"Discretization: num_bins must be >= 0; received {num_bins}.")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError("Discretization: pass either num_bins (and adapt()) or "
                             "bin_boundaries, not both.")
        if num_bins is None and bin_boundaries is None:
            raise ValueError("Discretization needs bin_boundaries, or num_bins and a call to "
                             "adapt().")
        self.bin_boundaries = None if bin_boundaries is None else list(bin_boundaries)
        self.num_bins, self.epsilon = num_bins, epsilon
        self.output_mode, self.sparse = output_mode, False
        self.summary = None if self.bin_boundaries else np.array([[], []], dtype="float32")
        self._boundaries = None  # a tensor of the boundaries, made on first use

    @property
    def output_dtype(self):
        return "int32" if self.output_mode == "int" else self.compute_dtype

    def _output_dtype(self, inputs):
        return self.output_dtype

    def adapt(self, data, steps=None):
        """Learn `num_bins` buckets holding about as many values each (approximate quantiles
        of `data`: an array, or an iterable of batches)."""
        if self.num_bins is None:
            raise ValueError(
                f"Layer {self.name!r} (Discretization) was created with bin_boundaries; to learn "
                "them, create it with num_bins instead.")
        self.summary = np.array([[], []], dtype="float32")
        for batch in adapt_batches(data, self, steps):
            values = numpy_of(batch)
            if values.dtype.kind in "USO":
                raise text_refused(self)
            summary = _summarize(values.astype("float32"), self.epsilon)
            self.summary = _merge(summary, self.summary, self.epsilon)
        self.bin_boundaries = _compress(self.summary, 1.0 / self.num_bins)[0, :-1].tolist()
        self._boundaries = None

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError(
                f"Layer {self.name!r} (Discretization) has no bin boundaries: pass "
                "bin_boundaries=... or call adapt(data) before using it.")
        x = _tensor(inputs)
        if not x.is_floating_point():
            x = x.float()
        b = self._boundaries
        if b is None or b.device != x.device or b.dtype != x.dtype:
            b = self._boundaries = torch.tensor(self.bin_boundaries, dtype=x.dtype,
                                                device=x.device)
        ids = torch.bucketize(x, b, right=True)
        return encode(ids, self.output_mode, len(self.bin_boundaries) + 1, self.output_dtype,
                      self)

    def compute_output_shape(self, input_shape):
        depth = len(self.bin_boundaries) + 1 if self.bin_boundaries is not None \
            else self.num_bins
        return encoded_shape(input_shape, self.output_mode, depth)

    def get_config(self):
        return {"bin_boundaries": self.bin_boundaries, "num_bins": self.num_bins,
                "epsilon": self.epsilon, "output_mode": self.output_mode, "sparse": False,
                "name": self.name, "dtype": self.dtype_policy.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        boundaries = config.get("bin_boundaries")
        if boundaries is not None and config.get("num_bins") is not None:
            config.pop("bin_boundaries")  # adapted: both are saved, the constructor takes one
            layer = cls(**config)
            layer.bin_boundaries = list(boundaries)
            return layer
        return cls(**config)


# Approximate quantiles, as Keras computes them (so adapted boundaries match Keras's).
def _summarize(values, epsilon):
    """A summary of `values`: every `1/epsilon`-th sorted value, weighted by the step."""
    values = np.sort(values.reshape(-1))
    step = max(values.size / (1.0 / epsilon), 1)
    boundaries = values[int(step - 1)::int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def _merge(a, b, epsilon):
    """Two summaries merged in value order, then compressed."""
    merged = np.concatenate((a, b), axis=1)
    return _compress(np.take(merged, np.argsort(merged[0]), axis=1), epsilon)


def _compress(summary, epsilon):
    """Interpolate a summary's cumulative weights down to about `1/epsilon` bins."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_percents, summary[0])
    cum_weights = np.interp(percents, cum_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")
