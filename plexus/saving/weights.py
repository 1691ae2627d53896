"""Weights in Keras 3's HDF5 layout (`model.weights.h5` and `*.weights.h5` files).

Keras addresses a layer's variables by where the layer sits, not by its name:
`layers/dense/vars/0` is the first variable of the first `Dense` of the model's `layers`
(the second `Dense` is `layers/dense_1`), a nested model's layers live under
`layers/functional/layers/...`, and a layer's sublayers under their attribute name
(`layers/lstm/cell/vars/0`). Each `vars` group carries the layer's name as an attribute.

A layer can adjust its place in this tree with two optional hooks:
    `_keras_children()` -> list of (attribute name, sublayer), visited after its own variables
        (default: its sublayers as registered on the module, sorted as Keras sorts attributes);
    `_keras_vars_subpath` (str) -> where its own variables go below its path (default: none).
"""
import numpy as np
import torch
from torch import nn

from plexus import backend
from plexus.saving import h5 as h5util
from plexus.saving import registry
from plexus.saving.errors import LoadError


def _name_key(name):
    return "~" + name if name.startswith("_") else name


def _container_name(layer, used):
    from plexus.saving.serialization import keras_class_name
    name = backend.to_snake_case(keras_class_name(layer))
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _children(layer):
    """(relative path, child layer) pairs in the order Keras's saver visits them."""
    from plexus.layers.layer import Layer
    if registry.is_model(layer, "Functional"):
        used = {}
        return [(f"layers/{_container_name(child, used)}", child) for child in layer.layers
                if not is_op(child)]
    hook = getattr(layer, "_keras_children", None)
    if callable(hook):
        return list(hook())
    out = []
    for attr, module in sorted(layer._modules.items(), key=lambda kv: _name_key(kv[0])):
        if isinstance(module, Layer):
            out.append((attr, module))
        elif isinstance(module, (nn.ModuleList, nn.Sequential)):
            used = {}
            out += [(f"{attr}/{_container_name(m, used)}", m) for m in module
                    if isinstance(m, Layer)]
    return out


def is_op(layer):
    """Recorded tensor operations (`x + 1`, Keras's `NotEqual`) are not layers to Keras."""
    return getattr(layer, "_is_op", False) or type(layer).__module__ == "plexus.layers.ops"


def walk(root):
    """(path of the `vars` group, layer, own weight entries) for every layer, Keras's order.

    A weight shared by two layers is listed only at its first place.
    """
    seen_layers, seen_params, out = set(), set(), []

    def visit(layer, path):
        if id(layer) in seen_layers:
            return
        seen_layers.add(id(layer))
        entries = []
        for owner, w in layer._own_weight_entries():
            p = getattr(owner, w.attr)
            if id(p) not in seen_params:
                seen_params.add(id(p))
                entries.append((owner, w))
        sub = getattr(layer, "_keras_vars_subpath", None)
        base = f"{path}/{sub}" if sub else path
        out.append(((base + "/vars").lstrip("/"), layer, entries))
        for rel, child in _children(layer):
            visit(child, f"{path}/{rel}" if path else rel)

    visit(root, "")
    return out


def write(model, f):
    """Write `model`'s weights into the open, writable h5py file `f`."""
    for path, layer, entries in walk(model):
        group = f.require_group(path)
        group.attrs["name"] = layer.name
        for i, (owner, w) in enumerate(entries):
            value = w.to_keras(getattr(owner, w.attr).detach()).cpu().numpy()
            group.create_dataset(str(i), data=value)


def read(model, f, label, skip_mismatch=False):
    """Read every weight of `model` from the h5py file `f`, checked, without assigning.

    Returns a list of (owner layer, Weight, array). Raises LoadError naming the file, the layer,
    the group path and the shapes on any mismatch.
    """
    plan = []
    for path, layer, entries in walk(model):
        group = h5util.walk(f, path, label, kind="group")
        names = sorted(group.keys(), key=_int_key(label, path)) if group is not None else []
        if len(names) != len(entries):
            if skip_mismatch:
                continue
            if group is None and entries:
                raise LoadError(
                    f"{label} has no weights for layer {layer.name!r} ({type(layer).__name__}) "
                    f"at {path!r}: the file was saved from a different architecture (or is "
                    "not a weights file of this model)."
                )
            raise LoadError(
                f"{label}: layer {layer.name!r} ({type(layer).__name__}) has {len(entries)} "
                f"weight(s) ({', '.join(w.name for _, w in entries) or 'none'}), but the file "
                f"holds {len(names)} at {path!r}."
            )
        for i, (owner, w) in enumerate(entries):
            ds = h5util.child(group, str(i), label, kind="dataset")
            if ds is None:
                raise LoadError(f"{label}: missing dataset {path}/{i} for layer {layer.name!r}.")
            what = f"weight {w.name!r} of layer {owner.name!r}"
            if skip_mismatch and tuple(ds.shape) != tuple(w.keras_shape):
                continue
            plan.append((owner, w, h5util.read_dataset(ds, w.keras_shape, label, what)))
    return plan


def _int_key(label, path):
    def key(name):
        if not name.isdigit():
            raise LoadError(f"{label}: unexpected entry {name!r} in weights group {path!r}.")
        return int(name)
    return key


def assign(plan):
    """Copy checked arrays into their parameters (Keras layout converted to torch layout)."""
    with torch.no_grad():
        for owner, w, value in plan:
            p = getattr(owner, w.attr)
            # (np.ascontiguousarray would turn a scalar weight, such as a count, into shape (1,))
            t = torch.as_tensor(np.asarray(value, order="C"), dtype=p.dtype)
            p.copy_(w.to_torch(t).to(p.device))
