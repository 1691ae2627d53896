"""Attention layers: MultiHeadAttention, Attention (Luong), AdditiveAttention (Bahdanau), Dot."""
import math

import torch
import torch.nn.functional as F

from plexus import initializers
from plexus.graph.tensor import KerasTensor
from plexus.layers.core import _ser, resolve_weight_args
from plexus.layers.layer import Layer
from plexus.layers.merging import Merge

_LARGE_NEGATIVE = -1e9  # added to masked scores before the softmax
_SDPA_NEGATIVE = -0.7 * 3.38953e38  # masked-score bias for the fused kernel (Keras's value)


def _masked_softmax(scores, mask):
    """Softmax over the last axis ignoring `mask == False` entries (rows fully masked give 0)."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    scores = torch.where(mask, scores, torch.full_like(scores, _LARGE_NEGATIVE))
    return torch.where(mask, torch.softmax(scores, dim=-1), torch.zeros_like(scores))


def _tensor(x):
    """NumPy arrays given as extra call arguments become tensors (None stays None)."""
    if x is None or isinstance(x, torch.Tensor):
        return x
    t = torch.as_tensor(x)
    return t.float() if t.dtype == torch.float64 else t


def _causal_mask(t, s, device):
    """`(1, t, s)` lower-triangular mask: query i sees keys 0..i."""
    return torch.ones((t, s), dtype=torch.bool, device=device).tril()[None]


def call_inputs(value, key, query_mask, value_mask, key_mask, attention_mask, mask):
    """An attention layer's extra call arguments as tensors, `key` defaulting to `value` and
    the query's mask to the one the graph passes as `mask`."""
    value, key, query_mask, value_mask, key_mask, attention_mask = (
        _tensor(t) for t in (value, key, query_mask, value_mask, key_mask, attention_mask))
    if query_mask is None and mask is not None:
        query_mask = mask[0] if isinstance(mask, (list, tuple)) else mask
    return value, value if key is None else key, query_mask, value_mask, key_mask, \
        attention_mask


def combine_masks(query, value, query_mask=None, value_mask=None, key_mask=None,
                  attention_mask=None, use_causal_mask=False, band=None):
    """The bool mask `(B or 1, T, S)` (True = may attend) that all given masks allow: the
    query's `(B, T)`, the value's and key's `(B, S)`, the causal one, an extra `band`
    `(1, T, S)` and `attention_mask`; None when there are none."""
    mask = None
    if query_mask is not None:
        mask = query_mask.bool()[..., None]
    for m in (value_mask, key_mask):
        if m is not None:
            m = m.bool()[..., None, :]
            mask = m if mask is None else mask & m
    extra = [band] if band is not None else []
    if use_causal_mask:
        extra.insert(0, _causal_mask(query.shape[1], value.shape[1], query.device))
    for m in extra:
        mask = m if mask is None else mask & m
    if attention_mask is not None:
        attention_mask = torch.as_tensor(attention_mask, device=query.device).bool()
        mask = attention_mask if mask is None else attention_mask & mask
    return mask


class _Projection(Layer):
    """Contracts the last `len(in_dims)` axes of its input with a kernel `in_dims + out_dims`
    (the EinsumDense projections inside MultiHeadAttention; weights in Keras's layout)."""

    def __init__(self, in_dims, out_dims, use_bias, owner, **kwargs):
        super().__init__(dtype=owner.dtype_policy, **kwargs)
        self.in_dims, self.out_dims = tuple(in_dims), tuple(out_dims)
        self.use_bias = use_bias
        self._owner = {"layer": owner}  # not a submodule: avoids a cycle in the module tree

    def build(self, input_shape=None):
        o = self._owner["layer"]
        self.kernel = self.add_weight(
            shape=self.in_dims + self.out_dims, initializer=o.kernel_initializer, name="kernel",
            regularizer=o.kernel_regularizer, constraint=o.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.out_dims, initializer=o.bias_initializer, name="bias",
                regularizer=o.bias_regularizer, constraint=o.bias_constraint)
        self.built = True

    def call(self, x):
        n_in, n_out = math.prod(self.in_dims), math.prod(self.out_dims)
        lead = tuple(x.shape[:x.ndim - len(self.in_dims)])
        y = x.reshape(lead + (n_in,)) @ self.kernel.reshape(n_in, n_out)
        if self.bias is not None:
            y = y + self.bias.reshape(n_out)
        return y.reshape(lead + self.out_dims)


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al., 2017), with Keras's weights and masks.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value (default `key_dim`).
        dropout: dropout rate on the attention probabilities (training only).
        use_bias: whether the four projections have biases.
        output_shape: size (or shape) of the output's last axes; default the query's last axis.
        attention_axes: axes over which attention runs (default: all but batch and features).
        kernel_initializer, bias_initializer, *_regularizer, *_constraint: for the projections.

    Call arguments: `query` `(B, T, dim)`, `value` `(B, S, dim)`, `key` (default `value`),
    `attention_mask` (bool `(B, T, S)`, True = may attend), `query_mask`/`value_mask`/`key_mask`,
    `return_attention_scores`, `training`, `use_causal_mask`.

    Weights (Keras layout and order): query, key, value kernels `(dim, num_heads, key_dim)` with
    biases `(num_heads, key_dim)`, then the output kernel `(num_heads, value_dim, dim)` and bias.

    Output shape: `(B, T, dim)`; with `return_attention_scores`, also `(B, num_heads, T, S)`.
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        for arg, v in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"MultiHeadAttention {arg} must be a positive integer; received {v!r}.")
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim if value_dim else key_dim
        self.dropout, self.use_bias, self.seed = float(dropout), bool(use_bias), seed
        if isinstance(output_shape, int):
            output_shape = (output_shape,)
        self._output_shape = tuple(output_shape) if output_shape else None
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        self.attention_axes = tuple(attention_axes) if attention_axes is not None else None
        self.flash_attention = flash_attention
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

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = tuple(value_shape or query_shape)
        key_shape = tuple(key_shape or value_shape)
        query_shape = tuple(query_shape)
        for what, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) < 3 or shape[-1] is None:
                raise ValueError(
                    f"Layer {self.name!r} (MultiHeadAttention): the {what} must have shape "
                    f"(batch, ..., features) with a known feature size; received {shape}.")
        rank = len(query_shape)
        axes = self.attention_axes or tuple(range(1, rank - 1))
        self._axes = tuple(sorted(a % rank for a in axes))
        if any(a in (0, rank - 1) for a in self._axes):
            raise ValueError(
                f"Layer {self.name!r}: attention_axes {self.attention_axes} must not include the "
                f"batch or feature axis of a rank-{rank} query.")
        heads = self.num_heads
        out_dims = self._output_shape or (query_shape[-1],)
        self.query_dense = _Projection((query_shape[-1],), (heads, self.key_dim), self.use_bias,
                                       self, name="query")
        self.key_dense = _Projection((key_shape[-1],), (heads, self.key_dim), self.use_bias,
                                     self, name="key")
        self.value_dense = _Projection((value_shape[-1],), (heads, self.value_dim),
                                       self.use_bias, self, name="value")
        self.output_dense = _Projection((heads, self.value_dim), out_dims, self.use_bias, self,
                                        name="attention_output")
        for sub in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            sub.build()
        self.built = True

    def _ensure_built(self, query, value, key):
        if not self.built:
            self.build(tuple(query.shape), tuple(value.shape),
                       tuple(key.shape) if key is not None else None)

    # ------------------------------------------------------------------ shapes
    def _scores_shape(self, q_shape, k_shape):
        others = [q_shape[i] for i in range(1, len(q_shape) - 1) if i not in self._axes]
        return ((q_shape[0],) + tuple(others) + (self.num_heads,)
                + tuple(q_shape[a] for a in self._axes) + tuple(k_shape[a] for a in self._axes))

    def compute_output_spec(self, query, value=None, key=None, return_attention_scores=False,
                            **kwargs):
        value = query if value is None else value
        self._ensure_built(query, value, key)
        out_dims = self._output_shape or (query.shape[-1],)
        out = KerasTensor(tuple(query.shape[:-1]) + tuple(out_dims), self.compute_dtype)
        if not return_attention_scores:
            return out
        key = value if key is None else key
        return out, KerasTensor(self._scores_shape(query.shape, key.shape), self.compute_dtype)

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        return tuple(query_shape[:-1]) + tuple(self._output_shape or (query_shape[-1],))

    # ------------------------------------------------------------------ running
    def _flatten(self, x):
        """`(B, *dims, N, H)` -> `(B * others, N, prod(attention dims), H)` and its inverse plan."""
        rank = x.ndim - 1  # rank of the unprojected input
        others = [i for i in range(1, rank - 1) if i not in self._axes]
        perm = [0] + others + [rank - 1] + list(self._axes) + [rank]
        y = x.permute(perm)
        lead = y.shape[:1 + len(others)]
        flat = y.reshape((math.prod(lead), x.shape[rank - 1], -1, x.shape[rank]))
        return flat, perm, y.shape

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False, mask=None):
        training = self.training if training is None else bool(training)
        value, key, query_mask, value_mask, key_mask, attention_mask = call_inputs(
            value, key, query_mask, value_mask, key_mask, attention_mask, mask)
        self._ensure_built(query, value, key)
        causal_only = (use_causal_mask and query_mask is None and value_mask is None
                       and key_mask is None and attention_mask is None)
        full_mask = None if causal_only else combine_masks(
            query, value, query_mask, value_mask, key_mask if key is not value else None,
            attention_mask, use_causal_mask)
        q, perm, q_shape = self._flatten(self.query_dense(query))
        k, _, k_shape = self._flatten(self.key_dense(key))
        v, _, _ = self._flatten(self.value_dense(value))
        scale = 1.0 / math.sqrt(self.key_dim)
        p = self.dropout if training else 0.0
        scores = None
        if causal_only and return_attention_scores:
            full_mask = _causal_mask(q.shape[2], k.shape[2], q.device)
        flat_mask = None
        if full_mask is not None:
            scores_shape = tuple(q_shape[:-1]) + tuple(k_shape[-1 - len(self._axes):-1])
            flat_mask = self._flat_mask(full_mask, scores_shape, q.shape[0], q.shape[2],
                                        k.shape[2])
        # As in Keras: torch's fused attention unless scores are asked for, or a mask meets
        # dropout or several attention axes; there a fully masked row attends uniformly, while
        # the explicit softmax below gives it zero weights.
        if not return_attention_scores and (flat_mask is None or (
                self.dropout == 0 and query.ndim == 3)):
            bias = None
            if flat_mask is not None:
                bias = torch.zeros(flat_mask.shape, dtype=q.dtype, device=q.device)
                bias = bias.masked_fill(~flat_mask, _SDPA_NEGATIVE)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p,
                                                 is_causal=bool(causal_only), scale=scale)
        else:
            probs = _masked_softmax((q * scale) @ k.transpose(-1, -2), flat_mask)
            scores = probs
            if p > 0:
                probs = F.dropout(probs, p, True)
            out = probs @ v
        out = out.reshape(q_shape[:-1] + (self.value_dim,))
        inverse = [perm.index(i) for i in range(len(perm))]
        out = self.output_dense(out.permute(inverse))
        if return_attention_scores:
            return out, scores.reshape(tuple(q_shape[:-1]) + tuple(k_shape[-1 - len(self._axes):-1]))
        return out

    def _flat_mask(self, mask, scores_shape, bx, tq, tk):
        """A Keras-layout mask `(B, ..., T..., S...)` broadcast to the flat `(B*, N, Tq, Tk)`."""
        at = -2 * len(self._axes) - 1
        while mask.ndim < len(scores_shape):
            mask = mask.unsqueeze(at)
        mask = torch.broadcast_to(mask, tuple(scores_shape))
        return mask.reshape(bx, self.num_heads, tq, tk)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": self._output_shape, "attention_axes": self.attention_axes,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": _ser(self.kernel_regularizer),
                "bias_regularizer": _ser(self.bias_regularizer),
                "activity_regularizer": _ser(self.activity_regularizer),
                "kernel_constraint": _ser(self.kernel_constraint),
                "bias_constraint": _ser(self.bias_constraint), "seed": self.seed}


class Attention(Layer):
    """Dot-product (Luong-style) attention over `[query, value]` or `[query, value, key]`.

    Args:
        use_scale: learn a scalar that multiplies the scores.
        score_mode: `"dot"` (query . key) or `"concat"` (sum of tanh(query + key)).
        dropout: dropout rate on the attention probabilities (training only).

    Call arguments: `inputs` a list `[query (B, Tq, dim), value (B, Tv, dim), key?]`, `mask` a
    list `[query_mask (B, Tq), value_mask (B, Tv)]`, `return_attention_scores`,
    `use_causal_mask`, `training`.

    Output shape: `(B, Tq, dim)`; with `return_attention_scores`, also `(B, Tq, Tv)`.
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f"Layer {self.name!r}: score_mode must be 'dot' or 'concat'; received {score_mode!r}.")
        self.use_scale, self.score_mode = bool(use_scale), score_mode
        self.dropout, self.seed = float(dropout), seed
        self.supports_masking = True

    def _check(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (2, 3) or \
                not isinstance(input_shape[0], (list, tuple)):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) must be called on a list "
                f"[query, value] or [query, value, key]; received {input_shape}.")

    def build(self, input_shape):
        self._check(input_shape)
        self.scale = self.concat_score_weight = None
        if self.use_scale:
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(shape=(), initializer="ones",
                                                       name="concat_score_weight")
        self.built = True

    def _scores(self, q, k):
        if self.score_mode == "dot":
            s = q @ k.transpose(-1, -2)
            return s * self.scale if self.scale is not None else s
        pair = q.unsqueeze(-2) + k.unsqueeze(-3)
        if self.scale is not None:
            pair = self.scale * pair
        return self.concat_score_weight * torch.tanh(pair).sum(-1)

    def call(self, inputs, mask=None, training=None, return_attention_scores=False,
             use_causal_mask=False):
        training = self.training if training is None else bool(training)
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        q_mask = _tensor(mask[0]) if mask else None
        v_mask = _tensor(mask[1]) if mask and len(mask) > 1 else None
        scores = self._scores(q, k)
        smask = v_mask.bool()[..., None, :] if v_mask is not None else None
        if use_causal_mask:
            c = _causal_mask(scores.shape[-2], scores.shape[-1], scores.device)
            smask = c if smask is None else smask & c
        if smask is not None:
            scores = torch.where(smask, scores, scores - 1e9)
        weights = torch.softmax(scores, dim=-1)
        used = F.dropout(weights, self.dropout, True) if training and self.dropout > 0 else weights
        out = used @ v
        if q_mask is not None:
            out = out * q_mask.bool()[..., None].to(out.dtype)
        return (out, weights) if return_attention_scores else out

    def compute_output_spec(self, inputs, return_attention_scores=False, **kwargs):
        shapes = [t.shape for t in inputs]
        self._check(shapes)
        out = KerasTensor(tuple(shapes[0][:-1]) + (shapes[1][-1],), self.compute_dtype)
        if not return_attention_scores:
            return out
        return out, KerasTensor((shapes[0][0], shapes[0][1], shapes[1][1]), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return tuple(input_shape[0][:-1]) + (input_shape[1][-1],)

    def _symbolic_mask(self, inputs, in_masked):
        return bool(in_masked and in_masked[0])

    def compute_mask(self, inputs, mask=None):
        if not mask or mask[0] is None:
            return None
        return mask[0]

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau-style) attention: scores `sum(scale * tanh(query + key))`.

    Args:
        use_scale: learn a per-feature scale vector `(dim,)` (default True).
        dropout: dropout rate on the attention probabilities.

    Called like `Attention`, on `[query, value]` or `[query, value, key]`.
    """

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        self._check(input_shape)
        self.scale = None
        if self.use_scale:
            self.scale = self.add_weight(shape=(input_shape[0][-1],), initializer="glorot_uniform",
                                         name="scale")
        self.built = True

    def _scores(self, q, k):
        t = torch.tanh(q.unsqueeze(-2) + k.unsqueeze(-3))
        return (t * self.scale).sum(-1) if self.scale is not None else t.sum(-1)

    def get_config(self):
        config = super().get_config()
        config.pop("score_mode", None)
        return config


class Dot(Merge):
    """Dot product of two tensors along `axes`, sample by sample.

    Args:
        axes: an axis or a pair of axes (one per input) to contract.
        normalize: L2-normalize both inputs along those axes first (cosine similarity).

    Example: `Dot(axes=1)([a, b])` with `a`, `b` of shape `(B, d)` gives `(B, 1)`.
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axes, int):
            if not isinstance(axes, (list, tuple)) or len(axes) != 2:
                raise ValueError(f"Dot axes must be an int or a pair of ints; received {axes!r}.")
            axes = tuple(axes)
        self.axes, self.normalize = axes, bool(normalize)
        self.supports_masking = False

    def _axes_for(self, ranks):
        axes = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        return [a % r if a < 0 else a for a, r in zip(axes, ranks)]

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or \
                not isinstance(input_shape[0], (list, tuple)):
            raise ValueError(f"Layer {self.name!r} (Dot) must be called on exactly 2 tensors; "
                             f"received {input_shape}.")
        s1, s2 = (tuple(s) for s in input_shape)
        a1, a2 = self._axes_for((len(s1), len(s2)))
        if s1[a1] is not None and s2[a2] is not None and s1[a1] != s2[a2]:
            raise ValueError(
                f"Layer {self.name!r} (Dot): dimension {a1} of the first input ({s1[a1]}) and "
                f"dimension {a2} of the second ({s2[a2]}) must match; shapes {s1} and {s2}.")
        out = s1[:a1] + s1[a1 + 1:] + s2[1:a2] + s2[a2 + 1:]
        return out + (1,) if len(out) == 1 else out

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def compute_mask(self, inputs, mask=None):
        return None

    def _symbolic_mask(self, inputs, in_masked):
        return False

    def _merge(self, inputs):
        if len(inputs) != 2:
            raise ValueError(f"Layer {self.name!r} (Dot) must be called on exactly 2 tensors.")
        x, y = inputs
        a1, a2 = self._axes_for((x.ndim, y.ndim))
        if self.normalize:
            x = x * torch.clamp(torch.rsqrt(x.square().sum(a1, keepdim=True)), max=1e7)
            y = y * torch.clamp(torch.rsqrt(y.square().sum(a2, keepdim=True)), max=1e7)
        xm, ym = x.movedim(a1, -1), y.movedim(a2, 1)
        b = x.shape[0]
        out = torch.bmm(xm.reshape(b, -1, xm.shape[-1]), ym.reshape(b, ym.shape[1], -1))
        out = out.reshape(tuple(xm.shape[:-1]) + tuple(ym.shape[2:]))
        return out.reshape(b, 1) if out.ndim == 1 else out

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Functional form of `Dot`: `dot([a, b], axes=1)`."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
