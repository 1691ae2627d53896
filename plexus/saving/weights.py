"""Weights in Keras 3's HDF5 layout (`model.weights.h5` and `*.weights.h5` files).

Keras addresses a layer's variables by where the layer sits, not by its name:
`layers/dense/vars/0` is the first variable of the first `Dense` of the model's `layers`
(the second `Dense` is `layers/dense_1`), a nested model's layers live under
`layers/functional/layers/...`, and a layer's sublayers under their attribute name
(`layers/lstm/cell/vars/0`). Each `vars` group carries the layer's name as an attribute.

A layer can adjust its place in this tree with optional hooks:
    `_keras_children()` -> list of (attribute name, sublayer), visited after its own variables
        (default: its sublayers as registered on the module, sorted as Keras sorts attributes);
    `_keras_vars_subpath` (str) -> where its own variables go below its path (default: none);
    `_keras_saved_entries()` -> the (owner, Weight) pairs its group holds (default: its own
        weights), with `_keras_vars_by_name = True` to name datasets by `Weight.name` instead of
        by position (TorchModuleWrapper's state dict, as Keras writes it).
"""
import numpy as np
import torch
from torch import nn

from plexus import backend
from plexus.variables import copy_into
from plexus.saving import h5 as h5util
from plexus.saving import custom_state, limits, registry
from plexus.saving.errors import LoadError

# The plan entry of a layer that reads its whole `vars` group with its own `load_own_variables`.
OWN_STORE = "__own_variables__"


def _name_key(name):
    return "~" + name if name.startswith("_") else name


def _container_name(layer, used):
    from plexus.saving.serialization import keras_class_name, saved_class
    # Keras names a container entry after the Python class, which `_name_prefix` gives where
    # it differs from the exported name (GroupQueryAttention is GroupedQueryAttention).
    name = saved_class(layer).__dict__.get("_name_prefix") or \
        backend.to_snake_case(keras_class_name(layer))
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
    return getattr(layer, "_is_op", False)


def walk(root):
    """(path of the `vars` group, layer, own weight entries) for every layer, Keras's order.

    As Keras's saver, each layer lists all its own weights: a weight that two layers hold
    (SpectralNormalization's kernel is also its wrapped layer's) is written at both places.
    """
    seen_layers, out = set(), []

    def visit(layer, path):
        if id(layer) in seen_layers:
            return
        seen_layers.add(id(layer))
        saved = getattr(layer, "_keras_saved_entries", None)
        entries = list(saved() if saved is not None else layer._own_weight_entries())
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
        if custom_state.overrides(layer, "save_own_variables"):  # the layer's own store
            store = {}
            layer.save_own_variables(store)
            for name, value in store.items():
                group.create_dataset(str(name), data=value.detach().cpu().numpy()
                                     if isinstance(value, torch.Tensor) else np.asarray(value))
            continue
        for name, value in own_arrays(layer, entries).items():
            group.create_dataset(name, data=value)


def own_arrays(layer, entries=None):
    """`{dataset name: array}` of what a layer writes itself (without its own
    `save_own_variables`): its own weights in Keras's layout and order, then the state it keeps
    by name (`_named_vars`). `entries`: the layer's (owner, Weight) list, when known."""
    if entries is None:
        saved = getattr(layer, "_keras_saved_entries", None)
        entries = list(saved() if saved is not None else layer._own_weight_entries())
    out = {_dataset_name(layer, i, w): w.to_keras(getattr(owner, w.attr).detach()).cpu().numpy()
           for i, (owner, w) in enumerate(entries)}
    out.update(_named_vars(layer))
    return out


def _named_vars(layer):
    """State a layer keeps by name beside its numbered weights, as Keras's `save_own_variables`
    does (a lookup layer's `idf_weights`): `_keras_named_vars()` -> {name: array}."""
    hook = getattr(layer, "_keras_named_vars", None)
    return hook() if callable(hook) else {}


def asset_members(model):
    """`{archive member: bytes}` of the files layers keep in a `.keras` archive's `assets/`
    folder (an adapted vocabulary), at Keras's paths: `assets/<layer path>/<file>`."""
    out = {}
    for path, layer, _ in walk(model):
        hook = getattr(layer, "_keras_assets", None)
        if callable(hook):
            for fname, data in hook().items():
                out[_asset_path(path, fname)] = data
        elif callable(getattr(layer, "save_assets", None)):  # a layer's own files
            out.update(custom_state.user_asset_members(path, layer))
    return out


def _asset_path(vars_path, fname):
    inner = vars_path[:-len("vars")].rstrip("/")
    return f"assets/{inner}/{fname}" if inner else f"assets/{fname}"


def read_assets(model, read_member, names=("vocabulary.txt",)):
    """For each layer that loads assets: (layer, {file name: bytes or None}), read by fixed
    names through `read_member(member) -> bytes or None`; nothing is extracted to disk."""
    out = []
    for path, layer, _ in walk(model):
        if callable(getattr(layer, "_load_keras_assets", None)):
            out.append((layer, {n: read_member(_asset_path(path, n)) for n in names}))
    return out


def read(model, f, label, skip_mismatch=False):
    """Read every weight of `model` from the h5py file `f`, checked, without assigning.

    Returns a list of (owner layer, Weight, array). Raises LoadError naming the file, the layer,
    the group path and the shapes on any mismatch.
    """
    plan = []
    for path, layer, entries in walk(model):
        group = h5util.walk(f, path, label, kind="group")
        if custom_state.overrides(layer, "load_own_variables"):  # the layer reads its store
            store = {}
            for name in (list(group.keys()) if group is not None else []):
                ds = h5util.child(group, name, label, kind="dataset")
                store[name] = h5util.read_dataset(
                    ds, ds.shape, label, f"variable {name!r} of layer {layer.name!r}")
            plan.append((layer, OWN_STORE, store))
            continue
        by_name = getattr(layer, "_keras_vars_by_name", False)
        keys = list(group.keys()) if group is not None else []
        named = [k for k in keys if not k.isdigit()]
        if not by_name and named and callable(getattr(layer, "_load_keras_named_var", None)):
            for name in named:  # state kept by name beside the numbered weights (idf_weights)
                ds = h5util.child(group, name, label, kind="dataset")
                plan.append((layer, name, h5util.read_dataset(
                    ds, ds.shape, label, f"variable {name!r} of layer {layer.name!r}")))
            keys = [k for k in keys if k.isdigit()]
        names = sorted(keys) if by_name else sorted(keys, key=_int_key(label, path))
        if by_name and group is not None and set(names) != {w.name for _, w in entries}:
            if skip_mismatch:
                continue
            raise LoadError(
                f"{label}: layer {layer.name!r} ({type(layer).__name__}) holds "
                f"{sorted(w.name for _, w in entries)}, but the file holds {names} at "
                f"{path!r}.")
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
            ds = h5util.child(group, _dataset_name(layer, i, w), label, kind="dataset")
            if ds is None:
                raise LoadError(f"{label}: missing dataset {path}/{_dataset_name(layer, i, w)} "
                                f"for layer {layer.name!r}.")
            what = f"weight {w.name!r} of layer {owner.name!r}"
            if skip_mismatch and tuple(ds.shape) != tuple(w.keras_shape):
                continue
            plan.append((owner, w, h5util.read_dataset(ds, w.keras_shape, label, what)))
    return plan


def _dataset_name(layer, i, w):
    return w.name if getattr(layer, "_keras_vars_by_name", False) else str(i)


def _int_key(label, path):
    def key(name):
        if not name.isdigit():
            raise LoadError(f"{label}: unexpected entry {name!r} in weights group {path!r}.")
        return int(name)
    return key


def stage(plan, label):
    """Turn checked `(owner, Weight, array)` triples into new tensors in each weight's dtype,
    torch layout and device. Nothing in the model changes; `commit` puts them in once
    everything of a load has been staged. Variables a layer keeps by name (`(layer, name,
    array)`, such as idf weights) are handed to the layer at commit time, first."""
    named, tensors = [], []
    for owner, w, value in plan:
        if isinstance(w, str):
            named.append((owner, w, value))
            continue
        target = getattr(owner, w.attr)
        what = f"weight {w.name!r} of layer {owner.name!r}"
        limits.charge(target.numel() * target.element_size(), f"a staged copy of {what}")
        try:
            t = torch.from_numpy(np.asarray(value, order="C")).to(target.dtype)
            t = w.to_torch(t).to(target.device)
        except (TypeError, ValueError, RuntimeError) as e:
            raise LoadError(f"{label}: the values for {what} cannot be converted to its dtype "
                            f"{target.dtype}: {e}") from e
        if t.shape != target.shape:
            raise LoadError(f"{label}: {what} has shape {tuple(target.shape)} inside the model, "
                            f"but its values convert to {tuple(t.shape)}.")
        tensors.append((target, t))
    return named, tensors


def commit(staged, label="the file"):
    """Put staged values in: the layers' named variables first (a layer may still refuse
    one: its own `load_own_variables` failing is a LoadError naming the layer), then the
    weights, copied into their own storage (parameters or buffers)."""
    named, tensors = staged
    for owner, name, value in named:
        if name is OWN_STORE:
            try:
                owner.load_own_variables(value)
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise LoadError(
                    f"{label}: load_own_variables() of layer {owner.name!r} failed "
                    f"({type(e).__name__}: {e}); the file holds the entries "
                    f"{sorted(value)} for it. Make the layer's load_own_variables read what "
                    "its save_own_variables wrote (or load a file saved by this version of "
                    "the layer).") from e
        else:
            owner._load_keras_named_var(name, value)
    with torch.no_grad():
        for target, value in tensors:
            copy_into(target, value)  # (a sharded weight takes its shard)


def assign(plan, label="the file"):
    """Stage every array of `plan`, then put them all in."""
    commit(stage(plan, label), label)
