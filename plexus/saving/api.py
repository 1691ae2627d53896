"""`save_model` / `load_model`, `save_weights` / `load_weights`, JSON configs.

File formats:
    `.keras`        a zip of `metadata.json`, `config.json` and `model.weights.h5` (Keras 3)
    `.weights.h5`   weights only, Keras 3's layout (`layers/dense/vars/0`, ...)
    `.h5`           Keras 2's layout (`layer_names`, `weight_names`): application weights,
                    and full models (config + weights, no optimizer state)
"""
import datetime
import json
import os
import warnings

import plexus
from plexus.distribution import runtime as distributed
from plexus.saving import (
    custom_state, files, legacy_h5, limits, optimizer_state, registry, weights)
from plexus.saving import h5 as h5util
from plexus.saving.context import check_custom_objects
from plexus.saving.errors import LoadError, as_load_errors
from plexus.saving.serialization import (
    deserialize_keras_object, load_context, serialize_keras_object, serialize_layer, with_module,
)


def _path_str(filepath):
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"Expected a file path (str or os.PathLike); received {filepath!r}.")
    return os.fspath(filepath)


# ------------------------------------------------------------------------------------ saving
def model_to_config(model):
    """The full serialized model: class, config, and compile config when compiled."""
    out = serialize_layer(model)
    compile_config = getattr(model, "_compile_config", None)
    if getattr(model, "compiled", False) and custom_state.overrides(model, "get_compile_config"):
        compile_config = model.get_compile_config()  # the model's own compile settings
    if getattr(model, "compiled", False) and compile_config is not None:
        out["compile_config"] = with_module(serialize_keras_object(compile_config))
    return out


def save_model(model, filepath, overwrite=True, zipped=True, **kwargs):
    """Save a model (architecture, weights, compile config, optimizer state) to `.keras`.

    Args:
        model: the model to save.
        filepath: a path ending in `.keras`, or in `.h5` for Keras 2's full-model format
            (config and weights, no optimizer state).
        overwrite: replace an existing file (the replacement is atomic).
        save_format: `"keras"` or `"h5"` (Keras 2 code passes it; the suffix decides otherwise).
    """
    filepath = _path_str(filepath)
    save_format = kwargs.pop("save_format", None)
    if kwargs:
        raise TypeError(f"save_model: unexpected keyword argument(s) {', '.join(kwargs)}.")
    if save_format not in (None, "keras", "h5"):
        raise ValueError(f"save_format={save_format!r} is not supported; plexus writes "
                         "'keras' (.keras files) and 'h5' (Keras 2's .h5 files).")
    if save_format == "h5" or filepath.endswith(".h5") or filepath.endswith(".hdf5"):
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{filepath} exists and overwrite=False.")
        distributed.save_on_chief(model, lambda: _save_legacy_h5_model(model, filepath))
        return
    if not filepath.endswith(".keras"):
        raise ValueError(f"Model files must end in '.keras'; received {filepath!r}.")
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False.")

    def write(f):
        weights.write(model, f)
        optimizer_state.write(model, f)

    def save():
        config = json.dumps(model_to_config(model))
        metadata = json.dumps({"keras_version": "3.15.1", "plexus_version": plexus.__version__,
                               "date_saved": datetime.datetime.now().strftime(
                                   "%Y-%m-%d@%H:%M:%S")})
        files.write_archive(filepath, {"metadata.json": metadata.encode(),
                                       "config.json": config.encode(),
                                       "model.weights.h5": files.h5_bytes(write),
                                       **weights.asset_members(model)})
    distributed.save_on_chief(model, save)  # (under a distribution rank 0 writes)


def _save_legacy_h5_model(model, filepath):
    """Keras 2's full-model `.h5`: the config as an attribute, weights in `model_weights`
    (no optimizer state; prefer `.keras`, which keeps it)."""
    import h5py
    config = serialize_layer(model)
    with files.atomic_path(filepath) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["model_config"] = json.dumps(config)
            f.attrs["backend"] = "torch"
            f.attrs["keras_version"] = "3.15.1"
            compile_config = getattr(model, "_compile_config", None)
            if getattr(model, "compiled", False) and compile_config is not None:
                training = serialize_keras_object(compile_config)
                training["optimizer_config"] = training.pop("optimizer", None)
                f.attrs["training_config"] = json.dumps(training)
            legacy_h5.write(model, f.create_group("model_weights"))


def save_weights(model, filepath, overwrite=True):
    """Save the weights: Keras 3 layout for `*.weights.h5` (with the compiled model's optimizer
    state, as Keras writes it), Keras 2 layout for `*.h5`."""
    import h5py
    filepath = _path_str(filepath)
    if not (filepath.endswith(".h5") or filepath.endswith(".hdf5")):
        raise ValueError(
            f"Weight files must end in '.weights.h5' (or '.h5' for Keras 2's layout); received "
            f"{filepath!r}."
        )
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False.")
    keras3 = filepath.endswith(".weights.h5")

    def write():
        with files.atomic_path(filepath) as tmp:
            with h5py.File(tmp, "w") as f:
                (weights.write if keras3 else legacy_h5.write)(model, f)
                if keras3:  # Keras 3 writes the compiled model's optimizer state alongside
                    optimizer_state.write(model, f)
    distributed.save_on_chief(model, write)  # (under a distribution rank 0 writes)


# ------------------------------------------------------------------------------------ loading
def model_from_config(config, custom_objects=None, safe_mode=True, source=None):
    """Build a model (without weights) from `{"class_name": ..., "config": ...}`."""
    check_custom_objects(custom_objects)
    where = f" in {source}" if source else ""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise LoadError(f"Invalid model config{where}: expected a JSON object with 'class_name'.")
    limits.check_depth(config, f"The model config{where}")
    with load_context(custom_objects, safe_mode, source), limits.loading(source), \
            as_load_errors(f"The model config{where}"):
        config = dict(config)
        config.setdefault("config", {})
        model = deserialize_keras_object(config, category="layers")
    if not registry.is_model(model) and not getattr(model, "_saved_as_model", False):
        raise LoadError(f"{source or 'The config'} describes a {type(model).__name__}, not a model.")
    return model


def model_from_json(json_string, custom_objects=None, safe_mode=True):
    """Build a model (without weights) from `model.to_json()`'s output."""
    config = limits.parse_json(json_string, "model_from_json: the JSON text")
    return model_from_config(config, custom_objects, safe_mode)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved with `model.save()` (plexus or Keras 3) or a Keras 2 `.h5` model.

    Args:
        filepath: a `.keras` file, or a full-model `.h5` file.
        custom_objects: `{name: class_or_function}` for your own layers, losses, functions.
        compile: re-compile the model with its saved compile config (and optimizer state).
        safe_mode: refuse anything that would run code from the file (Lambda bytecode). Even
            with `safe_mode=False`, plexus never unpickles or unmarshals file contents.

    Raises:
        plexus.saving.LoadError (a ValueError) naming the file and what is wrong with it.
    """
    filepath = _path_str(filepath)
    check_custom_objects(custom_objects)
    label = files.label_of(filepath)
    h5util.check_regular_file(filepath, label)
    with open(filepath, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89HDF"):
        return _load_legacy_h5_model(filepath, label, custom_objects, compile, safe_mode)
    if not head.startswith(b"PK"):
        raise LoadError(
            f"{label} is neither a .keras archive (zip) nor an HDF5 file; its first bytes are "
            f"{head!r}. plexus does not read pickles or other formats."
        )
    member = f"{label} (model.weights.h5)"
    with limits.loading(label) as budget:
        with files.open_zip(filepath) as archive:
            config = files.read_json_member(archive, "config.json", label)
            files.read_json_member(archive, "metadata.json", label, required=False)
            if not isinstance(config, dict):
                raise LoadError(f"{label}: config.json must hold a JSON object.")
            # until the weights are scanned, the config may ask for what the member could hold
            budget.allow(files.member_info(archive, "model.weights.h5", label).file_size)
            model = model_from_config(config, custom_objects, safe_mode, source=label)
            h5_data = files.read_member(archive, "model.weights.h5", label,
                                        max_bytes=_expected_h5_bytes(model))
            assets = weights.read_assets(
                model, lambda name: files.read_member(archive, name, label, required=False))
            own_assets = custom_state.read_user_assets(model, archive, label)
        with h5util.open_h5(h5_data, member) as f:
            with as_load_errors(member):
                staged = weights.stage(weights.read(model, f, member), member)
            commit_optimizer = None
            if compile:
                _compile_from_config(model, config.get("compile_config"), label, custom_objects)
                with as_load_errors(f"{member}, optimizer state"):
                    commit_optimizer = optimizer_state.stage(model, f, member)
    _commit(staged, commit_optimizer, member)
    with as_load_errors(f"{label} (assets)"):
        for layer, data in assets:  # after the variables, as Keras (idf weights first)
            layer._load_keras_assets(data.get)
    for layer, found in own_assets:  # layers with their own `load_assets(folder)`
        custom_state.load_user_assets(layer, found, label)
    return model


def _commit(staged, commit_optimizer, label):
    """Put everything a load staged in place: the optimizer first (an optimizer reading its own
    state may still refuse it), then the weights, whose copies cannot fail."""
    if commit_optimizer is not None:
        with as_load_errors(f"{label}, optimizer state"):
            commit_optimizer()
    weights.commit(staged, label)


def _expected_h5_bytes(model):
    """A generous bound on the weights file of `model`: weights, optimizer slots, overhead."""
    weight_bytes = sum(p.numel() * p.element_size() for p in model.weights)
    return 4 * weight_bytes + (64 << 20)


def _load_legacy_h5_model(filepath, label, custom_objects, compile, safe_mode):
    with limits.loading(label), h5util.open_h5(filepath, label) as f:
        config = legacy_h5.model_config(f, label)
        model = model_from_config(config, custom_objects, safe_mode, source=label)
        with as_load_errors(label):
            staged = weights.stage(legacy_h5.read(model, f, label), label)
        if compile:
            training = legacy_h5.training_config(f, label)
            _compile_from_config(model, training, label, custom_objects)
    weights.commit(staged, label)
    return model


def _compile_from_config(model, compile_config, label, custom_objects):
    if not compile_config:
        return
    if not hasattr(model, "compile_from_config") and not hasattr(model, "compile"):
        return
    what = f"{label} (compile_config)"
    limits.check_depth(compile_config, what)
    if custom_state.overrides(model, "compile_from_config"):
        # the model's own method gets the config as saved (by its `get_compile_config`), and
        # deserializes what it needs, as in Keras
        with load_context(custom_objects, True, label), as_load_errors(what):
            model.compile_from_config(compile_config)
        return
    with load_context(custom_objects, True, label), as_load_errors(what):
        cfg = deserialize_keras_object(compile_config)
    if not isinstance(cfg, dict):
        raise LoadError(f"{what} must be a JSON object; found {type(cfg).__name__}.")
    if hasattr(model, "compile_from_config"):
        with as_load_errors(what):
            model.compile_from_config(cfg)
        return
    known = ("optimizer", "loss", "metrics", "loss_weights", "weighted_metrics", "run_eagerly",
             "steps_per_execution", "jit_compile")
    try:
        model.compile(**{k: v for k, v in cfg.items() if k in known and v is not None})
    except (TypeError, ValueError, NotImplementedError, AttributeError, KeyError,
            IndexError) as e:
        warnings.warn(f"{label}: the model was loaded, but compiling it with its saved compile "
                      f"config failed ({type(e).__name__}: {e}); call model.compile() yourself.",
                      stacklevel=3)


def load_weights(model, filepath, skip_mismatch=False, by_name=False):
    """Load weights into `model` from a `.weights.h5` (Keras 3), `.h5` (Keras 2) or `.keras` file.

    Args:
        by_name: for Keras 2 `.h5` files, match layers by name instead of by order.
        skip_mismatch: skip weights whose count or shape does not match instead of failing.

    Nothing is assigned unless the whole file checks out (shapes, counts, formats). Optimizer
    state in the file (Keras 3 layouts) is restored into a compiled model's optimizer too (built
    for the model's weights first when needed, so that `fit` resumes exactly).
    """
    filepath = _path_str(filepath)
    label = files.label_of(filepath)
    h5util.check_regular_file(filepath, label)
    with limits.loading(label):
        if filepath.endswith(".keras"):
            with files.open_zip(filepath) as archive:
                source = files.read_member(archive, "model.weights.h5", label)
            label = f"{label} (model.weights.h5)"
        else:
            source = filepath
        with h5util.open_h5(source, label) as f:
            with as_load_errors(label):
                legacy = legacy_h5.is_legacy(f, label)
            if by_name and not legacy:
                raise ValueError(
                    f"by_name=True works with Keras 2 .h5 weight files only; {label} is in "
                    "Keras 3's layout, where weights are matched by position."
                )
            with as_load_errors(label):
                if legacy:
                    plan = legacy_h5.read(model, f, label, by_name=by_name,
                                          skip_mismatch=skip_mismatch)
                else:
                    plan = weights.read(model, f, label, skip_mismatch=skip_mismatch)
                staged = weights.stage(plan, label)
            commit_optimizer = None if legacy else \
                _stage_optimizer(model, f, label, skip_mismatch)
    _commit(staged, commit_optimizer, label)


def _stage_optimizer(model, f, label, skip_mismatch):
    try:
        with as_load_errors(f"{label}, optimizer state"):
            return optimizer_state.stage(model, f, label)
    except LoadError as e:
        if not skip_mismatch:
            raise
        warnings.warn(f"skip_mismatch=True: the optimizer state was not restored: {e}",
                      stacklevel=3)
        return None
