"""Advanced activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax.

(`Activation`, which applies any named activation, lives in `plexus.layers.core`.)
"""
import torch
import torch.nn.functional as F

from plexus import constraints, initializers, regularizers
from plexus.layers.core import _ser
from plexus.layers.layer import Layer

_MASKED_LOGIT = {torch.float16: -3e4}  # a logit that vanishes after softmax in each dtype


class _Elementwise(Layer):
    """An activation layer: output shape equals input shape, masks pass through."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _float(self, x):
        return x if x.is_floating_point() else x.float()


class ReLU(_Elementwise):
    """Rectified linear unit with an optional cap, slope and threshold.

    `f(x) = min(x, max_value)` for `x > threshold`, `negative_slope * (x - threshold)` otherwise.

    Args:
        max_value: the largest output (no cap when None); must be >= 0.
        negative_slope: slope below the threshold; must be >= 0.
        threshold: inputs up to this value are damped; must be >= 0.

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("max_value", max_value), ("negative_slope", negative_slope),
                           ("threshold", threshold)):
            if (value is None and arg != "max_value") or (value is not None and value < 0):
                raise ValueError(
                    f"Layer {self.name!r} (ReLU): {arg} must be a number >= 0"
                    f"{' or None' if arg == 'max_value' else ''}; received {arg}={value!r}.")
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def call(self, inputs):
        x = self._float(inputs)
        if self.max_value is None and self.threshold == 0:
            if self.negative_slope == 0:
                return torch.relu(x)
            return F.leaky_relu(x, self.negative_slope)
        pos = torch.where(x > self.threshold, x, torch.zeros((), dtype=x.dtype, device=x.device))
        if self.max_value is not None:
            pos = torch.clamp(pos, max=float(self.max_value))
        if self.negative_slope == 0:
            return pos
        return pos - self.negative_slope * torch.relu(self.threshold - x)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(_Elementwise):
    """Leaky ReLU: `x` for `x >= 0`, `negative_slope * x` otherwise.

    Args:
        negative_slope: slope for negative inputs (default 0.3). `alpha` is accepted as an
            older name for it.

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError(
                f"Layer {self.name!r} (LeakyReLU): negative_slope must be a number >= 0; "
                f"received negative_slope={negative_slope!r}.")
        self.negative_slope = negative_slope

    def call(self, inputs):
        return F.leaky_relu(self._float(inputs), float(self.negative_slope))

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class PReLU(_Elementwise):
    """Parametric ReLU: `x` for `x >= 0`, `alpha * x` otherwise, with `alpha` learned.

    Args:
        alpha_initializer, alpha_regularizer, alpha_constraint: for the `alpha` weight.
        shared_axes: axes, numbered as in the input shape (1 is the first axis after the
            batch), along which `alpha` is shared; `[1, 2]` gives one alpha per image channel.

    Weight: `alpha`, shaped like one sample with size 1 on the shared axes.

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            self.shared_axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) \
                else [shared_axes]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or ():
            if not isinstance(a, int) or not 1 <= a < len(input_shape):
                raise ValueError(
                    f"Layer {self.name!r} (PReLU): shared axis {a!r} is out of range for an "
                    f"input of shape {tuple(input_shape)}; use axes between 1 and "
                    f"{len(input_shape) - 1} (0 is the batch).")
            shape[a - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(
                f"Layer {self.name!r} (PReLU) needs every non-shared axis of its input to have a "
                f"known size; received an input of shape {tuple(input_shape)}. Share the unknown "
                "axes with shared_axes=[...].")
        self.alpha = self.add_weight(shape=tuple(shape), initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint, name="alpha")
        self.built = True

    def call(self, inputs):
        x = self._float(inputs)
        return torch.where(x > 0, x, self.alpha * x)

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": _ser(self.alpha_regularizer),
                "alpha_constraint": _ser(self.alpha_constraint),
                "shared_axes": self.shared_axes}


class ELU(_Elementwise):
    """Exponential linear unit: `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise.

    Args:
        alpha: scale of the negative part (default 1.0).

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def call(self, inputs):
        return F.elu(self._float(inputs), float(self.alpha))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_Elementwise):
    """Softmax over `axis`; masked positions (mask False) get probability 0.

    Args:
        axis: an axis or a list of axes to normalize over.

    Call arguments:
        mask: optional boolean (or 0/1) tensor broadcastable to the inputs.

    Input shape: any. Output shape: same as the input.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, mask=None):
        x = self._float(inputs)
        if mask is not None:
            mask = self._check_mask(x, torch.as_tensor(mask, device=x.device))
            x = torch.where(mask, x, torch.tensor(_MASKED_LOGIT.get(x.dtype, -1e9), dtype=x.dtype,
                                                  device=x.device))
        if isinstance(self.axis, (list, tuple)) and len(self.axis) > 1:
            out = torch.exp(x - torch.logsumexp(x, dim=tuple(self.axis), keepdim=True))
        else:
            axis = self.axis[0] if isinstance(self.axis, (list, tuple)) else self.axis
            out = torch.softmax(x, dim=axis)
        if mask is not None:
            out = torch.where(mask, out, torch.zeros((), dtype=out.dtype, device=out.device))
        return out

    def _check_mask(self, x, mask):
        ok = mask.ndim <= x.ndim and all(
            m in (1, i) for m, i in zip(reversed(mask.shape), reversed(x.shape)))
        if not ok:
            raise ValueError(
                f"Layer {self.name!r} (Softmax): the mask of shape {tuple(mask.shape)} does not "
                f"broadcast to the inputs of shape {tuple(x.shape)}; each mask dimension, "
                "counted from the right, must be 1 or equal the input's.")
        return mask if mask.dtype == torch.bool else mask > 0.5

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
