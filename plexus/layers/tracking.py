"""What a layer keeps track of besides its computation: where its weights are registered
(parameters or buffers), the attributes that hold variables and seed generators, the name scope
that gives variables their paths, and the masks of eager outputs."""
import contextvars

import torch
from torch import nn

from plexus.graph import tree
from plexus.random import SeedGenerator
from plexus.variables import Variable

# The layers whose first call (or build) is running, outermost first: a weight created meanwhile
# gets the path `outer/inner/name`, as Keras names variables.
_NAME_SCOPE = contextvars.ContextVar("plexus_name_scope", default=())


def variable_path(layer, name):
    """`outer/inner/name`: the layers whose first call is running, then `layer`, then `name`."""
    scope = _NAME_SCOPE.get()
    names = [l.name for l in scope]
    if not scope or scope[-1] is not layer:
        names.append(layer.name)
    return "/".join(names + [name])


class name_scope_of:  # noqa: N801 (used like a function: `with name_scope_of(layer):`)
    """Within the block, weights created get `layer`'s name in their path (see `Variable.path`)."""

    __slots__ = ("layer", "token")

    def __init__(self, layer):
        self.layer = layer

    def __enter__(self):
        self.token = _NAME_SCOPE.set(_NAME_SCOPE.get() + (self.layer,))

    def __exit__(self, *exc):
        _NAME_SCOPE.reset(self.token)


# ------------------------------------------------------------------------ registration
def register_variable(layer, attr, var):
    """A trainable floating variable becomes a parameter of `layer`, any other a buffer."""
    if var._spec.trainable and var.is_floating_point():
        layer.register_parameter(attr, var)
    else:
        layer.register_buffer(attr, var)


def _registered_attr(layer, var):
    for table in (layer._parameters, layer._buffers):
        for key, value in table.items():
            if value is var:
                return table, key
    return None, None


def _rename(layer, table, old, new):
    value = table.pop(old)
    for d in (layer.__dict__, layer._parameters, layer._buffers, layer._modules):
        d.pop(new, None)
    table[new] = value
    for w in layer._weight_table:
        if w.attr == old:
            w.attr = new


def track_attribute(layer, key, value):
    """Handle `layer.<key> = value` for values a layer tracks; returns whether
    `nn.Module.__setattr__` should still set it.

    A variable is registered (renamed if this layer made it under another attribute, as
    `self.w = self.add_weight(...)` does) and listed among the weights; a seed generator is
    listed for `layer.variables`; a tensor set in a buffer's place, or a parameter in a
    parameter's place (`load_state_dict(assign=True)`), rebinds the variable's data so that it
    keeps its Keras description.
    """
    if isinstance(value, Variable):
        _track_variable(layer, key, value)
        return False
    if isinstance(value, SeedGenerator):
        gens = layer.__dict__.setdefault("_seed_generators", [])
        if all(g is not value for g in gens):
            gens.append(value)
    current = layer._buffers.get(key)
    if current is None and isinstance(value, nn.Parameter):
        current = layer._parameters.get(key)
    if isinstance(current, Variable) and isinstance(value, torch.Tensor) \
            and value.shape == current.shape and not _is_dtensor(value):
        current.data = value.detach()
        return False
    if isinstance(value, nn.Parameter):  # `self.w = nn.Parameter(...)`, registered elsewhere
        table, attr = _registered_attr(layer, value)
        if table is not None and attr != key:
            _rename(layer, table, attr, key)
    return True


def _is_dtensor(value):
    """A sharded tensor (FSDP's parameters under `plexus.distribution.ModelParallel`): it
    replaces the variable it shards rather than lending it its data."""
    from plexus.distribution.runtime import is_dtensor
    return is_dtensor(value)


def _track_variable(layer, key, var):
    table, attr = _registered_attr(layer, var)
    if table is not None:
        if attr != key:
            _rename(layer, table, attr, key)
        return
    for d in (layer.__dict__, layer._parameters, layer._buffers, layer._modules):
        d.pop(key, None)
    register_variable(layer, key, var)
    if not any(w.attr == key for w in layer._weight_table):
        spec = var._spec
        layer._weight_table.append(spec if spec.attr is None else spec.copy(key))
        if spec.attr is None:
            spec.attr = key


def restore_buffers(layer, held):
    """After `nn.Module._apply` replaced the buffers in `held` ((name, variable) pairs) by new
    tensors, put the variables back, holding the new data."""
    for key, var in held:
        new = layer._buffers.get(key)
        if new is not None and new is not var:
            var.data = new.detach()
            layer._buffers[key] = var


# ------------------------------------------------------------------------ masks
def attach_masks(layer, inputs, outputs, prev_mask):
    """Set `_keras_mask` on the outputs of an eager call, as Keras does: the layer's
    `compute_mask` of the inputs and their mask, on outputs that have none yet."""
    if not layer.supports_masking:
        return
    flat = [t for t in tree.flatten(outputs) if isinstance(t, torch.Tensor)]
    if not flat or all(getattr(t, "_keras_mask", None) is not None for t in flat):
        return
    masks = layer.compute_mask(inputs, prev_mask)
    if masks is None:
        return
    flat_masks = tree.flatten(masks) if isinstance(masks, (list, tuple)) else [masks] * len(flat)
    for t, m in zip(flat, flat_masks):
        if m is not None and getattr(t, "_keras_mask", None) is None:
            t._keras_mask = m
