"""Random draws, as `keras.random`: `normal`, `uniform`, `dropout`, ... and `SeedGenerator`.

    import plexus as keras
    x = keras.random.normal((2, 3))                  # torch's global generator
    x = keras.random.normal((2, 3), seed=42)         # the same values on every call
    gen = keras.random.SeedGenerator(seed=42)
    a = keras.random.uniform((2,), seed=gen)         # a deterministic sequence of draws
    b = keras.random.uniform((2,), seed=gen)         # ... different from `a`

The `seed` argument follows Keras: `None` draws from a global stream (here torch's global
generator, so `plexus.utils.set_random_seed` / `torch.manual_seed` make it reproducible), an
integer gives the same values on every call, a `SeedGenerator` gives a reproducible sequence.
The streams are torch's: the numbers differ from Keras's on other backends.

Results are torch tensors on the device of the data being processed when called inside a
layer's `call` (the device of the outermost layer's input), else on torch's default device.
"""
import random as python_random

import torch

from plexus import config
from plexus.graph.tensor import KerasTensor, standardize_dtype, torch_dtype
from plexus.variables import Variable, Weight

_MIX = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: spreads (seed, counter) pairs over seeds


class SeedGenerator:
    """A random state that advances on every draw, for reproducible sequences of draws.

    Pass it as the `seed` of `plexus.random` functions. A layer that keeps one as an attribute
    lists its state among its `variables` / `non_trainable_variables` (not among its weights,
    and not in saved files, as in Keras).

    Args:
        seed: an integer; None picks one from Python's `random` (reproducible after
            `plexus.utils.set_random_seed`).
        name: the generator's name (`seed_generator`, `seed_generator_1`, ... by default).

    Example:

        class RandomNoise(plexus.layers.Layer):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.seed_generator = plexus.random.SeedGenerator(1337)

            def call(self, x):
                return x + plexus.random.normal(x.shape, stddev=0.1, seed=self.seed_generator)
    """

    def __init__(self, seed=None, name=None, **kwargs):
        kwargs.pop("backend", None)
        if kwargs:
            raise ValueError(f"SeedGenerator: unrecognized keyword arguments {sorted(kwargs)}.")
        from plexus import backend
        self.name = name or backend.unique_name("seed_generator")
        self._initial_seed = seed
        if seed is None:
            seed = make_default_seed()
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"Argument `seed` must be an integer. Received: seed={seed!r}")
        spec = Weight(None, "seed_generator_state", (2,), trainable=False,
                      path=f"{self.name}/seed_generator_state")
        self.state = Variable._from_tensor(torch.tensor([seed, 0], dtype=torch.int64), spec)

    def next(self, ordered=True):
        """The current `(seed, counter)` state as a tensor; advances the state."""
        value = self.state.detach().clone()
        with torch.no_grad():
            if ordered:
                self.state[1] += 1
            else:
                self.state.copy_((self.state + 1) * 5387 % 933199)
        return value

    def _torch_seed(self):
        seed, counter = (int(v) for v in self.state.tolist())
        with torch.no_grad():
            self.state[1] += 1
        return (seed * _MIX + counter) % (2 ** 63)

    def get_config(self):
        return {"seed": self._initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<SeedGenerator name={self.name}, seed={self._initial_seed}>"


def make_default_seed():
    """A seed drawn from Python's `random` module (as Keras draws one)."""
    return python_random.randint(1, int(1e9))


def _device():
    from plexus.layers.layer import current_call_device  # noqa: (layers import this module)
    device = current_call_device()
    return device if device is not None else torch.get_default_device()


def _generator(seed, device):
    """A torch generator for `seed` (None: torch's global one)."""
    if seed is None or device.type == "meta":
        return None
    if isinstance(seed, SeedGenerator):
        value = seed._torch_seed()
    elif isinstance(seed, int) and not isinstance(seed, bool):
        value = seed % (2 ** 63)
    else:
        raise ValueError(
            "Argument `seed` must be either an integer or an instance of `SeedGenerator`. "
            f"Received: seed={seed!r} (of type {type(seed).__name__})")
    gen = torch.Generator(device=device)
    gen.manual_seed(value)
    return gen


def _shape(shape, fn):
    try:
        out = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"plexus.random.{fn}: `shape` must be a tuple of integers; received {shape!r}. "
            "Inside a layer, take sizes from the input tensor (`x.shape`).") from None
    if any(d < 0 for d in out):
        raise ValueError(f"plexus.random.{fn}: negative size in shape {out}.")
    return out


def _float_dtype(dtype, fn):
    name = standardize_dtype(dtype or config.floatx())
    if not name.startswith(("float", "bfloat")):
        raise ValueError(
            f"plexus.random.{fn} draws floating values; `dtype` must be a floating dtype such "
            f"as 'float32'. Received: dtype={dtype!r}")
    return torch_dtype(name)


def _tensor(x, device, dtype=None, fn=None):
    if isinstance(x, KerasTensor):
        raise TypeError(
            f"plexus.random.{fn} takes tensors with values; received the symbolic tensor "
            f"{x.name!r} (shape {x.shape}). In a functional model, draw inside a layer's "
            "`call` (or use layers such as Dropout and GaussianNoise).")
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype or x.dtype)
    return torch.as_tensor(x, device=device, dtype=dtype)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples from a normal distribution.

    Args:
        shape: the shape of the result.
        mean, stddev: the distribution's mean and standard deviation.
        dtype: a floating dtype; `plexus.config.floatx()` by default.
        seed: None (the global stream), an integer (the same values each call) or a
            `SeedGenerator` (a reproducible sequence).
    """
    shape, dtype, device = _shape(shape, "normal"), _float_dtype(dtype, "normal"), _device()
    out = torch.empty(shape, dtype=dtype, device=device)
    return out.normal_(mean, stddev, generator=_generator(seed, device))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples from a uniform distribution on `[minval, maxval)` (arguments as `normal`)."""
    shape, dtype, device = _shape(shape, "uniform"), _float_dtype(dtype, "uniform"), _device()
    out = torch.empty(shape, dtype=dtype, device=device)
    return out.uniform_(minval, maxval, generator=_generator(seed, device))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples from a normal distribution whose values beyond two standard deviations from the
    mean are drawn again (arguments as `normal`)."""
    shape = _shape(shape, "truncated_normal")
    dtype, device = _float_dtype(dtype, "truncated_normal"), _device()
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    out = torch.empty(shape, dtype=work, device=device)
    torch.nn.init.trunc_normal_(out, 0.0, 1.0, -2.0, 2.0, generator=_generator(seed, device))
    return (out * stddev + mean).to(dtype)


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Random integers in `[minval, maxval)`.

    Args:
        shape: the shape of the result.
        minval, maxval: the range (`maxval` excluded).
        dtype: an integer dtype (`"int32"` by default).
        seed: as for `normal`.
    """
    shape, device = _shape(shape, "randint"), _device()
    name = standardize_dtype(dtype)
    if not name.startswith(("int", "uint")):
        raise ValueError(f"plexus.random.randint: `dtype` must be an integer dtype; received "
                         f"{dtype!r}.")
    if int(maxval) <= int(minval):
        raise ValueError(f"plexus.random.randint: maxval ({maxval}) must be greater than minval "
                         f"({minval}).")
    return torch.randint(int(minval), int(maxval), shape, dtype=torch_dtype(name), device=device,
                         generator=_generator(seed, device))


def categorical(logits, num_samples, dtype="int32", seed=None):
    """Class ids drawn from the categorical distributions given by `logits`.

    Args:
        logits: a 2D tensor `(batch_size, num_classes)` of unnormalized log-probabilities.
        num_samples: how many ids to draw for each row.
        dtype: the integer dtype of the result (`"int32"` by default).
        seed: as for `normal`.

    Returns:
        A tensor of shape `(batch_size, num_samples)`.
    """
    device = logits.device if isinstance(logits, torch.Tensor) else _device()
    logits = _tensor(logits, device, fn="categorical")
    if logits.ndim != 2:
        raise ValueError(
            "plexus.random.categorical: `logits` must have rank 2 (batch_size, num_classes); "
            f"received shape {tuple(logits.shape)}.")
    probs = torch.softmax(logits.float(), dim=-1)
    ids = torch.multinomial(probs, int(num_samples), replacement=True,
                            generator=_generator(seed, device))
    return ids.to(torch_dtype(dtype))


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Sets a fraction `rate` of the entries of `inputs` to 0 and scales the others by
    `1 / (1 - rate)`.

    Args:
        inputs: a tensor.
        rate: the fraction of entries dropped, in `[0, 1]`.
        noise_shape: the shape of the keep/drop mask, broadcast over `inputs` (None entries take
            the input's size), e.g. `(batch, 1, features)` to drop the same features at every
            time step.
        seed: as for `normal`.
    """
    x = inputs if isinstance(inputs, torch.Tensor) else _tensor(inputs, _device(), fn="dropout")
    rate = float(rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"plexus.random.dropout: `rate` must be in [0, 1]; received {rate}.")
    if rate == 1.0:
        return torch.zeros_like(x)
    if rate == 0.0:
        return x
    unseeded = seed is None or (isinstance(seed, SeedGenerator) and seed._initial_seed is None)
    if noise_shape is None and unseeded:
        return torch.nn.functional.dropout(x, p=rate, training=True)  # torch's fused kernel
    shape = x.shape if noise_shape is None else tuple(
        x.shape[i] if d is None else int(d) for i, d in enumerate(noise_shape))
    keep = torch.empty(shape, dtype=x.dtype, device=x.device)
    keep.bernoulli_(1.0 - rate, generator=_generator(seed, x.device))
    return x * keep / (1.0 - rate)


def shuffle(x, axis=0, seed=None):
    """`x` with its entries along `axis` in a random order (the same order for every slice)."""
    x = x if isinstance(x, torch.Tensor) else _tensor(x, _device(), fn="shuffle")
    axis = axis % x.ndim if x.ndim else 0
    perm = torch.randperm(x.shape[axis], generator=_generator(seed, x.device), device=x.device)
    return x.index_select(axis, perm)


def _broadcast_param(value, shape, device, fn, what):
    t = _tensor(value, device, torch.float32, fn=fn)
    try:
        return torch.broadcast_to(t, shape)
    except RuntimeError:
        raise ValueError(
            f"plexus.random.{fn}: `{what}` of shape {tuple(t.shape)} does not broadcast to the "
            f"requested shape {shape}.") from None


def gamma(shape, alpha, dtype=None, seed=None):
    """Samples from Gamma distributions of concentration `alpha` (and rate 1)."""
    shape, dtype, device = _shape(shape, "gamma"), _float_dtype(dtype, "gamma"), _device()
    alpha = _broadcast_param(alpha, shape, device, "gamma", "alpha").contiguous()
    return torch._standard_gamma(alpha, generator=_generator(seed, device)).to(dtype)


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Samples from binomial distributions: successes among `counts` trials of probability
    `probabilities` (numbers or arrays broadcast to `shape`)."""
    shape, dtype, device = _shape(shape, "binomial"), _float_dtype(dtype, "binomial"), _device()
    counts = _broadcast_param(counts, shape, device, "binomial", "counts").contiguous()
    probs = _broadcast_param(probabilities, shape, device, "binomial", "probabilities")
    return torch.binomial(counts, probs.contiguous(), generator=_generator(seed, device)).to(dtype)


def beta(shape, alpha, beta, dtype=None, seed=None):
    """Samples from Beta distributions of concentrations `alpha` and `beta`."""
    shape, dtype, device = _shape(shape, "beta"), _float_dtype(dtype, "beta"), _device()
    a = _broadcast_param(alpha, shape, device, "beta", "alpha").contiguous()
    b = _broadcast_param(beta, shape, device, "beta", "beta").contiguous()
    gen = _generator(seed, device)
    x = torch._standard_gamma(a, generator=gen)
    y = torch._standard_gamma(b, generator=gen)
    return (x / (x + y)).to(dtype)


__all__ = ["SeedGenerator", "beta", "binomial", "categorical", "dropout", "gamma", "normal",
           "randint", "shuffle", "truncated_normal", "uniform"]
