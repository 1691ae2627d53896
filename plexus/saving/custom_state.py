"""Keras's hooks for a layer to take over parts of its own saving, honoured by `.keras` files:

- `save_own_variables(store)` / `load_own_variables(store)`: the arrays of the layer's
  `vars` group (`{"0": kernel, "1": bias, "my_name": ...}`);
- `save_assets(dir)` / `load_assets(dir)`: files kept in the archive's `assets/<layer path>/`;
- `get_build_config()` / `build_from_config(config)`: how a loaded layer builds itself before
  its weights are put in (for a `build` that takes more than the input shape).

`Layer` defines the default of each; the saver calls a layer's own version where its class
overrides the default.
"""
import os
import tempfile

import numpy as np
import torch

from plexus.saving.errors import LoadError


def overrides(layer, name):
    """Whether `layer`'s class defines `name` itself, rather than inheriting plexus's default."""
    from plexus.layers.layer import Layer
    fn = getattr(type(layer), name, None)
    return fn is not None and fn is not getattr(Layer, name, None)


def default_save(layer, store):
    """`store[name] = array` for each of the layer's own weights and named state, as the saver
    writes them."""
    from plexus.saving import weights
    store.update(weights.own_arrays(layer))


def default_load(layer, store):
    """Put `store`'s arrays (as `default_save` wrote them) into the layer's own weights."""
    from plexus.saving import weights
    saved = getattr(layer, "_keras_saved_entries", None)
    entries = list(saved() if saved is not None else layer._own_weight_entries())
    numbered = {weights._dataset_name(layer, i, w) for i, (_, w) in enumerate(entries)}
    named = [k for k in store if k not in numbered]  # state kept by name (idf_weights)
    takes_named = callable(getattr(layer, "_load_keras_named_var", None))
    if len(store) - len(named) != len(entries) or (named and not takes_named):
        raise ValueError(f"Layer {layer.name!r} expects {len(entries)} variables; the store "
                         f"holds {len(store)} ({sorted(store)}).")
    for key in named:
        layer._load_keras_named_var(key, np.asarray(store[key]))
    plan = []
    for i, (owner, w) in enumerate(entries):
        key = weights._dataset_name(layer, i, w)
        if key not in store:
            raise ValueError(f"Layer {layer.name!r}: no value for {key!r} in the store "
                             f"({sorted(store)}).")
        value = np.asarray(store[key])
        if tuple(value.shape) != tuple(w.keras_shape):
            raise ValueError(f"Layer {layer.name!r}: weight {w.name!r} has shape "
                             f"{tuple(w.keras_shape)}, the stored value {tuple(value.shape)}.")
        plan.append((owner, w, value))
    weights.assign(plan, f"the variables of layer {layer.name!r}")


def user_asset_members(path, layer):
    """`{archive member: bytes}` of the files the layer's own `save_assets(dir)` writes."""
    from plexus.saving import weights
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        layer.save_assets(folder)
        for root, _, names in os.walk(folder):
            for fname in names:
                full = os.path.join(root, fname)
                rel = os.path.relpath(full, folder).replace(os.sep, "/")
                with open(full, "rb") as f:
                    out[weights._asset_path(path, rel)] = f.read()
    return out


def read_user_assets(model, archive, label):
    """For each layer with its own `load_assets`: (layer, {relative name: bytes}) from the
    archive's `assets/<layer path>/`. Names that would leave that folder are refused."""
    from plexus.saving import files, weights
    names = archive.namelist()
    out = []
    for path, layer, _ in weights.walk(model):
        if not callable(getattr(layer, "load_assets", None)) or \
                callable(getattr(layer, "_load_keras_assets", None)):
            continue
        prefix = weights._asset_path(path, "")
        found = {}
        for name in names:
            if not name.startswith(prefix) or name.endswith("/"):
                continue
            rel = name[len(prefix):]
            parts = rel.split("/")
            if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in rel:
                raise LoadError(f"{label}: refusing asset member {name!r} (its path leaves "
                                f"the folder of layer {layer.name!r}).")
            found[rel] = files.read_member(archive, name, label)
        out.append((layer, found))
    return out


def load_user_assets(layer, found, label):
    """Write the layer's asset files to a fresh folder and call its `load_assets(folder)`."""
    with tempfile.TemporaryDirectory() as folder:
        for rel, data in found.items():
            target = os.path.join(folder, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
        try:
            layer.load_assets(folder)
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise LoadError(f"{label}: load_assets() of layer {layer.name!r} failed: "
                            f"{type(e).__name__}: {e}") from e


def build_from_saved_config(layer, build_config, label):
    """Call the layer's own `build_from_config` with what its `get_build_config` saved."""
    try:
        with torch.no_grad():
            layer.build_from_config(build_config)
    except (TypeError, ValueError, KeyError) as e:
        raise LoadError(f"{label}: build_from_config() of layer {layer.name!r} failed: "
                        f"{type(e).__name__}: {e}") from e
    layer.built = True
