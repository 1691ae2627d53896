"""`SpectralNormalization`: divides a wrapped layer's kernel by its largest singular value,
estimated by power iteration, at every training call (Miyato et al., 2018)."""
import torch

from plexus import initializers
from plexus.layers.wrappers import Wrapper

_EPSILON = 1e-7  # the floor of a norm in the power iteration (Keras's backend epsilon)


def _normalize(x):
    """`x / ||x||` over all its entries, `x * 1e7` when the norm is below 1e-7."""
    return x * torch.clamp(torch.rsqrt(torch.sum(torch.square(x))), max=1.0 / _EPSILON)


class SpectralNormalization(Wrapper):
    """Spectral normalization of the weights of a layer with a `kernel` (Dense, Conv2D, ...) or
    `embeddings` (Embedding), which keeps the layer's Lipschitz constant near one (used to
    stabilize GAN discriminators).

    In training (`fit`, or `training=True`), each call runs `power_iterations` steps of power
    iteration on the kernel, seen as a matrix `(-1, last_axis)` in Keras's layout, from the
    vector `vector_u` kept between calls; it then divides the kernel by the estimated spectral
    norm, in place, and runs the layer. At inference the layer runs with the kernel as it is.
    A kernel of zeros is left unchanged.

    Args:
        layer: the layer whose kernel to normalize.
        power_iterations: number of power-iteration steps per training call (at least 1).

    Weights (Keras's order): the kernel (also the wrapped layer's), `vector_u`
    `(1, last_axis)` (non-trainable), then the wrapped layer's other weights.

    Example:
        >>> SpectralNormalization(Conv2D(2, 2))(np.random.rand(1, 10, 10, 1)).shape
        torch.Size([1, 9, 9, 2])
    """

    # `vector_u` is never used in the compute dtype, and the kernel must be updated before
    # the wrapped layer takes its own compute-dtype copy: no weight copies at this level.
    _autocast_weights = False

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if not isinstance(power_iterations, int) or isinstance(power_iterations, bool) or \
                power_iterations <= 0:
            raise ValueError(
                "SpectralNormalization: power_iterations must be a positive integer; received "
                f"power_iterations={power_iterations!r}.")
        self.power_iterations = power_iterations

    def build(self, input_shape):
        super().build(input_shape)
        self._target = self._find_target()
        owner, w = self._target
        self.vector_u = self.add_weight(
            shape=(1, w.keras_shape[-1]), initializer=initializers.TruncatedNormal(stddev=0.02),
            trainable=False, name="vector_u", dtype=getattr(owner, w.attr).dtype)
        self.built = True

    def _find_target(self):
        """(owner, Weight) of the wrapped layer's `kernel`, else of its `embeddings`."""
        for attr in ("kernel", "embeddings"):
            param = getattr(self.layer, attr, None)
            if isinstance(param, torch.nn.Parameter):
                for owner, w in self.layer._weight_entries():
                    if owner._parameters.get(w.attr) is param:
                        return owner, w
        raise ValueError(
            f"SpectralNormalization {self.name!r}: the wrapped layer {self.layer.name!r} "
            f"({type(self.layer).__name__}) has neither a `kernel` nor an `embeddings` weight. "
            "Wrap a layer such as Dense, Conv2D or Embedding.")

    def _own_weight_entries(self):
        # Keras tracks the kernel as this layer's own variable too, before `vector_u`.
        target = self.__dict__.get("_target")
        return ([target] if target else []) + super()._own_weight_entries()

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, *args, **kwargs):
        return self.layer.compute_output_spec(inputs, *args, **kwargs)

    def call(self, inputs, training=None):
        training = self.training if training is None else bool(training)
        if training:
            self._normalize_kernel()
        out = self.layer(inputs)
        return out if out.dtype == inputs.dtype else out.to(inputs.dtype)

    @torch.no_grad()
    def _normalize_kernel(self):
        owner, w = self._target
        kernel = owner._parameters[w.attr]  # the parameter itself, never a dtype copy
        u_param = self._parameters["vector_u"]
        matrix = w.to_keras(kernel).reshape(-1, w.keras_shape[-1]).float()
        u = u_param.float()
        for _ in range(self.power_iterations):
            v = _normalize(u @ matrix.T)
            u = _normalize(v @ matrix)
        sigma = (v @ matrix) @ u.T
        zero = torch.all(kernel == 0)  # stays on the device: no host sync
        kernel.copy_(torch.where(zero, kernel, kernel / sigma.reshape(()).to(kernel.dtype)))
        u_param.copy_(torch.where(zero, u_param, u.to(u_param.dtype)))

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}

