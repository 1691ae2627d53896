"""`GroupQueryAttention` (also `GroupedQueryAttention`, Keras's class name): attention whose key
and value heads are shared by groups of query heads, on torch's fused
`F.scaled_dot_product_attention(..., enable_gqa=True)` (the shared heads are not copied)."""
import contextlib
import math

import torch
import torch.nn.functional as F

from plexus import initializers
from plexus.graph.tensor import KerasTensor
from plexus.layers.attention import _causal_mask, _masked_softmax, call_inputs, combine_masks
from plexus.layers.core import resolve_weight_args, weight_args_config
from plexus.layers.einsum_dense import EinsumDense
from plexus.layers.layer import Layer


def _large_negative(dtype):
    """The masked-score bias of the fused path, as Keras's torch backend adds it."""
    return -0.7 * (65500.0 if dtype == torch.float16 else 3.38953e38)


def _fresh(init):
    """A copy of an initializer object (each projection gets its own); functions as they are."""
    if isinstance(init, initializers.Initializer):
        return type(init).from_config(init.get_config())
    return init


def _sliding_window_mask(t, s, window, device):
    """`(1, t, s)` band: query i sees keys j with |i - j| < window."""
    rows = torch.arange(t, device=device)[:, None]
    cols = torch.arange(s, device=device)[None, :]
    return ((rows - cols).abs() < window)[None]


class GroupQueryAttention(Layer):
    """Grouped-query attention (Ainslie et al., 2023).

    The query is projected to `num_query_heads` heads, key and value to `num_key_value_heads`
    heads; each key/value head serves `num_query_heads // num_key_value_heads` consecutive
    query heads. One key/value head is multi-query attention; as many as query heads is
    multi-head attention.

    Args:
        head_dim: size of each head.
        num_query_heads: number of query heads.
        num_key_value_heads: number of key and value heads; must divide `num_query_heads`.
        dropout: dropout rate on the attention probabilities (training only).
        use_bias: whether the projections have biases.
        sliding_window: None, or a positive int: query i attends only to keys j with
            `|i - j| < sliding_window` (with `use_causal_mask`, the causal band of Mistral).
        flash_attention: None (torch picks its kernel), False, or True to require torch's
            flash-attention kernel (an error where it cannot run, e.g. on a CPU).
        use_gate: multiply the attention output by `sigmoid(query @ gate_kernel)` before the
            output projection (gated attention).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: for the projections.
        seed: accepted for Keras compatibility; dropout draws from torch's generator.

    Call arguments: `query` `(B, T, dim)`, `value` `(B, S, dim)`, `key` (default `value`),
    `attention_mask` (bool `(B, T, S)`, True = may attend), `query_mask`/`value_mask`/
    `key_mask`, `return_attention_scores`, `training`, `use_causal_mask`.

    Weights (Keras layout and order): query kernel `(dim, num_query_heads, head_dim)` and bias,
    key and value kernels `(dim, num_key_value_heads, head_dim)` and biases (the gate's after
    the key's), then the output kernel `(num_query_heads, head_dim, dim)` and bias `(dim,)`.

    Output shape: `(B, T, dim)`; with `return_attention_scores`, also the probabilities
    `(B, num_query_heads, T, S)`.

    Example:
        >>> q, v = Input(shape=(8, 16)), Input(shape=(4, 16))
        >>> GroupQueryAttention(head_dim=8, num_query_heads=4, num_key_value_heads=2)(q, v).shape
        (None, 8, 16)
    """

    _name_prefix = "grouped_query_attention"  # Keras's default name (from its class name)

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, dropout=0.0,
                 use_bias=True, sliding_window=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, use_gate=False, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        for arg, v in (("head_dim", head_dim), ("num_query_heads", num_query_heads),
                       ("num_key_value_heads", num_key_value_heads)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"GroupQueryAttention: {arg} must be a positive integer; "
                                 f"received {arg}={v!r}.")
        if num_query_heads % num_key_value_heads:
            raise ValueError(
                f"GroupQueryAttention: num_query_heads ({num_query_heads}) must be divisible by "
                f"num_key_value_heads ({num_key_value_heads}).")
        if sliding_window is not None and (not isinstance(sliding_window, int)
                                           or isinstance(sliding_window, bool)
                                           or sliding_window <= 0):
            raise ValueError("GroupQueryAttention: sliding_window must be None or a positive "
                             f"integer; received sliding_window={sliding_window!r}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(
                f"GroupQueryAttention: dropout must be in [0, 1); received {dropout!r}.")
        if flash_attention and dropout > 0:
            raise ValueError("GroupQueryAttention: dropout is not supported with "
                             "flash_attention=True. Set dropout=0.0 or flash_attention=None.")
        self.head_dim, self.num_query_heads = head_dim, num_query_heads
        self.num_key_value_heads = num_key_value_heads
        self.num_repeats = num_query_heads // num_key_value_heads
        self.dropout, self.use_bias, self.use_gate = float(dropout), bool(use_bias), bool(use_gate)
        self.sliding_window, self.seed = sliding_window, seed
        self._flash_attention = flash_attention
        resolve_weight_args(self, kernel_initializer=kernel_initializer,
                            bias_initializer=bias_initializer,
                            kernel_regularizer=kernel_regularizer,
                            bias_regularizer=bias_regularizer,
                            activity_regularizer=activity_regularizer,
                            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self.supports_masking = True

    # ------------------------------------------------------------------ building
    def _maybe_build(self, input_shape):
        pass  # built on the first call, when the value and key shapes are known too

    def _projection(self, equation, output_shape, bias_axes, name, activation=None):
        """An EinsumDense projection with the layer's weight arguments (initializers copied,
        so that each projection draws its own values)."""
        return EinsumDense(
            equation, output_shape=output_shape, activation=activation, name=name,
            bias_axes=bias_axes if self.use_bias else None, dtype=self.dtype_policy,
            kernel_initializer=_fresh(self.kernel_initializer),
            bias_initializer=_fresh(self.bias_initializer),
            kernel_regularizer=self.kernel_regularizer, bias_regularizer=self.bias_regularizer,
            activity_regularizer=self.activity_regularizer,
            kernel_constraint=self.kernel_constraint, bias_constraint=self.bias_constraint)

    def build(self, query_shape, value_shape=None, key_shape=None):
        query_shape = tuple(query_shape)
        value_shape = tuple(value_shape or query_shape)
        key_shape = tuple(key_shape or value_shape)
        self._check_shapes(query_shape, value_shape, key_shape)
        uq, uk, h = self.num_query_heads, self.num_key_value_heads, self.head_dim
        # Attribute names as Keras's, so that saved files address the same groups; creation
        # order as Keras's, so that weights come in its order.
        self._query_dense = self._projection("bqm,muh->bquh", (None, uq, h), "uh", "query")
        self._key_dense = self._projection("bkm,mvh->bkvh", (None, uk, h), "vh", "key")
        if self.use_gate:
            self._gate_dense = self._projection("bqm,muh->bquh", (None, uq, h), "uh", "gate",
                                                activation="sigmoid")
        self._value_dense = self._projection("bkm,mvh->bkvh", (None, uk, h), "vh", "value")
        self._output_dense = self._projection("bquh,uhm->bqm", (None, query_shape[-1]), "m",
                                              "attention_output")
        self._query_dense.build(query_shape)
        self._key_dense.build(key_shape)
        if self.use_gate:
            self._gate_dense.build(query_shape)
        self._value_dense.build(value_shape)
        self._output_dense.build((None, None, uq, h))
        self.built = True

    def _check_shapes(self, query_shape, value_shape, key_shape):
        for what, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(
                    f"Layer {self.name!r} (GroupQueryAttention): the {what} must have shape "
                    f"(batch, length, features) with a known feature size; received {shape}.")
        if query_shape[-1] != value_shape[-1]:
            raise ValueError(
                f"Layer {self.name!r} (GroupQueryAttention): the query and the value must have "
                f"the same feature size; received query shape {query_shape} and value shape "
                f"{value_shape}.")
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(
                f"Layer {self.name!r} (GroupQueryAttention): the key and the value must have the "
                f"same length; received value shape {value_shape} and key shape {key_shape}.")

    def _ensure_built(self, query, value, key):
        if not self.built:
            self.build(tuple(query.shape), tuple(value.shape),
                       tuple(key.shape) if key is not None else None)

    # ------------------------------------------------------------------ shapes
    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        value_shape = tuple(value_shape or query_shape)
        self._check_shapes(tuple(query_shape), value_shape, tuple(key_shape or value_shape))
        return tuple(query_shape)

    def compute_output_spec(self, query, value=None, key=None, return_attention_scores=False,
                            **kwargs):
        value = query if value is None else value
        self._ensure_built(query, value, key)
        out_shape = self.compute_output_shape(query.shape, value.shape,
                                              key.shape if key is not None else None)
        out = KerasTensor(out_shape, self.compute_dtype)
        if not return_attention_scores:
            return out
        source = (key if key is not None else value).shape[1]
        scores = (query.shape[0], self.num_query_heads, query.shape[1], source)
        return out, KerasTensor(scores, self.compute_dtype)

    # ------------------------------------------------------------------ running
    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False, mask=None):
        training = self.training if training is None else bool(training)
        value, key, query_mask, value_mask, key_mask, attention_mask = call_inputs(
            value, key, query_mask, value_mask, key_mask, attention_mask, mask)
        self._ensure_built(query, value, key)
        causal_only = (use_causal_mask and query_mask is None and value_mask is None
                       and key_mask is None and attention_mask is None
                       and self.sliding_window is None)
        band = None if self.sliding_window is None else _sliding_window_mask(
            query.shape[1], value.shape[1], self.sliding_window, query.device)
        full_mask = None if causal_only else combine_masks(
            query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask,
            band)
        gate = self._gate_dense(query) if self.use_gate else None
        q = self._query_dense(query).transpose(1, 2)  # (B, heads, T, head_dim)
        k = self._key_dense(key).transpose(1, 2)
        v = self._value_dense(value).transpose(1, 2)
        scale = 1.0 / math.sqrt(self.head_dim)
        if full_mask is not None and full_mask.ndim == 3:
            full_mask = full_mask[:, None]  # broadcast over the heads
        scores = None
        # As in Keras: the fused kernel unless dropout is set or scores are asked for; on the
        # fused path a fully masked query row attends uniformly, on the explicit one it gets
        # zero weights.
        if self.dropout == 0 and not return_attention_scores:
            out = self._fused(q, k, v, full_mask, bool(causal_only), scale)
        else:
            if self._flash_attention:
                raise ValueError(
                    f"Layer {self.name!r} (GroupQueryAttention): return_attention_scores=True "
                    "is not supported with flash_attention=True.")
            if causal_only:
                full_mask = _causal_mask(q.shape[2], k.shape[2], q.device)[:, None]
            k = k.repeat_interleave(self.num_repeats, dim=1)
            v = v.repeat_interleave(self.num_repeats, dim=1)
            scores = _masked_softmax((q * scale) @ k.transpose(-1, -2), full_mask)
            probs = F.dropout(scores, self.dropout, True) if training and self.dropout else scores
            out = probs @ v
        out = out.transpose(1, 2)  # (B, T, heads, head_dim)
        if gate is not None:
            out = out * gate
        out = self._output_dense(out)
        return (out, scores) if return_attention_scores else out

    def _fused(self, q, k, v, mask, causal, scale):
        bias = None
        if mask is not None:
            bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
            bias = bias.masked_fill(~mask, _large_negative(q.dtype))
        backends = contextlib.nullcontext()
        if self._flash_attention:
            backends = torch.nn.attention.sdpa_kernel(
                [torch.nn.attention.SDPBackend.FLASH_ATTENTION])
        try:
            with backends:
                return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=causal,
                                                      scale=scale, enable_gqa=True)
        except RuntimeError as e:
            if not self._flash_attention:
                raise
            raise ValueError(
                f"Layer {self.name!r} (GroupQueryAttention): flash_attention=True, but torch's "
                f"flash-attention kernel cannot run here ({e}). It needs a CUDA device, half "
                "precision and no attention mask; use flash_attention=None to let torch choose."
            ) from e

    def get_config(self):
        return {**super().get_config(), "head_dim": self.head_dim,
                "num_query_heads": self.num_query_heads,
                "num_key_value_heads": self.num_key_value_heads, "use_bias": self.use_bias,
                "use_gate": self.use_gate, "sliding_window": self.sliding_window,
                "dropout": self.dropout,
                **weight_args_config(self, "kernel_initializer", "bias_initializer",
                                     "kernel_regularizer", "bias_regularizer",
                                     "activity_regularizer", "kernel_constraint",
                                     "bias_constraint"),
                "seed": self.seed}


GroupedQueryAttention = GroupQueryAttention
