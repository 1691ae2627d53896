"""`InputSpec`: what a layer accepts (rank, dtype, sizes), checked when the layer is called."""
from plexus.graph import tree
from plexus.graph.tensor import standardize_dtype


class InputSpec:
    """The rank, dtype and sizes a layer's inputs must have.

    Set `self.input_spec` (one spec, or a list for several inputs) in a layer's `__init__` or
    `build`; every call then checks its inputs before building or computing, and a mismatch is
    a `ValueError` naming the layer, the input and both shapes.

    Args:
        dtype: the expected dtype.
        shape: the expected shape, batch included (None for any size).
        ndim, max_ndim, min_ndim: the expected rank, or bounds on it.
        axes: `{axis: size}` sizes some axes must have (`{-1: 64}`).
        allow_last_axis_squeeze: whether a last axis of size 1 may be missing or extra.
        name: the input's name, when inputs come as a dict.
        optional: whether the input may be None.

    Example:

        class Flat28(plexus.layers.Layer):
            def __init__(self):
                super().__init__()
                self.input_spec = plexus.layers.InputSpec(shape=(None, 28, 28, 1),
                                                          allow_last_axis_squeeze=True)
    """

    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None,
                 axes=None, allow_last_axis_squeeze=False, name=None, optional=False):
        self.dtype = standardize_dtype(dtype) if dtype is not None else None
        if shape is not None:
            self.shape = tuple(None if d is None else int(d) for d in shape)
            self.ndim = len(self.shape)
        else:
            self.shape, self.ndim = None, ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.name, self.optional = name, optional
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        try:
            axes = axes or {}
            self.axes = {int(k): axes[k] for k in axes}
        except (ValueError, TypeError):
            raise TypeError(f"Argument `axes` must be a dict with integer keys. Received: "
                            f"axes={axes!r}") from None
        top = self.ndim if self.ndim is not None else self.max_ndim
        if self.axes and top is not None and max(self.axes) > top - 1:
            raise ValueError(f"Axis {max(self.axes)} is greater than the maximum allowed value: "
                             f"{top - 1}")

    def __repr__(self):
        parts = [f"{k}={getattr(self, k)}" for k in
                 ("dtype", "shape", "ndim", "max_ndim", "min_ndim", "axes") if getattr(self, k)]
        return f"InputSpec({', '.join(parts)})"

    def get_config(self):
        return {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim,
                "max_ndim": self.max_ndim, "min_ndim": self.min_ndim, "axes": self.axes,
                "optional": self.optional}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def assert_input_compatibility(input_spec, inputs, layer_name):
    """Raise a ValueError when `inputs` do not match `input_spec` (one spec or a list)."""
    if not input_spec:
        return
    specs = tree.flatten(input_spec)
    if isinstance(inputs, dict):
        names = [spec.name if spec is not None else None for spec in specs]
        if all(names):
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(
                    f'Missing data for input "{missing[0]}". You passed a data dictionary with '
                    f"keys {list(inputs)}. Expected the following keys: {names}")
            inputs = [inputs[n] for n in names]
    flat = tree.flatten(inputs)
    if len(flat) != len(specs):
        raise ValueError(
            f'Layer "{layer_name}" expects {len(specs)} input(s), but it received {len(flat)} '
            "input tensors.")
    for i, (x, spec) in enumerate(zip(flat, specs)):
        if spec is None or (x is None and spec.optional):
            continue
        if not hasattr(x, "shape"):
            raise ValueError(
                f"Inputs to a layer should be tensors. Got {x!r} (of type {type(x).__name__}) "
                f"as input for layer '{layer_name}'.")
        _check_one(spec, tuple(x.shape), x.dtype, i, layer_name)


def _check_one(spec, shape, dtype, index, layer_name):
    def fail(what):
        raise ValueError(
            f"Input {index} with name '{spec.name}' of layer '{layer_name}' is incompatible "
            f"with the layer: {what}")

    ndim = len(shape)
    if spec.ndim is not None and not spec.allow_last_axis_squeeze and ndim != spec.ndim:
        fail(f"expected ndim={spec.ndim}, found ndim={ndim}. Full shape received: {shape}")
    if spec.max_ndim is not None and ndim > spec.max_ndim:
        fail(f"expected max_ndim={spec.max_ndim}, found ndim={ndim}")
    if spec.min_ndim is not None and ndim < spec.min_ndim:
        fail(f"expected min_ndim={spec.min_ndim}, found ndim={ndim}. Full shape received: "
             f"{shape}")
    if spec.dtype is not None and standardize_dtype(dtype) != spec.dtype:
        fail(f"expected dtype={spec.dtype}, found dtype={standardize_dtype(dtype)}")
    for axis, value in spec.axes.items():
        if value is None:
            continue
        if not -ndim <= axis < ndim:
            fail(f"expected axis {axis} of input shape to have value {value}, but received "
                 f"input with shape {shape}")
        if shape[axis] not in (value, None):
            fail(f"expected axis {axis} of input shape to have value {value}, but received "
                 f"input with shape {shape}")
    if spec.shape is not None:
        expected, got = spec.shape, shape
        if spec.allow_last_axis_squeeze:
            got = got[:-1] if got and got[-1] == 1 else got
            expected = expected[:-1] if expected and expected[-1] == 1 else expected
        for want, have in zip(expected, got):
            if want is not None and have is not None and want != have:
                fail(f"expected shape={spec.shape}, found shape={shape}")
