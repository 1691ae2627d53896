"""Dtype policies: the dtype a layer computes in and the dtype it keeps its weights in."""
from plexus import backend
from plexus.graph.tensor import standardize_dtype

_MIXED = {"mixed_float16": ("float16", "float32"), "mixed_bfloat16": ("bfloat16", "float32")}
_FLOAT_NAMES = ("float32", "float16", "bfloat16", "float64")
_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy", "Policy")


class DTypePolicy:
    """A dtype policy: the dtype a layer computes in and the dtype of its weights.

    Pass one (or its name) as the `dtype` argument of any layer, or set it for every layer
    created afterwards with `plexus.mixed_precision.set_global_policy`.

    Args:
        name: `"float32"`, `"float16"`, `"bfloat16"`, `"float64"` (weights and computations in
            that dtype), `"mixed_float16"` or `"mixed_bfloat16"` (float32 weights, computations
            in float16 / bfloat16), or another dtype name such as `"int32"` for layers that work
            on integers. `None` means the global policy.

    Example:

        policy = plexus.mixed_precision.Policy("mixed_bfloat16")
        policy.compute_dtype, policy.variable_dtype   # ('bfloat16', 'float32')
        layer = plexus.layers.Dense(10, dtype=policy)
    """

    def __init__(self, name=None):
        if name is None:
            name = global_policy().name
        self._name = name
        self._compute_dtype, self._variable_dtype = _parse(name)

    @property
    def name(self):
        """The policy's name, as given (`"mixed_float16"`)."""
        return self._name

    @property
    def compute_dtype(self):
        """The dtype layers compute in: their floating inputs are cast to it."""
        return self._compute_dtype

    @property
    def variable_dtype(self):
        """The dtype layers create their weights in."""
        return self._variable_dtype

    @property
    def quantization_mode(self):
        """Always None: plexus has no quantized policies."""
        return None

    @property
    def is_mixed(self):
        """Whether computations and weights use different dtypes."""
        return self._compute_dtype != self._variable_dtype

    def get_config(self):
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other._name == self._name

    def __hash__(self):
        return hash(("DTypePolicy", self._name))


class FloatDTypePolicy(DTypePolicy):
    """Another name of `DTypePolicy` (as in Keras 3)."""


Policy = DTypePolicy


def _parse(name):
    """(compute dtype, variable dtype) of a policy name; ValueError for an unknown name."""
    if not isinstance(name, str):
        raise TypeError(
            f"A dtype policy name must be a string such as 'mixed_float16'; received {name!r} "
            f"(of type {type(name).__name__}).")
    if name in _MIXED:
        return _MIXED[name]
    try:
        dtype = standardize_dtype(name)
    except ValueError:
        dtype = None
    if dtype is None or dtype.startswith("complex"):
        raise ValueError(
            f"Unknown dtype policy {name!r}. Valid policies are "
            f"{', '.join(repr(n) for n in _FLOAT_NAMES + tuple(_MIXED))}, or an integer dtype "
            "name such as 'int32' for layers that work on integers.")
    return dtype, dtype


def set_global_policy(policy):
    """Set the policy of every layer created from now on without an explicit `dtype`.

    Args:
        policy: a policy name (`"mixed_float16"`, `"mixed_bfloat16"`, `"float32"`, ...) or a
            `DTypePolicy`.

    `plexus.clear_session()` resets it to `"float32"`.
    """
    if isinstance(policy, str):
        policy = DTypePolicy(policy)
    elif not isinstance(policy, DTypePolicy):
        raise ValueError(
            "set_global_policy expects a policy name such as 'mixed_float16' or a DTypePolicy; "
            f"received {policy!r} (of type {type(policy).__name__}).")
    backend.session().dtype_policy = None if policy.name == "float32" else policy


def global_policy():
    """The current global policy (`<DTypePolicy "float32">` unless one was set)."""
    policy = backend.session().dtype_policy
    return policy if policy is not None else DTypePolicy("float32")


set_dtype_policy = set_global_policy
dtype_policy = global_policy


def get(identifier):
    """A `DTypePolicy` from a name, a policy, its serialized dict, a torch/NumPy dtype, or None
    (the global policy)."""
    if identifier is None:
        return global_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return DTypePolicy(identifier)
    try:
        name = standardize_dtype(identifier)
    except ValueError:
        name = None
    if name is None or isinstance(identifier, (bool, int, float)):
        raise ValueError(
            f"Cannot use {identifier!r} as a dtype: pass a policy name such as 'float32' or "
            "'mixed_bfloat16', a DTypePolicy, or a torch dtype.")
    return DTypePolicy(name)


def serialize(policy):
    """The dict a `.keras` file holds for `policy` (`{"class_name": "DTypePolicy", ...}`)."""
    policy = get(policy)
    return {"module": "keras", "class_name": "DTypePolicy", "config": policy.get_config(),
            "registered_name": None}


def deserialize(config, custom_objects=None):
    """The `DTypePolicy` of a serialized dict (as `serialize` writes it)."""
    class_name = config.get("class_name")
    inner = config.get("config")
    if class_name not in _POLICY_CLASSES or not isinstance(inner, dict):
        raise ValueError(
            f"Cannot read a dtype policy from {config!r}: expected "
            "{'class_name': 'DTypePolicy', 'config': {'name': ...}}. Quantized policies are not "
            "supported by plexus.")
    return DTypePolicy(inner.get("name", "float32"))


__all__ = ["DTypePolicy", "FloatDTypePolicy", "Policy", "set_global_policy", "global_policy",
           "set_dtype_policy", "dtype_policy", "get", "serialize", "deserialize"]
