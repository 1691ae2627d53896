"""Weight regularizers: penalties on weights added to the training loss."""
import math

import torch

from plexus import _catalog as catalog


def _penalty_factor(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
            or math.isinf(value) or value < 0:
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float; "
                         f"received {name}={value!r}.")
    return float(value)


class Regularizer:
    """Base class: `regularizer(weight)` returns a scalar penalty."""

    def __call__(self, x):
        return 0.0

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    """`l1 * sum(|x|) + l2 * sum(x**2)`."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _penalty_factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _penalty_factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x):
        out = 0.0
        if self.l1:
            out = out + self.l1 * torch.sum(torch.abs(x))
        if self.l2:
            out = out + self.l2 * torch.sum(torch.square(x))
        return out

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """`l1 * sum(|x|)`."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """`l2 * sum(x**2)`."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (`mode="rows"`) or columns (`"columns"`) of a 2-D weight towards
    orthogonality: `factor / 2` times the mean absolute cosine between distinct pairs.

    Args:
        factor: the penalty's weight (0.01).
        mode: `"rows"` or `"columns"`.
    """

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _penalty_factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns'; "
                             f"received {mode!r}.")
        self.mode = mode

    def __call__(self, x):
        if x.dim() != 2:
            raise ValueError(f"OrthogonalRegularizer works on 2-D weights; received a weight "
                             f"of shape {tuple(x.shape)}.")
        dim = 1 if self.mode == "rows" else 0
        unit = x / torch.clamp(torch.linalg.vector_norm(x, dim=dim, keepdim=True), min=1e-7)
        product = unit @ unit.T if self.mode == "rows" else unit.T @ unit
        size = product.shape[0]
        off_diagonal = product * (1.0 - torch.eye(size, dtype=x.dtype, device=x.device))
        return self.factor * 0.5 * torch.sum(torch.abs(off_diagonal)) / (size * (size - 1) / 2)

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer
_BY_NAME = {"l1": L1, "l2": L2, "l1l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2,
            "OrthogonalRegularizer": OrthogonalRegularizer,
            "orthogonal_regularizer": OrthogonalRegularizer, "Regularizer": Regularizer,
            "regularizer": Regularizer}


def get(identifier):
    """A regularizer from a name, a config dict, a class, an object or a callable."""
    if identifier == "l1_l2":  # (Keras 2's name: both penalties at 0.01)
        return L1L2(l1=0.01, l2=0.01)
    return catalog.get("regularizer", identifier, _BY_NAME, Regularizer, deserialize)


def serialize(regularizer):
    """Keras's description of a regularizer: `{"module", "class_name", "config", ...}`."""
    return catalog.serialize(regularizer, "keras.regularizers")


def deserialize(config, custom_objects=None):
    """The regularizer a config (`{"class_name": ..., "config": {...}}`) describes."""
    return catalog.deserialize("regularizer", config, _BY_NAME, get, custom_objects)
