"""`Layer`: a `torch.nn.Module` with Keras's `build`/`call` contract and symbolic calls."""
import contextlib
import contextvars
import functools
import inspect
import threading
import weakref

import numpy as np
import torch
from torch import nn
from torch._subclasses.fake_tensor import unset_fake_temporarily
from torch.overrides import TorchFunctionMode

from plexus import backend, constraints, initializers, regularizers
from plexus.graph import tree
from plexus.graph.functional import call_accepts
from plexus.graph.node import Node
from plexus.graph.tensor import KerasTensor, standardize_dtype, torch_dtype
from plexus.layers import tracking
from plexus.layers.input_spec import assert_input_compatibility
from plexus.mixed_precision import policy as _policy
from plexus.variables import Variable, Weight, _identity, to_numpy

_DYNAMIC_SIZES = (83, 89)  # stand-ins for unknown sizes when a layer's output shape is traced
# Whether any layer computes in a floating dtype other than float32. Until one does, `forward`
# skips the dtype checks of mixed precision: float32 layers given float32 data cast nothing.
_CASTS_IN_USE = [False]
def _to_tensor(x):
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "USO":  # text stays NumPy: torch has no string tensors
            return x
        t = torch.from_numpy(x)
        return t.to(torch_dtype(None)) if t.dtype == torch.float64 else t
    if isinstance(x, (float, int, np.generic)) and not isinstance(x, bool):
        return torch.as_tensor(x, dtype=torch.float32 if isinstance(x, float) else None)
    return x


def _data_device(args):
    """The device of a call's first tensor argument (None if it has none)."""
    x = args[0] if args else None
    if isinstance(x, torch.Tensor):
        return x.device
    for t in tree.flatten(x):
        if isinstance(t, torch.Tensor):
            return t.device
    return None


def text_refused(layer):
    """The TypeError for text given to `layer`, which computes on numbers."""
    return TypeError(
        f"Layer {layer.name!r} ({type(layer).__name__}) takes numbers, but received strings. "
        "Turn text into numbers first, e.g. with StringLookup, Hashing or TextVectorization "
        "in front of this layer.")


def _refuse_text(layer, inputs):
    """`text_refused` when the inputs hold text (string arrays, string symbolic tensors)."""
    for t in tree.flatten(inputs):
        if (isinstance(t, np.ndarray) and t.dtype.kind in "USO") or isinstance(t, str) or (
                isinstance(t, KerasTensor) and t.dtype == "string"):
            raise text_refused(layer)


def _shape_of(x):
    return tuple(x.shape)


_FIRST_ARGS = {}
_NO_MODE = contextlib.nullcontext()
_DEVICE_MOVES = (torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.cuda)


class _MetaMixing(TorchFunctionMode):
    """While a layer's output shape is traced on meta tensors: an op mixing meta tensors with
    real ones (the weights of sublayers, constants made in `call`) sees meta copies of the
    real ones, so that the trace needs no data. Ops on real tensors alone (reading the values
    of a shape-like constant) run as usual."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _DEVICE_MOVES and args and isinstance(args[0], torch.Tensor) \
                and args[0].is_meta:  # moving shape-only data to a device keeps it shape-only
            dtype = next((a for a in tuple(args[1:]) + tuple(kwargs.values())
                          if isinstance(a, torch.dtype)), None)
            return args[0] if dtype is None else args[0].to(dtype)
        flat = tree.flatten((args, kwargs))
        if any(isinstance(t, torch.Tensor) and t.is_meta for t in flat) and \
                any(isinstance(t, torch.Tensor) and not t.is_meta for t in flat):
            def to_meta(t):  # (0-d tensors mix with any device, as Python numbers do)
                return t.detach().to("meta") if isinstance(t, torch.Tensor) and t.ndim \
                    and not t.is_meta else t
            args, kwargs = tree.map_structure(to_meta, (args, kwargs))
        return func(*args, **kwargs)


def _first_call_arg(cls):
    """The name of the first argument of `cls.call` (its inputs), as Keras finds it when a
    layer is called with keyword arguments only."""
    try:
        return _FIRST_ARGS[cls]
    except KeyError:
        pass
    name = None
    try:
        params = list(inspect.signature(cls.call).parameters.values())[1:]
    except (TypeError, ValueError):
        params = []
    if params and params[0].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                     inspect.Parameter.POSITIONAL_OR_KEYWORD):
        name = params[0].name
    _FIRST_ARGS[cls] = name
    return name


class Layer(nn.Module):
    """Base class of every layer: a `torch.nn.Module` you call like a function.

    Subclasses create weights in `build(input_shape)` with `add_weight` and compute in
    `call(inputs)`. Called on symbolic tensors (from `plexus.Input`), a layer builds itself, works
    out its output shape and records the call as a node of the graph; called on data (a torch
    tensor or a NumPy array), it computes.

    Layers start in inference mode (`layer.training` is False), as Keras layers behave when called
    directly; `fit` switches the model to training mode and back.

    Args:
        name: the layer's name; unique within a model. Defaults to the snake-case class name,
            numbered (`dense`, `dense_1`, ...).
        trainable: whether `fit` updates the layer's weights.
        dtype: a dtype policy or its name: `"float32"` (the default, unless
            `plexus.mixed_precision.set_global_policy` set another), `"mixed_bfloat16"` (float32
            weights, bfloat16 computations), ... Floating inputs are cast to the compute dtype.
        input_shape: for the first layer of a `Sequential` model, the shape of one sample.
    """

    _accepts_strings = False  # whether `call` takes text (NumPy arrays of str/bytes)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if callable(build) and not getattr(build, "_marks_built", False):
            # As in Keras, a layer is built once its `build` returns, even when that `build`
            # (called directly, with arguments of its own) does not call `super().build()`.
            @functools.wraps(build)
            def build_then_mark(self, *args, **kw):
                out = build(self, *args, **kw)
                self.built = True
                return out

            build_then_mark._marks_built = True
            cls.build = build_then_mark

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        # Kept so that layers without their own get_config still serialize their arguments.
        object.__setattr__(obj, "_init_call", (args, kwargs))
        return obj

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None,
                 batch_input_shape=None, batch_size=None, input_dim=None,
                 activity_regularizer=None, **kwargs):
        autocast = kwargs.pop("autocast", True)
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument(s) "
                f"{', '.join(sorted(kwargs))}. Check the spelling against the layer's docstring."
            )
        super().__init__()
        prefix = type(self).__dict__.get("_name_prefix") or backend.to_snake_case(type(self).__name__)
        self.name = name or backend.unique_name(prefix)
        if not isinstance(self.name, str):
            raise TypeError(f"A layer name must be a string; received {self.name!r}.")
        if not autocast:  # inputs and weights keep their dtypes under any policy
            self.__dict__.update(_autocast=False, _autocast_weights=False)
        self.dtype_policy = dtype
        self._trainable = bool(trainable)
        self.built = False
        self._inbound_nodes = []
        self._weight_table = []
        self._losses = []
        from plexus import regularizers  # noqa: avoid import cycle at load time
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.training = False
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size,) + tuple(input_shape)
        self._batch_input_shape = tuple(batch_input_shape) if batch_input_shape else None

    input_spec = None  # an InputSpec (or a list of them) checked on every call

    # ------------------------------------------------------------------ dtypes
    # Whether floating inputs are cast to the compute dtype on entry, and whether weights are
    # cast to it for the computation. Normalization layers and Embedding turn these off and
    # compute in float32 (`_cast_outputs`: their outputs are then cast to the compute dtype).
    _autocast = True
    _autocast_weights = True
    _cast_outputs = False

    @property
    def dtype_policy(self):
        """The layer's `DTypePolicy` (see `plexus.mixed_precision`)."""
        return self._dtype_policy

    @dtype_policy.setter
    def dtype_policy(self, value):
        policy = _policy.get(value)
        d = self.__dict__
        d["_dtype_policy"] = policy
        compute = torch_dtype(policy.compute_dtype)
        floating = compute.is_floating_point
        d["_compute_torch_dtype"] = compute
        d["_cast_inputs_to"] = compute if (floating and self._autocast) else None
        d["_mixed"] = floating and self._autocast_weights and policy.is_mixed
        d["_output_cast"] = compute if (floating and self._cast_outputs) else None
        if floating and compute is not torch.float32:
            _CASTS_IN_USE[0] = True

    @property
    def dtype(self):
        """The dtype of the layer's weights (the policy's variable dtype)."""
        return self._dtype_policy.variable_dtype

    @dtype.setter
    def dtype(self, value):
        self.dtype_policy = value

    @property
    def compute_dtype(self):
        """The dtype the layer computes in and outputs."""
        return self._dtype_policy.compute_dtype

    @property
    def variable_dtype(self):
        """The dtype of the layer's weights."""
        return self._dtype_policy.variable_dtype

    # ------------------------------------------------------------------ weights

    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True,
                   regularizer=None, constraint=None, name=None, layout=None, autocast=True,
                   aggregation="none", overwrite_with_gradient=False, **kwargs):
        """Create a weight (a `plexus.Variable`), register it on the layer and return it.

        Trainable floating weights are registered as torch parameters, the others (moving
        statistics, counters) as torch buffers.

        Args:
            shape: the weight's shape in Keras layout; `()` (a scalar) by default.
            initializer: a name (`"zeros"`), an initializer instance or a callable
                `(shape, dtype) -> tensor`; glorot-uniform by default for floats, zeros otherwise.
            dtype: a dtype name or a torch/NumPy dtype; the layer's variable dtype by default.
            trainable: whether gradients update it (`False` for moving statistics).
            autocast: whether a mixed-precision layer casts it to its compute dtype in `call`.
            regularizer: a penalty on the weight, added to `layer.losses`.
            constraint: applied to the weight after every optimizer update.
            aggregation: how multi-replica custom loops should combine it (recorded).
            overwrite_with_gradient: the optimizer replaces the weight by its gradient instead
                of applying its rule (for values computed in the backward pass).
            name: the weight's name (`"kernel"`); also its attribute when it is an identifier.
            layout: a pair of functions `(to_torch, to_keras)` when the layer stores the weight
                in another layout than Keras's (a conv kernel in torch's `(out, in, kh, kw)`).
        """
        if isinstance(shape, str):  # Keras 2 order: add_weight(name, shape, ...)
            shape, name = name if name is not None else kwargs.pop("shape", None), shape
        kwargs.pop("synchronization", None)  # TensorFlow's; nothing to synchronize on torch
        if kwargs:
            raise TypeError(
                f"Layer {self.name!r}: add_weight() got unexpected keyword argument(s) "
                f"{', '.join(kwargs)}.")
        shape = tuple(int(d) for d in (shape or ()))
        dtype = standardize_dtype(dtype or self.dtype)
        from plexus.saving.limits import check_weight_size  # noqa: a no-op unless loading a file
        check_weight_size(self.name, name, shape, torch_dtype(dtype).itemsize)
        if initializer is None:
            initializer = "glorot_uniform" if "float" in dtype else "zeros"
        init = initializers.get(initializer)
        value = init(shape, dtype=torch_dtype(dtype))
        value = torch.as_tensor(value, dtype=torch_dtype(dtype))
        if tuple(value.shape) != shape:
            raise ValueError(
                f"Layer {self.name!r}: the initializer of weight {name!r} returned shape "
                f"{tuple(value.shape)}, expected {shape}."
            )
        to_torch, to_keras = layout or (_identity, _identity)
        value = to_torch(value).contiguous()
        device = next((p.device for p in self._own_tensors()), None)
        if device is not None:
            value = value.to(device)
        name = name or backend.unique_name("variable")  # as Keras: variable, variable_1, ...
        attr = name if name.isidentifier() else "variable"
        base, i = attr, 1
        while (attr in self._parameters or attr in self.__dict__ or attr in self._buffers
               or attr in self._modules or hasattr(type(self), attr)):  # (a class attribute wins)
            attr, i = f"{base}_{i}", i + 1
        spec = Weight(attr, name, shape, to_keras, to_torch, trainable,
                      regularizers.get(regularizer), constraints.get(constraint),
                      path=tracking.variable_path(self, name))
        spec.autocast, spec.overwrite_with_gradient = bool(autocast), bool(overwrite_with_gradient)
        from plexus.variables import _check_aggregation
        spec.aggregation = _check_aggregation(aggregation)
        var = Variable._from_tensor(value, spec)
        if var.requires_grad and not self._trainable:
            var.requires_grad_(False)
        tracking.register_variable(self, attr, var)
        self._weight_table.append(spec)
        return var

    def add_variable(self, shape, initializer, dtype=None, trainable=True, autocast=True,
                     regularizer=None, constraint=None, name=None):
        """`add_weight` under Keras 3's other name."""
        return self.add_weight(shape=shape, initializer=initializer, dtype=dtype,
                               trainable=trainable, autocast=autocast, regularizer=regularizer,
                               constraint=constraint, name=name)

    def _own_tensors(self):
        yield from (p for p in self._parameters.values() if p is not None)
        yield from (b for b in self._buffers.values() if b is not None)

    def __setattr__(self, key, value):
        if "_weight_table" in self.__dict__ and not tracking.track_attribute(self, key, value):
            return
        super().__setattr__(key, value)

    def _apply(self, fn, recurse=True):
        # `module.to(...)` / `.double()` replace buffers by new tensors; variables stay the same
        # objects (as torch keeps parameters) and take the converted data.
        held = [(k, b) for k, b in self._buffers.items() if isinstance(b, Variable)]
        super()._apply(fn, recurse)
        tracking.restore_buffers(self, held)
        # `.double()`, `.half()`, `.to(dtype)`, `.float()` back: the layer then computes in the
        # new floating dtype (its dtype policy follows its weights), so that it runs and trains
        # in it; a device or memory-format move changes no dtype
        target = _moved_floating_dtype(fn)
        if target is not None and self._compute_torch_dtype.is_floating_point and \
                target is not torch_dtype(self._dtype_policy.variable_dtype):
            self.dtype_policy = str(target).replace("torch.", "")
        return self

    def train(self, mode=True):
        """Set training mode on this layer and every submodule (as `nn.Module.train`).

        Writes the flag directly: `fit` and `predict` switch modes on every call, and
        `nn.Module.__setattr__` costs microseconds per module.
        """
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode) expects a bool; received {mode!r}.")
        self.__dict__["training"] = mode
        for child in self._modules.values():
            if child is not None:
                child.train(mode)
        return self

    def _own_weight_entries(self):
        """(self, Weight) pairs in Keras's order: weights created trainable first, then the
        others, each in creation order."""
        table = self._weight_table
        return [(self, w) for w in table if w.trainable] + \
            [(self, w) for w in table if not w.trainable]

    def _weight_entries(self):
        """(layer, Weight) pairs in Keras order: this layer's, then its sublayers'."""
        seen, out = set(), []
        for layer, w in self._own_weight_entries():
            p = getattr(layer, w.attr)
            if id(p) not in seen:
                seen.add(id(p))
                out.append((layer, w))
        for child in self._sublayers():
            for layer, w in child._weight_entries():
                p = getattr(layer, w.attr)
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append((layer, w))
        return out

    def _sublayers(self):
        return [m for m in self._modules.values() if isinstance(m, Layer)]

    @property
    def weights(self):
        """All weights as `plexus.Variable`s (torch parameters and buffers), in Keras's order:
        each layer's trainable weights, then its non-trainable ones, then its sublayers'."""
        params = [getattr(layer, w.attr) for layer, w in self._weight_entries()]
        known = {id(p) for p in params}
        params += [p for p in self.parameters() if id(p) not in known]  # raw nn.Parameters
        return params

    @property
    def trainable_weights(self):
        """The weights training updates (none when `layer.trainable` is False)."""
        if not self.trainable:
            return []
        return [w for w in self.weights if w.requires_grad]

    @property
    def non_trainable_weights(self):
        """The weights training does not update (all of them when `layer.trainable` is False)."""
        if not self.trainable:
            return self.weights
        return [w for w in self.weights if not w.requires_grad]

    @property
    def variables(self):
        """All state: the weights, then the states of the layers' `SeedGenerator`s."""
        out = self.weights
        for layer in self.modules():
            for gen in layer.__dict__.get("_seed_generators", ()):
                out.append(gen.state)
        return out

    @property
    def trainable_variables(self):
        """The same as `trainable_weights`."""
        return self.trainable_weights

    @property
    def non_trainable_variables(self):
        """`non_trainable_weights` plus the states of the layers' `SeedGenerator`s."""
        if not self.trainable:
            return self.variables
        return [v for v in self.variables if not v.requires_grad]

    @property
    def trainable(self):
        """Whether training updates the layer's weights (settable; applies to sublayers).

        Setting it to False turns `requires_grad` off on its trainable weights, which stay
        torch parameters; setting it back turns it on again for the weights created trainable.
        """
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        value = bool(value)
        self._trainable = value
        for child in self._sublayers():
            child.trainable = value
        for w in self._weight_table:
            p = self._parameters.get(w.attr)
            if p is not None and p.is_floating_point():
                p.requires_grad_(value and w.trainable)

    def count_params(self):
        """Number of scalars in the layer's weights."""
        if not self.built:
            raise ValueError(
                f"Layer {self.name!r} is not built yet, so it has no weights to count. Call it "
                "on an input (or build the model) first."
            )
        return int(sum(p.numel() for p in self.weights))

    def get_weights(self):
        """The weights as NumPy arrays, in Keras's order and layout."""
        return [to_numpy(w.to_keras(getattr(layer, w.attr).detach())).copy()
                for layer, w in self._weight_entries()]

    def set_weights(self, weights):
        """Set the weights from NumPy arrays in Keras's order and layout (as `get_weights`)."""
        entries = self._weight_entries()
        weights = list(weights)
        if len(weights) != len(entries):
            raise ValueError(
                f"Layer {self.name!r} expects {len(entries)} weight arrays "
                f"({', '.join(w.name for _, w in entries) or 'none'}), but received "
                f"{len(weights)}. Pass a list in the order of `layer.get_weights()`."
            )
        values = []
        for (layer, w), value in zip(entries, weights):
            value = np.asarray(value)
            if tuple(value.shape) != w.keras_shape:
                raise ValueError(
                    f"Layer {layer.name!r}: weight {w.name!r} has shape {w.keras_shape}, but the "
                    f"array given for it has shape {tuple(value.shape)}."
                )
            values.append(value)
        with torch.no_grad():
            for (layer, w), value in zip(entries, values):
                p = getattr(layer, w.attr)
                p.copy_(w.to_torch(torch.as_tensor(value, dtype=p.dtype)))

    # ------------------------------------------------------------------ build / call
    def build(self, input_shape):
        """Create the layer's weights for inputs of `input_shape` (batch dimension included)."""
        self.built = True

    def _maybe_build(self, input_shape):
        if not self.built:
            # A sublayer first called while its parent's output shape is traced under torch's
            # fake-tensor mode still creates real weights.
            with unset_fake_temporarily():
                self.build(input_shape)
            self.built = True

    def call(self, inputs, *args, **kwargs):
        """The layer's computation. Subclasses override it."""
        return inputs

    def forward(self, *args, **kwargs):
        calls = _call_state()
        if not calls.depth:
            calls.losses = None  # (left over if the previous outermost call failed)
            calls.args = args  # `plexus.random` draws inside `call` go to their device
        shadowed = None
        if _CASTS_IN_USE[0]:  # some layer computes in a dtype other than float32
            args, kwargs, shadowed = _enter_policy(self, args, kwargs)
        calls.depth += 1
        try:
            outputs = self.call(*args, **kwargs)
            if _CASTS_IN_USE[0] and self._output_cast is not None:
                outputs = tree.map_structure(lambda t: _cast_one(t, self._output_cast), outputs)
            if getattr(self, "activity_regularizer", None) is not None:
                self._record_activity_loss(outputs)
        finally:
            calls.depth -= 1
            if not calls.depth:
                calls.args = None
            if shadowed:
                _unshadow(shadowed)
        # The outermost call publishes the losses its layers recorded (replacing those of
        # its previous call); `.data` is the WeakSet's own set, tested without a Python call.
        if not calls.depth and (calls.losses or _HOLDERS.data):
            _publish_losses(self, calls)
        return outputs

    def _closed_form_rule(self, in_rank):
        """How this layer trains without autograd in a plain chain (a `closed_form.Rule`
        for inputs of rank `in_rank`), or None: autograd. Layers with a rule override it."""
        return None

    def _calls_only_call(self):
        """Whether running this layer does nothing but its `call` in float32: `forward` as
        above (no casts, no activity penalty, no recorded losses), torch's call machinery with
        no hook of the layer's or global ones. A closed-form rule holds only then, and only when
        it is defined where `call` is or below (a subclass overriding `call` loses it)."""
        cls = type(self)
        if cls.forward is not Layer.forward or cls._call_impl is not torch.nn.Module._call_impl:
            return False
        rule_cls = _defining_class(cls, "_closed_form_rule")
        if not issubclass(rule_cls, _defining_class(cls, "call")):
            return False
        if any_hooks((self,)):
            return False
        return (getattr(self, "activity_regularizer", None) is None
                and not self.__dict__.get("_losses")
                and self._compute_torch_dtype is torch.float32 and not self._mixed)

    # ------------------------------------------------------------------ losses
    def add_loss(self, loss):
        """Record a scalar loss from inside `call`; it shows in `losses` until the next
        outermost call of a model or layer containing this layer."""
        values = []
        for value in tree.flatten(loss):
            try:
                if isinstance(value, KerasTensor) or callable(value):
                    raise TypeError
                values.append(value if isinstance(value, torch.Tensor)
                              else torch.as_tensor(value, dtype=torch.float32))
            except (TypeError, ValueError, RuntimeError):
                raise ValueError(
                    f"Layer {self.name!r}: add_loss() takes a tensor (or a number) computed "
                    f"inside the layer's call() or build(); received {value!r}. Compute the "
                    "loss in a layer's call() from its inputs or weights, or pass it to "
                    "compile(loss=...).") from None
        calls = _call_state()
        if calls.depth:  # inside a call: published when the outermost call ends
            if calls.losses is None:
                calls.losses = {}
            calls.losses.setdefault(self, []).extend(values)
        else:
            with _PUBLISH_LOCK:
                self._losses = self._losses + values
                _HOLDERS.add(self)

    def _record_activity_loss(self, outputs):
        """`activity_regularizer(output) / batch_size` for every output tensor."""
        for out in tree.flatten(outputs):
            if isinstance(out, torch.Tensor):
                loss = torch.as_tensor(self.activity_regularizer(out), dtype=out.dtype,
                                       device=out.device)
                if out.ndim > 0:
                    loss = loss / out.shape[0] if out.shape[0] else torch.zeros_like(loss)
                self.add_loss(loss)


    @property
    def losses(self):
        """The current regularization losses, as scalar tensors to add to the training loss.

        Activity penalties and `add_loss` values recorded by the last outermost call of this
        layer (or of the model holding it), from this layer and every sublayer, then the weight
        penalties (`kernel_regularizer=...`) of the trainable weights, computed from their
        current values so that they carry gradients. A training step adds `sum(model.losses)`
        to the loss after the forward pass.
        """
        out = []
        for layer in self.modules():
            if isinstance(layer, Layer):
                out.extend(layer.__dict__.get("_losses", ()))
        if not self.trainable:
            return out
        for layer, w in self._weight_entries():
            param = getattr(layer, w.attr)
            if w.regularizer is not None and param.requires_grad:
                penalty = w.regularizer(w.to_keras(param))
                out.append(penalty if isinstance(penalty, torch.Tensor) else
                           torch.as_tensor(penalty, dtype=param.dtype, device=param.device))
        return out

    def __call__(self, *args, **kwargs):
        if not args and kwargs:  # `layer(logits=x, targets=y)`: the first argument is the input
            first = _first_call_arg(type(self))
            if first in kwargs:
                args = (kwargs.pop(first),)
        if "training" in kwargs and not call_accepts(self, "training"):
            kwargs.pop("training")  # layers that behave the same in training ignore the flag
        if "_called" not in self.__dict__ and not torch.compiler.is_compiling():
            # first call: sublayers built now get our name scope
            self.__dict__["_called"] = True
            with tracking.name_scope_of(self):
                return self.__call__(*args, **kwargs)
        if self.input_spec is not None:
            assert_input_compatibility(self.input_spec, args[0] if args else kwargs.get("inputs"),
                                       self.name)
        if any(isinstance(t, KerasTensor) for t in tree.flatten((args, kwargs))):
            return self._symbolic_call(args, kwargs)
        prev_mask = None
        if args:
            args = (tree.map_structure(_to_tensor, args[0]),) + args[1:]
            if not self._accepts_strings and not isinstance(args[0], torch.Tensor):
                _refuse_text(self, args[0])
            # As in Keras, a mask travels with a tensor (`_keras_mask`) between eager calls.
            prev_mask = getattr(args[0], "_keras_mask", None)
            if prev_mask is not None and kwargs.get("mask") is None \
                    and call_accepts(self, "mask"):
                kwargs["mask"] = prev_mask
        if not self.built:
            inputs = args[0] if args else kwargs.get("inputs")
            if inputs is None:
                raise TypeError(
                    f"Layer {self.name!r} ({type(self).__name__}) was called without inputs "
                    f"(keyword arguments: {sorted(kwargs)}). Pass the inputs as the first "
                    "argument of the call, or by the name of `call`'s first argument.")
            self._maybe_build(tree.map_structure(_shape_of, inputs))
        outputs = super().__call__(*args, **kwargs)
        if prev_mask is not None or (type(self).compute_mask is not Layer.compute_mask
                                     and self._makes_mask()):
            tracking.attach_masks(self, args[0] if args else kwargs.get("inputs"), outputs,
                                  prev_mask)
        return outputs

    def _symbolic_call(self, args, kwargs):
        if not args:
            raise TypeError(f"Layer {self.name!r} must be called with its inputs as the first argument.")
        inputs = args[0]
        flat = tree.flatten(inputs)
        if not self._accepts_strings:
            _refuse_text(self, flat)
        for t in flat:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"Layer {self.name!r} was called on a mix of symbolic tensors and "
                    f"{type(t).__name__} values. In a functional model every input of a layer must "
                    "come from `plexus.Input` or from another layer."
                )
        self._maybe_build(tree.map_structure(lambda t: t.shape, inputs))
        spec_args, spec_kwargs = args, kwargs
        if self._cast_inputs_to is not None:  # the specs see inputs cast as `forward` casts them
            spec_args, spec_kwargs = _cast_floating(args, kwargs, self._cast_inputs_to)
        outputs = self.compute_output_spec(*spec_args, **spec_kwargs)
        outputs = tree.map_structure(
            lambda s: KerasTensor(s.shape, s.dtype, has_mask=False), outputs)
        in_masked = [t.has_mask for t in flat]
        if any(in_masked) or self._makes_mask():
            out_mask = self._symbolic_mask(inputs, in_masked)
            for t in tree.flatten(outputs):
                t.has_mask = out_mask
        Node(self, args, kwargs, outputs)
        return outputs

    # ------------------------------------------------------------------ shapes
    def compute_output_shape(self, input_shape):
        """Output shape for `input_shape`; built-in layers define it, custom ones may."""
        raise NotImplementedError

    def compute_output_spec(self, inputs, *args, **kwargs):
        """Symbolic outputs (shapes and dtypes) of calling the layer on symbolic `inputs`."""
        if type(self).compute_output_shape is not Layer.compute_output_shape:
            shapes = self.compute_output_shape(tree.map_structure(lambda t: t.shape, inputs))
            dtype = self._output_dtype(inputs)
            if tree.is_shape(shapes):
                return KerasTensor(shapes, dtype)
            return _specs_from_shapes(shapes, dtype)
        return self._traced_output_spec(inputs, *args, **kwargs)

    def _output_dtype(self, inputs):
        return self.compute_dtype

    def _traced_output_spec(self, inputs, *args, **kwargs):
        """Run `call` on shape-only tensors twice, with different stand-ins for unknown sizes;
        sizes that change between the two runs are unknown in the output.

        Meta tensors are tried first (free); a layer mixing them with its real weights is traced
        under torch's fake-tensor mode instead.
        """
        try:
            runs = [self._trace_once(size, "meta", inputs, args, kwargs) for size in _DYNAMIC_SIZES]
        except Exception:
            from torch._subclasses.fake_tensor import FakeTensorMode
            try:
                with FakeTensorMode(allow_non_fake_inputs=True):
                    runs = [self._trace_once(size, "cpu", inputs, args, kwargs)
                            for size in _DYNAMIC_SIZES]
            except Exception as e:
                raise ValueError(
                    f"Could not work out the output shape of layer {self.name!r} "
                    f"({type(self).__name__}) for inputs of shape "
                    f"{tree.map_structure(lambda t: t.shape, inputs)}: calling it failed with "
                    f"{type(e).__name__}: {e}. Check the input shapes, or define "
                    "`compute_output_shape(input_shape)` on the layer."
                ) from e
        flat_a, flat_b = tree.flatten(runs[0]), tree.flatten(runs[1])
        specs = []
        for a, b in zip(flat_a, flat_b):
            shape = tuple(x if x == y else None for x, y in zip(a.shape, b.shape))
            specs.append(KerasTensor(shape, standardize_dtype(a.dtype)))
        return tree.pack_like(runs[0], specs)

    def _trace_once(self, size, device, inputs, args, kwargs):
        def fake(t):
            if not isinstance(t, KerasTensor):
                return t
            shape = tuple(size if d is None else d for d in t.shape)
            return torch.zeros(shape, dtype=torch_dtype(t.dtype), device=device)
        f_args = tree.map_structure(fake, (inputs,) + tuple(args))
        f_kwargs = tree.map_structure(fake, kwargs)
        if any(isinstance(x, KerasTensor) and x.has_mask for x in tree.flatten(inputs)) \
                and "mask" not in kwargs and call_accepts(self, "mask"):
            # Stand-in masks, in the structure of the inputs (None for an unmasked one), as a
            # model passes them: (batch, time) for sequences of vectors, else the input's shape.
            def stand_in(x):
                if not (isinstance(x, KerasTensor) and x.has_mask):
                    return None
                shape = tuple(size if d is None else d for d in x.shape)
                return torch.ones(shape[:-1] if len(shape) >= 3 else shape,
                                  dtype=torch.bool, device=device)
            f_kwargs["mask"] = tree.map_structure(stand_in, inputs)
        shadowed = _shadow_weights(self) if self._mixed else None
        # Sublayers called here are not outermost calls (losses they record on shape-only
        # tensors are not published), and random draws go to the tracing device.
        calls = _call_state()
        outer_device, calls.device = calls.device, torch.device(device)
        calls.depth += 1
        try:
            with torch.no_grad(), (_MetaMixing() if device == "meta" else _NO_MODE):
                return self.call(*f_args, **f_kwargs)
        finally:
            calls.depth -= 1
            calls.device = outer_device
            if shadowed:
                _unshadow(shadowed)

    # ------------------------------------------------------------------ masks
    @property
    def supports_masking(self):
        """Whether the layer computes output masks with `compute_mask` (settable). By default,
        as in Keras 3, whether the layer's class defines its own `compute_mask`."""
        value = self.__dict__.get("_supports_masking")
        if value is None:
            return type(self).compute_mask is not Layer.compute_mask
        return value

    @supports_masking.setter
    def supports_masking(self, value):
        self.__dict__["_supports_masking"] = bool(value)

    def _makes_mask(self):
        """Whether this layer may create a mask from unmasked inputs: Embedding(mask_zero=True),
        Masking, and layers of your own that define `compute_mask` (Keras 3 calls it on every
        output). Built-in layers that only pass masks on say no."""
        fn = type(self).compute_mask
        return fn is not Layer.compute_mask and not fn.__module__.startswith("plexus.")

    def _symbolic_mask(self, inputs, in_masked):
        return self.supports_masking and (any(in_masked) or self._makes_mask())

    def compute_mask(self, inputs, mask=None):
        """The mask of the outputs; by default a masking-aware layer passes its mask on."""
        if not self.supports_masking:
            return None
        return mask

    # ------------------------------------------------------------------ graph access
    def _node_attr(self, index, attr, what):
        if not self._inbound_nodes:
            raise AttributeError(
                f"Layer {self.name!r} has never been called on a symbolic tensor, so it has no "
                f"{what}. Call it on the output of `plexus.Input` first."
            )
        if not 0 <= index < len(self._inbound_nodes):
            raise ValueError(
                f"Layer {self.name!r} has {len(self._inbound_nodes)} call(s) in the graph; asked "
                f"for call {index}."
            )
        tensors = getattr(self._inbound_nodes[index], attr)
        return tensors[0] if len(tensors) == 1 else list(tensors)

    @property
    def input(self):
        """The symbolic input of the layer's first call (use `get_input_at(i)` for later calls)."""
        return self._node_attr(0, "input_tensors", "input")

    @property
    def output(self):
        """The symbolic output of the layer's first call (use `get_output_at(i)` for later calls)."""
        return self._node_attr(0, "output_tensors", "output")

    def get_input_at(self, node_index):
        return self._node_attr(node_index, "input_tensors", "input")

    def get_output_at(self, node_index):
        return self._node_attr(node_index, "output_tensors", "output")

    def get_input_shape_at(self, node_index):
        return tree.map_structure(lambda t: t.shape, self.get_input_at(node_index))

    def get_output_shape_at(self, node_index):
        return tree.map_structure(lambda t: t.shape, self.get_output_at(node_index))

    @property
    def input_shape(self):
        return self.get_input_shape_at(0)

    @property
    def output_shape(self):
        return self.get_output_shape_at(0)

    @property
    def inbound_nodes(self):
        return list(self._inbound_nodes)

    # ------------------------------------------------------------------ config
    # ------------------------------------------------------------------ saving hooks (Keras's)
    def save_own_variables(self, store):
        """Fill `store` (a dict) with this layer's own weights as `.keras` files keep them:
        `store["0"] = kernel`, ... Override it (with `load_own_variables`) to save more."""
        from plexus.saving import custom_state
        custom_state.default_save(self, store)

    def load_own_variables(self, store):
        """Put the arrays of `store` (as `save_own_variables` wrote them) into the weights."""
        from plexus.saving import custom_state
        custom_state.default_load(self, store)

    def get_build_config(self):
        """What a loaded layer needs to build itself: `{"input_shape": ...}` (or None)."""
        from plexus.saving.serialization import _build_config
        return _build_config(self)

    def build_from_config(self, config):
        """Build from what `get_build_config` returned, before the weights are loaded."""
        shape = (config or {}).get("input_shape") if isinstance(config, dict) else None
        if shape is not None and not self.built:
            self.build(shape)
            self.built = True

    def get_config(self):
        """The arguments that recreate this layer (without its weights)."""
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": self._dtype_policy.name}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = self._batch_input_shape
        if type(self).get_config is Layer.get_config and type(self).__init__ is not Layer.__init__:
            args, kwargs = self._init_call
            try:
                bound = inspect.signature(type(self).__init__).bind(self, *args, **kwargs)
            except TypeError:
                return config
            for key, value in bound.arguments.items():
                if key == "self":
                    continue
                if key == "kwargs" and isinstance(value, dict):
                    config.update(value)
                elif key != "args":
                    config[key] = value
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    def extra_repr(self):
        return f"name={self.name!r}"


def _moved_floating_dtype(fn):
    """The floating dtype an `nn.Module._apply` function converts to, or None for a move that
    keeps dtypes (a device or memory-format move)."""
    try:
        from32 = fn(torch.empty(0)).dtype
        if from32 is not torch.float32:
            return from32 if from32.is_floating_point else None
        return torch.float32 if fn(torch.empty(0, dtype=torch.float64)).dtype is torch.float32 \
            else None
    except Exception:  # noqa: BLE001 (a function that cannot take a probe moves no dtype)
        return None


def _specs_from_shapes(shapes, dtype):
    """Symbolic tensors for a nested structure of shapes."""
    if tree.is_shape(shapes):
        return KerasTensor(shapes, dtype)
    if isinstance(shapes, dict):
        return {k: _specs_from_shapes(v, dtype) for k, v in shapes.items()}
    return type(shapes)(_specs_from_shapes(s, dtype) for s in shapes)


# ------------------------------------------------------------------------ call state
class _CallState:
    """Per-context (per-thread) state of running calls: how deeply calls are nested, the
    losses (`add_loss`, activity regularizers) recorded by the running outermost call, and the
    arguments of the outermost call (`plexus.random` draws inside a `call` go to their device;
    a shape trace sets `device` instead)."""

    __slots__ = ("depth", "losses", "args", "device")

    def __init__(self):
        self.depth, self.losses, self.args, self.device = 0, None, None, None


def current_call_device():
    """The device of the data of the running layer call (or shape trace), else None."""
    calls = _call_state()
    if calls.device is not None:
        return calls.device
    return _data_device(calls.args) if calls.args is not None else None


_CALLS = contextvars.ContextVar("plexus_calls")
_HOLDERS = weakref.WeakSet()  # layers whose `_losses` hold published losses
_PUBLISH_LOCK = threading.Lock()


_TRACE_CALLS = _CallState()  # the call state while torch.compile traces (it cannot read a
# ContextVar); tracing runs one frame at a time, so one state serves every trace


def _call_state():
    if torch.compiler.is_compiling():
        return _TRACE_CALLS
    try:
        return _CALLS.get()
    except LookupError:
        state = _CallState()
        _CALLS.set(state)
        return state


def _publish_losses(outermost, calls):
    """At the end of an outermost call: the losses its layers recorded replace those of the
    previous call, for `outermost` and every layer inside it."""
    recorded, calls.losses = calls.losses or {}, None
    with _PUBLISH_LOCK:
        inside = None
        for layer in list(_HOLDERS):
            if layer not in recorded:
                if inside is None:
                    inside = {id(m) for m in outermost.modules()}
                if id(layer) in inside:
                    layer._losses = []
                    _HOLDERS.discard(layer)
        for layer, values in recorded.items():
            layer._losses = values
            _HOLDERS.add(layer)


def published_losses(layer_ids):
    """The losses published for the layers whose ids are in `layer_ids` (a set)."""
    if not _HOLDERS.data:
        return []
    with _PUBLISH_LOCK:
        holders = list(_HOLDERS)
    return [v for layer in holders if id(layer) in layer_ids for v in layer._losses]


def _reset_call_state():
    """Forget published losses and this context's call state (`clear_session`)."""
    with _PUBLISH_LOCK:
        for layer in list(_HOLDERS):
            layer._losses = []
        _HOLDERS.clear()
    _CALLS.set(_CallState())


backend._on_clear.append(_reset_call_state)


# ------------------------------------------------------------------------ mixed precision
def _cast_one(t, dtype):
    """`t` in `dtype` if it is a floating tensor (or symbolic tensor) of another dtype."""
    if isinstance(t, torch.Tensor):
        return t.to(dtype) if t.dtype is not dtype and t.is_floating_point() else t
    if isinstance(t, KerasTensor) and "float" in t.dtype and torch_dtype(t.dtype) is not dtype:
        cast = KerasTensor(t.shape, dtype, name=t.name, has_mask=t.has_mask)
        cast.node, cast.index = t.node, t.index
        return cast
    return t


def _cast_floating(args, kwargs, dtype):
    """Floating tensors among a call's arguments cast to `dtype`; others untouched."""
    if len(args) == 1 and not kwargs:
        x = args[0]
        if type(x) is torch.Tensor and (x.dtype is dtype or not x.is_floating_point()):
            return args, kwargs  # the common case, without walking structures
    args = tree.map_structure(lambda t: _cast_one(t, dtype), args)
    if kwargs:
        kwargs = {k: tree.map_structure(lambda t: _cast_one(t, dtype), v)
                  for k, v in kwargs.items()}
    return args, kwargs


def _enter_policy(layer, args, kwargs):
    """Cast a call's floating inputs to the layer's compute dtype and, for a mixed policy,
    shadow its weights with compute-dtype copies. Returns `(args, kwargs, shadowed)`."""
    cast = layer._cast_inputs_to
    if cast is not None and (args or kwargs):
        args, kwargs = _cast_floating(args, kwargs, cast)
    return args, kwargs, (_shadow_weights(layer) if layer._mixed else None)


def _shadow_weights(layer):
    """Put compute-dtype copies of the floating weights of `layer` (and of sublayers it drives
    directly, such as an RNN's cell) in the instance dicts, where attribute lookup finds them
    before `nn.Module.__getattr__` reaches the parameters. The copies are differentiable casts,
    so gradients flow to the variable-dtype weights. Returns what to remove afterwards."""
    done, stack = [], [layer]
    while stack:
        lay = stack.pop()
        d = lay.__dict__
        if d.get("_mixed"):
            dtype = d["_compute_torch_dtype"]
            for table in (lay._parameters, lay._buffers):  # buffers: e.g. a cell's zero bias
                for name, p in table.items():
                    if p is not None and name not in d and p.dtype is not dtype \
                            and p.is_floating_point() and getattr(p, "autocast", True):
                        d[name] = p.to(dtype)
                        done.append((d, name))
        for child in lay._modules.values():
            if isinstance(child, Layer) and child._autocast_weights:  # (models: not driven)
                stack.append(child)
    return done


def _unshadow(done):
    for d, name in done:
        d.pop(name, None)


def _defining_class(cls, name):
    """The class in `cls`'s MRO whose body defines attribute `name` (None when none does)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass
    return None


_TORCH_MODULE = torch.nn.modules.module  # (where torch keeps its global hooks)


def any_hooks(layers):
    """Whether torch runs a hook when any of `layers` is called or backpropagated through (one
    of their own, or a global one). Cheap: the closed-form step asks it on every batch."""
    m = _TORCH_MODULE
    if (m._global_forward_hooks or m._global_forward_pre_hooks or m._global_backward_hooks
            or m._global_backward_pre_hooks):
        return True
    for layer in layers:
        if (layer._forward_hooks or layer._forward_pre_hooks or layer._backward_hooks
                or layer._backward_pre_hooks):
            return True
    return False


from plexus.layers import modes as _modes  # noqa: E402,F401  (training mode across torch parents)
