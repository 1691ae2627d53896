"""Weight initializers with Keras's names and defaults.

Every initializer is called with a Keras-layout shape (Dense kernel `(in, units)`, Conv2D kernel
`(kh, kw, in, out)`) and returns a float32 torch tensor of that shape, drawn from torch's global
generator, so `plexus.utils.set_random_seed` makes weights reproducible.
"""
import math

import torch


def _fans(shape):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: `init(shape, dtype=None)` returns a tensor of that shape."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return torch.zeros(tuple(shape), dtype=dtype or torch.float32)


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return torch.ones(tuple(shape), dtype=dtype or torch.float32)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return torch.full(tuple(shape), float(self.value), dtype=dtype or torch.float32)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        return torch.randn(tuple(shape), dtype=dtype or torch.float32) * self.stddev + self.mean

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype=None):
        t = torch.rand(tuple(shape), dtype=dtype or torch.float32)
        return t * (self.maxval - self.minval) + self.minval

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class TruncatedNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        t = torch.empty(tuple(shape), dtype=dtype or torch.float32)
        torch.nn.init.trunc_normal_(t, self.mean, self.stddev, self.mean - 2 * self.stddev,
                                    self.mean + 2 * self.stddev)
        return t

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling mode must be 'fan_in', 'fan_out' or 'fan_avg'; got {mode!r}.")
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "VarianceScaling distribution must be 'truncated_normal', 'untruncated_normal' "
                f"or 'uniform'; got {distribution!r}."
            )
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        dtype = dtype or torch.float32
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            return torch.empty(tuple(shape), dtype=dtype).uniform_(-limit, limit)
        if self.distribution == "untruncated_normal":
            return torch.randn(tuple(shape), dtype=dtype) * math.sqrt(scale)
        stddev = math.sqrt(scale) / 0.87962566103423978
        t = torch.empty(tuple(shape), dtype=dtype)
        torch.nn.init.trunc_normal_(t, 0.0, stddev, -2 * stddev, 2 * stddev)
        return t

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


class GlorotUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


class HeUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class HeNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


class LecunUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class LecunNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


class Orthogonal(Initializer):
    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"The Orthogonal initializer needs a shape of rank 2 or more; got {shape}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = torch.randn(max(rows, cols), min(rows, cols), dtype=torch.float32)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).to(dtype or torch.float32)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(f"The Identity initializer needs a 2D shape; got {tuple(shape)}.")
        return self.gain * torch.eye(*shape, dtype=dtype or torch.float32)

    def get_config(self):
        return {"gain": self.gain}


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
    "identity": Identity, "uniform": RandomUniform, "normal": RandomNormal,
}
_BY_CLASS = {cls.__name__: cls for cls in _BY_NAME.values()}
_BY_CLASS.update({"IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal})
# Keras's short aliases.
zeros, ones, constant = Zeros, Ones, Constant
glorot_uniform, glorot_normal, he_uniform, he_normal = GlorotUniform, GlorotNormal, HeUniform, HeNormal
lecun_uniform, lecun_normal, orthogonal = LecunUniform, LecunNormal, Orthogonal
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal


def get(identifier):
    """Resolve an initializer given as a name, a config dict, a class, an instance or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, (str, dict)):
        name = identifier if isinstance(identifier, str) else identifier.get("class_name")
        if name not in _BY_NAME and name not in _BY_CLASS:
            from plexus.saving.registry import custom_object  # noqa: (registered classes)
            found = custom_object(identifier)
            if found is not None:
                return found
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown initializer {identifier!r}. Known initializers: {', '.join(sorted(_BY_NAME))}."
            )
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_CLASS.get(identifier["class_name"]) or _BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"Unknown initializer class {identifier['class_name']!r}.")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"Cannot interpret {identifier!r} as an initializer.")


def serialize(init):
    if init is None:
        return None
    if isinstance(init, Initializer):
        return {"module": "keras.initializers", "class_name": type(init).__name__,
                "config": init.get_config(), "registered_name": None}
    return getattr(init, "__name__", str(init))
