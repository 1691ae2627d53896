"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization,
UnitNormalization.

Weights are stored in Keras's layout (1-D per-channel vectors), so `get_weights()` and files need
no conversion; the work runs on torch's fused kernels (`F.batch_norm`, `F.layer_norm`,
`F.group_norm`) wherever they compute exactly what the layer promises.
"""
import torch
import torch.nn.functional as F

from plexus import constraints, initializers, regularizers
from plexus.distribution import runtime as distributed
from plexus.graph.tensor import torch_dtype
from plexus.layers.core import _ser
from plexus.layers.layer import Layer

_MASK_EPSILON = 1e-7  # keeps masked statistics finite when a channel has no unmasked value


def _check_axes(layer, axes, input_shape):
    """Positive axes for `input_shape`; a ValueError naming the layer when one is out of range."""
    rank = len(input_shape)
    out = []
    for a in axes:
        if not isinstance(a, int) or isinstance(a, bool) or not -rank <= a < rank:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}): axis {a!r} is out of range for "
                f"an input of shape {tuple(input_shape)} (rank {rank}). Use an axis between "
                f"{-rank} and {rank - 1}; received axis={layer.axis!r}."
            )
        out.append(a % rank)
    return out


def _known_dims(layer, axes, input_shape):
    dims = tuple(input_shape[a] for a in axes)
    if any(d is None for d in dims):
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) needs the size of axis "
            f"{layer.axis!r} to be known, but received an input of shape {tuple(input_shape)}."
        )
    return dims


def _as_float(layer, x):
    """The input in the layer's weight dtype (float32 by default): integer and half-precision
    inputs are promoted so that statistics are computed accurately."""
    dtype = torch_dtype(layer.dtype)
    if not dtype.is_floating_point or dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return x if x.dtype == dtype else x.to(dtype)


def _broadcast(v, rank, axes):
    """Reshape a weight of shape `dims(axes)` to broadcast against an input of `rank`."""
    shape = [1] * rank
    for a, d in zip(axes, v.shape if v.ndim == len(axes) else (v.numel(),)):
        shape[a] = d
    return v.reshape(shape)


def _set_affine_args(layer, beta_initializer, gamma_initializer, beta_regularizer,
                     gamma_regularizer, beta_constraint, gamma_constraint):
    """Store the initializers, regularizers and constraints of `beta` and `gamma` on `layer`."""
    layer.beta_initializer = initializers.get(beta_initializer)
    layer.gamma_initializer = initializers.get(gamma_initializer)
    layer.beta_regularizer = regularizers.get(beta_regularizer)
    layer.gamma_regularizer = regularizers.get(gamma_regularizer)
    layer.beta_constraint = constraints.get(beta_constraint)
    layer.gamma_constraint = constraints.get(gamma_constraint)


def _add_affine_weights(layer, shape, scale, center):
    """Create `layer.gamma` (if `scale`) then `layer.beta` (if `center`) of `shape`; None else."""
    layer.gamma = layer.beta = None
    if scale:
        layer.gamma = layer.add_weight(shape=shape, initializer=layer.gamma_initializer,
                                       regularizer=layer.gamma_regularizer,
                                       constraint=layer.gamma_constraint, name="gamma")
    if center:
        layer.beta = layer.add_weight(shape=shape, initializer=layer.beta_initializer,
                                      regularizer=layer.beta_regularizer,
                                      constraint=layer.beta_constraint, name="beta")


def _affine_config(layer):
    """The config entries of `beta` and `gamma`'s initializers, regularizers and constraints."""
    return {"beta_initializer": initializers.serialize(layer.beta_initializer),
            "gamma_initializer": initializers.serialize(layer.gamma_initializer),
            "beta_regularizer": _ser(layer.beta_regularizer),
            "gamma_regularizer": _ser(layer.gamma_regularizer),
            "beta_constraint": _ser(layer.beta_constraint),
            "gamma_constraint": _ser(layer.gamma_constraint)}


class BatchNormalization(Layer):
    """Normalizes each channel with batch statistics in training, moving statistics otherwise.

    In training (`fit`, or `training=True`) the layer normalizes with the mean and (biased)
    variance of the current batch and updates its moving statistics:
    `moving = moving * momentum + batch_statistic * (1 - momentum)`. At inference it uses the
    moving statistics. Setting `layer.trainable = False` freezes the layer *and* runs it in
    inference mode, which is what fine-tuning a pretrained network needs.

    Args:
        axis: the channel axis (`-1` for channels-last data, `1` for channels-first).
        momentum: momentum of the moving averages.
        epsilon: added to the variance before dividing.
        center, scale: whether to learn the offset `beta` / the factor `gamma`.
        beta_initializer, gamma_initializer, moving_mean_initializer,
            moving_variance_initializer: initializers of the four weights.
        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint: as for Dense.
        synchronized: under a `plexus.distribution` run on several processes, compute the
            batch statistics over every process's samples (the global batch); no effect in a
            single process.

    Weights (in order): `gamma`, `beta`, `moving_mean`, `moving_variance` (the last two
    non-trainable), each of shape `(channels,)`.

    Input shape: any, with a known size on `axis`. Output shape: same as the input.

    Example:
        >>> y = BatchNormalization()(Conv2D(16, 3)(Input(shape=(32, 32, 3))))
    """

    # Mixed precision: statistics in float32, outputs cast to the compute dtype.
    _autocast_weights = False
    _cast_outputs = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None, renorm_momentum=0.99,
                 synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise ValueError(
                    f"Layer {self.name!r} (BatchNormalization) normalizes over one channel axis; "
                    f"received axis={axis!r}. Pass a single integer.")
            axis = axis[0]
        if renorm:
            raise ValueError(
                f"Layer {self.name!r} (BatchNormalization): renorm=True (batch renormalization) "
                "is not supported by plexus. Use renorm=False.")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        _set_affine_args(self, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.renorm, self.renorm_clipping = False, renorm_clipping
        # synchronized: under a distribution, batch statistics over every process's batch
        self.renorm_momentum, self.synchronized = renorm_momentum, bool(synchronized)
        self.supports_masking = True

    def build(self, input_shape):
        (axis,) = _check_axes(self, [self.axis], input_shape)
        shape = _known_dims(self, [axis], input_shape)
        _add_affine_weights(self, shape, self.scale, self.center)
        self.moving_mean = self.add_weight(shape=shape, initializer=self.moving_mean_initializer,
                                           trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(shape=shape,
                                               initializer=self.moving_variance_initializer,
                                               trainable=False, name="moving_variance")
        self.built = True

    def call(self, inputs, training=None, mask=None):
        x = _as_float(self, inputs)
        (axis,) = _check_axes(self, [self.axis], x.shape)
        if mask is not None and mask.ndim != x.ndim - 1:
            raise ValueError(
                f"Layer {self.name!r} (BatchNormalization): the mask must have one dimension "
                f"less than the inputs; received mask shape {tuple(mask.shape)} for inputs of "
                f"shape {tuple(x.shape)}.")
        training = self.training if training is None else bool(training)
        if not (training and self.trainable):
            return self._normalize(x, axis, self.moving_mean, self.moving_variance)
        reduce = [d for d in range(x.ndim) if d != axis]
        count = x.numel() // max(x.shape[axis], 1)
        if self.synchronized and distributed.active():
            mean, var = distributed.global_moments(x, reduce, mask)
            out = self._normalize(x, axis, mean, var)
        elif mask is None and count > 1:
            out, mean, var = self._fused_training(x, axis, count)
        else:
            mean, var = self._moments(x, reduce, mask)
            out = self._normalize(x, axis, mean, var)
        with torch.no_grad():
            m = self.momentum
            self.moving_mean.copy_(self.moving_mean * m + mean.detach() * (1.0 - m))
            self.moving_variance.copy_(self.moving_variance * m + var.detach() * (1.0 - m))
        return out

    def _fused_training(self, x, axis, count):
        """One fused torch pass: outputs from batch statistics, plus the statistics themselves.

        torch reports the unbiased variance through its running buffers; the layer's statistic
        is the biased one, recovered exactly by the factor `(n - 1) / n`.
        """
        c = x.shape[axis]
        mean = torch.zeros(c, device=x.device, dtype=x.dtype)
        var = torch.zeros(c, device=x.device, dtype=x.dtype)
        xt = x.movedim(axis, 1) if axis != 1 else x
        out = F.batch_norm(xt, mean, var, *self._affine(x), True, 1.0, self.epsilon)
        out = out.movedim(1, axis) if axis != 1 else out
        return out, mean, var * ((count - 1) / count)

    def _affine(self, x):
        """gamma and beta in the dtype of the (promoted) input `x`: half-precision weights
        (`model.half()`, a `"float16"` policy) take part in float32 statistics."""
        return tuple(w if w is None or w.dtype == x.dtype else w.to(x.dtype)
                     for w in (self.gamma, self.beta))

    def _moments(self, x, reduce, mask):
        """Batch mean and biased variance over `reduce`, counting only unmasked positions."""
        if mask is None:
            var, mean = torch.var_mean(x, dim=reduce, unbiased=False)
            return mean, var
        w = mask.unsqueeze(-1).to(x.dtype).expand_as(x)
        total = w.sum(dim=reduce) + _MASK_EPSILON
        mean = (x * w).sum(dim=reduce) / total
        shape = [1] * x.ndim
        shape[[d for d in range(x.ndim) if d not in reduce][0]] = -1
        var = (torch.square(x - mean.reshape(shape)) * w).sum(dim=reduce) / total
        return mean, var

    def _normalize(self, x, axis, mean, var):
        if mean.requires_grad or var.requires_grad:
            # Statistics carry gradients (masked training): the broadcast formula keeps them.
            shape = [1] * x.ndim
            shape[axis] = -1
            inv = torch.rsqrt(var.reshape(shape) + self.epsilon)
            if self.gamma is not None:
                inv = inv * self.gamma.reshape(shape)
            out = (x - mean.reshape(shape)) * inv
            return out + self.beta.reshape(shape) if self.beta is not None else out
        xt = x.movedim(axis, 1) if axis != 1 else x
        if mean.dtype != x.dtype:
            mean, var = mean.to(x.dtype), var.to(x.dtype)
        out = F.batch_norm(xt, mean, var, *self._affine(x), False, 0.0, self.epsilon)
        return out.movedim(1, axis) if axis != 1 else out

    def compute_output_shape(self, input_shape):
        _check_axes(self, [self.axis], input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer":
                    initializers.serialize(self.moving_variance_initializer),
                "beta_regularizer": _ser(self.beta_regularizer),
                "gamma_regularizer": _ser(self.gamma_regularizer),
                "beta_constraint": _ser(self.beta_constraint),
                "gamma_constraint": _ser(self.gamma_constraint),
                "synchronized": self.synchronized, "renorm": self.renorm,
                "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum}


class LayerNormalization(Layer):
    """Normalizes each sample over `axis` (the features by default), then scales and shifts.

    Args:
        axis: an axis or a list of axes to normalize over.
        epsilon: added to the variance before dividing.
        center, scale: whether to learn the offset `beta` / the factor `gamma`.
        rms_scaling: divide by `sqrt(variance + epsilon)` without subtracting the mean and
            without `beta` (the deprecated Keras option, kept for compatibility).
        beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
            beta_constraint, gamma_constraint: for the two weights.

    Weights: `gamma`, `beta`, each shaped like the normalized axes.

    Input shape: any. Output shape: same as the input.
    """

    # Mixed precision: inputs not cast, float32 math, outputs cast to the compute dtype.
    _autocast = _autocast_weights = False
    _cast_outputs = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            axis = list(axis)
        elif not isinstance(axis, int):
            raise TypeError(
                f"Layer {self.name!r} (LayerNormalization): axis must be an int or a list of "
                f"ints; received {axis!r}.")
        self.axis = axis
        self.epsilon = float(epsilon)
        self.center, self.scale, self.rms_scaling = bool(center), bool(scale), bool(rms_scaling)
        _set_affine_args(self, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint)
        self.supports_masking = True

    def _axes(self):
        return self.axis if isinstance(self.axis, list) else [self.axis]

    def build(self, input_shape):
        axes = _check_axes(self, self._axes(), input_shape)
        order = sorted(range(len(axes)), key=lambda i: axes[i])
        self.axis = sorted(self._axes(), key=lambda a: a % len(input_shape))
        shape = _known_dims(self, [axes[i] for i in order], input_shape)
        _add_affine_weights(self, shape, self.scale or self.rms_scaling,
                            self.center and not self.rms_scaling)
        self.built = True

    def call(self, inputs):
        x = _as_float(self, inputs)
        axes = sorted(_check_axes(self, self._axes(), x.shape))
        trailing = axes == list(range(x.ndim - len(axes), x.ndim))
        if self.rms_scaling:
            var = torch.var(x, dim=axes, unbiased=False, keepdim=True)
            out = x * torch.rsqrt(var + self.epsilon)
            return out * _broadcast(self.gamma, x.ndim, axes) if self.gamma is not None else out
        if trailing:
            return F.layer_norm(x, tuple(x.shape[a] for a in axes), self.gamma, self.beta,
                                self.epsilon)
        var, mean = torch.var_mean(x, dim=axes, unbiased=False, keepdim=True)
        inv = torch.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            inv = inv * _broadcast(self.gamma, x.ndim, axes)
        out = (x - mean) * inv
        return out + _broadcast(self.beta, x.ndim, axes) if self.beta is not None else out

    def compute_output_shape(self, input_shape):
        _check_axes(self, self._axes(), input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": self.rms_scaling,
                **_affine_config(self)}


class GroupNormalization(Layer):
    """Splits the channels into `groups` and normalizes each group of each sample.

    `groups=1` is layer normalization over all channels and positions; `groups=-1` (one channel
    per group) is instance normalization.

    Args:
        groups: number of groups; must divide the number of channels.
        axis: the channel axis.
        epsilon: added to the variance before dividing.
        center, scale, and the initializers/regularizers/constraints of `beta` and `gamma`.

    Weights: `gamma`, `beta`, each of shape `(channels,)`.

    Input shape: any, with a known channel size. Output shape: same as the input.
    """

    _autocast = _autocast_weights = False  # as LayerNormalization
    _cast_outputs = True

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(groups, int) or isinstance(groups, bool) or (groups <= 0 and groups != -1):
            raise ValueError(
                f"Layer {self.name!r} (GroupNormalization): groups must be a positive integer, "
                f"or -1 for instance normalization; received groups={groups!r}.")
        self.groups, self.axis, self.epsilon = groups, axis, float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        _set_affine_args(self, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        (axis,) = _check_axes(self, [self.axis], input_shape)
        (dim,) = _known_dims(self, [axis], input_shape)
        if self.groups == -1:
            self.groups = dim
        if dim % self.groups:
            raise ValueError(
                f"Layer {self.name!r} (GroupNormalization): the {dim} channels of an input of "
                f"shape {tuple(input_shape)} do not divide into groups={self.groups}. Choose a "
                f"number of groups that divides {dim}.")
        _add_affine_weights(self, (dim,), self.scale, self.center)
        self.built = True

    def call(self, inputs):
        x = _as_float(self, inputs)
        (axis,) = _check_axes(self, [self.axis], x.shape)
        xt = x.movedim(axis, 1) if axis != 1 else x
        out = F.group_norm(xt, self.groups, self.gamma, self.beta, self.epsilon)
        return out.movedim(1, axis) if axis != 1 else out

    def compute_output_shape(self, input_shape):
        _check_axes(self, [self.axis], input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                **_affine_config(self)}


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over `axis`: `x / max(||x||, 1e-12)`.

    Args:
        axis: an axis or a list of axes to take the norm over.

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            axis = list(axis)
        elif not isinstance(axis, int):
            raise TypeError(
                f"Layer {self.name!r} (UnitNormalization): axis must be an int or a list of "
                f"ints; received {axis!r}.")
        self.axis = axis
        self.supports_masking = True

    def call(self, inputs):
        x = _as_float(self, inputs)
        axes = _check_axes(self, self.axis if isinstance(self.axis, list) else [self.axis],
                           x.shape)
        square_sum = torch.sum(torch.square(x), dim=axes, keepdim=True)
        return x * torch.clamp(torch.rsqrt(square_sum), max=1e12)

    def compute_output_shape(self, input_shape):
        _check_axes(self, self.axis if isinstance(self.axis, list) else [self.axis], input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
