"""Weight regularizers: penalties on weights added to the training loss."""
import torch


class Regularizer:
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
        self.l1, self.l2 = float(l1), float(l2)

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
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1_l2(l1=0.01, l2=0.01):
    return L1L2(l1=l1, l2=l2)


l1, l2 = L1, L2
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    """A regularizer from a name, a serialized dict, an instance, a callable or None; names
    and dicts of your own registered classes resolve too."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, (str, dict)) and _builtin_name(identifier) not in _BY_NAME:
        from plexus.saving.registry import custom_object  # noqa: (registered classes)
        found = custom_object(identifier)
        if found is not None:
            return found
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"Unknown regularizer {identifier!r}. Known: l1, l2, l1_l2.")
        return _BY_NAME[identifier]() if identifier != "l1_l2" else l1_l2()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"Unknown regularizer class {identifier['class_name']!r}.")
        return cls.from_config(identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise TypeError(f"Cannot interpret {identifier!r} as a regularizer.")


def _builtin_name(identifier):
    return identifier if isinstance(identifier, str) else identifier.get("class_name")
