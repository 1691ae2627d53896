"""`ReversibleEmbedding`: an Embedding that can also project hidden states back to vocabulary
logits (`reverse=True`), with the transposed embeddings (tied) or a matrix of its own."""
import torch

from plexus.graph.tensor import KerasTensor, torch_dtype
from plexus.layers.core import Embedding


class ReversibleEmbedding(Embedding):
    """An embedding that also maps `(…, output_dim)` hidden states to `(…, input_dim)` logits.

    Called as usual, it looks ids up like `Embedding`. Called with `reverse=True`, it returns
    `hidden @ embeddings.T` (or `hidden @ reverse_embeddings` with `tie_weights=False`), the
    output projection of a language model that shares its input embeddings (Press & Wolf,
    2016). There is no bias.

    Args:
        input_dim: vocabulary size (largest id + 1).
        output_dim: size of each embedding vector.
        tie_weights: whether the reverse projection uses the transposed embeddings (default)
            or a separate trainable `reverse_embeddings` matrix `(output_dim, input_dim)`.
        embeddings_initializer, embeddings_regularizer, embeddings_constraint, mask_zero: as for
            `Embedding` (`reverse_embeddings` uses the same initializer).
        reverse_dtype: a dtype to compute the reverse projection in (its inputs and matrix are
            cast to it); the layer's compute dtype by default.
        logit_soft_cap: if set, reverse logits become `tanh(logits / cap) * cap`.

    Call arguments: `inputs`, and `reverse` (bool, default False).

    Example:
        >>> emb = ReversibleEmbedding(100, 32)
        >>> hidden = emb(np.random.randint(100, size=(16, 50)))    # (16, 50, 32)
        >>> emb(hidden, reverse=True).shape                          # logits
        torch.Size([16, 50, 100])
    """

    _cast_outputs = False  # `call` casts: reverse logits keep `reverse_dtype`

    def __init__(self, input_dim, output_dim, tie_weights=True,
                 embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, reverse_dtype=None,
                 logit_soft_cap=None, **kwargs):
        super().__init__(input_dim, output_dim, embeddings_initializer=embeddings_initializer,
                         embeddings_regularizer=embeddings_regularizer,
                         embeddings_constraint=embeddings_constraint, mask_zero=mask_zero,
                         **kwargs)
        if reverse_dtype is not None:
            torch_dtype(reverse_dtype)  # an unknown name fails here, not at the first call
        if logit_soft_cap is not None and not float(logit_soft_cap) > 0:
            raise ValueError(
                f"ReversibleEmbedding: logit_soft_cap must be positive or None; received "
                f"{logit_soft_cap!r}.")
        self.tie_weights = bool(tie_weights)
        self.reverse_dtype = reverse_dtype
        self.logit_soft_cap = logit_soft_cap
        self._reversed_call = False  # which way the last call went (its mask depends on it)

    def build(self, input_shape=None):
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                shape=(self.output_dim, self.input_dim),
                initializer=self.embeddings_initializer, name="reverse_embeddings")

    def call(self, inputs, reverse=False):
        self.__dict__["_reversed_call"] = bool(reverse)
        if not reverse:  # float32 rows, in the compute dtype (as Embedding)
            out = super().call(inputs)
            dtype = self._compute_torch_dtype
            return out.to(dtype) if dtype.is_floating_point and out.dtype != dtype else out
        if inputs.shape[-1] != self.output_dim:
            raise ValueError(
                f"Layer {self.name!r} (ReversibleEmbedding): reverse=True projects vectors of "
                f"size output_dim={self.output_dim}; received an input of shape "
                f"{tuple(inputs.shape)}.")
        kernel = self.embeddings.T if self.tie_weights else self.reverse_embeddings
        dtype = torch_dtype(self.reverse_dtype) if self.reverse_dtype else \
            self._compute_torch_dtype
        logits = inputs.to(dtype) @ kernel.to(dtype)
        if self.logit_soft_cap is not None:
            cap = float(self.logit_soft_cap)
            logits = torch.tanh(logits / cap) * cap
        return logits

    # The mask: ids make one (with mask_zero), a reverse projection never does. The graph
    # records `reverse` with the call; at run time the mask is asked right after the call.
    def _symbolic_call(self, args, kwargs):
        self.__dict__["_reversed_call"] = bool(kwargs.get("reverse", False))
        return super()._symbolic_call(args, kwargs)

    def _makes_mask(self):
        return self.mask_zero and not self._reversed_call

    def _symbolic_mask(self, inputs, in_masked):
        return self._makes_mask()

    def compute_mask(self, inputs, mask=None):
        return None if self._reversed_call else super().compute_mask(inputs, mask)

    def compute_output_shape(self, input_shape, reverse=False):
        if reverse:
            return tuple(input_shape[:-1]) + (self.input_dim,)
        return super().compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, reverse=False, **kwargs):
        shape = self.compute_output_shape(inputs.shape, reverse=reverse)
        dtype = self.reverse_dtype if reverse and self.reverse_dtype else self.compute_dtype
        return KerasTensor(shape, dtype)

    def get_config(self):
        return {**super().get_config(), "tie_weights": self.tie_weights,
                "reverse_dtype": self.reverse_dtype, "logit_soft_cap": self.logit_soft_cap}
