"""Keras 2's `.h5` weights: one group per layer, listed in the `layer_names` attribute, each with
a `weight_names` attribute naming its datasets in `get_weights()` order.

This is how Keras's published application weights (ResNet50, VGG16, ...) are stored. Loading
goes by topological order (the n-th layer with weights in the file to the n-th in the model) or,
with `by_name=True`, by layer name.
"""
import numpy as np

import plexus
from plexus.saving import h5 as h5util
from plexus.saving import limits
from plexus.saving.errors import LoadError


def is_legacy(f, label="the file"):
    """Whether an open h5py file is in Keras 2's layout (weights only, or a whole model)."""
    if "layer_names" in f.attrs:
        return True
    group = h5util.child(f, "model_weights", label)
    return group is not None and "layer_names" in group.attrs


def weights_root(f, label):
    if "layer_names" in f.attrs:
        return f
    group = h5util.child(f, "model_weights", label, kind="group")
    if group is None:
        raise LoadError(f"{label} holds no Keras weights (no 'layer_names' attribute).")
    return group


def _file_layers(root, label):
    """[(layer name, [arrays' datasets])] for the layers of the file that have weights."""
    names = h5util.attr_strings(root, "layer_names", label) or []
    out = []
    for name in names:
        group = h5util.child(root, name, label, kind="group")
        if group is None:
            raise LoadError(f"{label} lists layer {name!r} in 'layer_names' but has no group for it.")
        weight_names = h5util.attr_strings(group, "weight_names", label) or []
        datasets = []
        for wn in weight_names:
            ds = h5util.walk(group, wn, label, kind="dataset")
            if ds is None:
                raise LoadError(f"{label}: layer {name!r} lists weight {wn!r}, which is missing.")
            datasets.append(ds)
        if datasets:
            out.append((name, datasets))
    return out


def _layers_with_weights(model):
    return [layer for layer in model.layers if layer._weight_entries()]


def _read_layer(layer, datasets, label, skip_mismatch):
    entries = layer._weight_entries()
    if len(entries) != len(datasets):
        if skip_mismatch:
            return []
        raise LoadError(
            f"{label}: layer {layer.name!r} ({type(layer).__name__}) has {len(entries)} weight(s) "
            f"({', '.join(w.name for _, w in entries)}), but the file holds {len(datasets)} for it."
        )
    plan = []
    for (owner, w), ds in zip(entries, datasets):
        if skip_mismatch and tuple(ds.shape) != tuple(w.keras_shape):
            continue
        what = f"weight {w.name!r} of layer {owner.name!r}"
        plan.append((owner, w, h5util.read_dataset(ds, w.keras_shape, label, what)))
    return plan


def read(model, f, label, by_name=False, skip_mismatch=False):
    """Checked (owner, Weight, array) triples for `model` from a Keras 2 layout file."""
    root = weights_root(f, label)
    file_layers = _file_layers(root, label)
    plan = []
    if by_name:
        by = {layer.name: layer for layer in model.layers}
        for name, datasets in file_layers:
            if name in by:
                plan += _read_layer(by[name], datasets, label, skip_mismatch)
        return plan
    layers = _layers_with_weights(model)
    if len(layers) != len(file_layers):
        raise LoadError(
            f"{label} holds weights for {len(file_layers)} layer(s) "
            f"({', '.join(n for n, _ in file_layers[:8])}{', ...' if len(file_layers) > 8 else ''}),"
            f" but model {model.name!r} has {len(layers)} layer(s) with weights. Load with "
            "by_name=True to match layers by name instead of by order."
        )
    for layer, (_, datasets) in zip(layers, file_layers):
        plan += _read_layer(layer, datasets, label, skip_mismatch)
    return plan


def _unique(names):
    seen, out = {}, []
    for n in names:
        if n in seen:
            seen[n] += 1
            n = f"{n}_{seen[n]}"
        else:
            seen[n] = 0
        out.append(n)
    return out


def write(model, f):
    """Write `model`'s weights in Keras 2's layout into the writable h5py group `f`."""
    layers = list(model.layers)
    f.attrs["layer_names"] = np.array([l.name.encode("utf8") for l in layers])
    f.attrs["backend"] = b"torch"
    f.attrs["keras_version"] = plexus.__version__.encode("utf8")
    for layer in layers:
        group = f.create_group(layer.name)
        entries = layer._weight_entries()
        names = _unique([f"{owner.name}/{w.name}" for owner, w in entries])
        group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
        for name, (owner, w) in zip(names, entries):
            value = w.to_keras(getattr(owner, w.attr).detach()).cpu().numpy()
            group.create_dataset(name, data=value)


def model_config(f, label):
    """The model config JSON stored in a Keras full-model `.h5` file, parsed."""
    raw = h5util.attr_text(f, "model_config", label)
    if raw is None:
        raise LoadError(f"{label} holds weights only (no model config); build the model and call "
                        "model.load_weights() instead.")
    return limits.parse_json(raw, f"{label} (attribute 'model_config')")


def training_config(f, label):
    """The compile settings of a Keras full-model `.h5` file in `compile_config` form, or None."""
    raw = h5util.attr_text(f, "training_config", label)
    if raw is None:
        return None
    training = limits.parse_json(raw, f"{label} (attribute 'training_config')")
    if not isinstance(training, dict):
        return None
    training = dict(training)
    training["optimizer"] = training.pop("optimizer_config", None)
    return training
