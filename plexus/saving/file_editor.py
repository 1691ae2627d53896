"""`KerasFileEditor`: inspect, edit and resave the weights of a `.keras` or `.weights.h5`
file (for instance to adapt old weights to a changed architecture), as
`keras.saving.KerasFileEditor`.

The weights are read into `weights_dict`, a nested dict that follows the file's groups
(`{"layers": {"dense": {"0": kernel, "1": bias}}}`: each object's `vars` group becomes the
object's own entries); edits change that dict; `save` writes it as a `.weights.h5` file that
`load_weights` reads. Files are read with the same checks as `load_model` (no links, no
external or virtual datasets, declared sizes checked) and nothing in them is executed.
"""
import os

import numpy as np

from plexus.saving import files, h5, limits
from plexus.saving.errors import LoadError, as_load_errors


def _read_tree(group, label, path, metadata):
    """A group as a nested dict: datasets of its `vars` subgroup become its entries, other
    subgroups nested dicts (empty ones left out)."""
    if path.count("/") > limits.MAX_CONFIG_DEPTH:
        raise LoadError(f"{label}: its groups are nested over {limits.MAX_CONFIG_DEPTH} deep "
                        f"(at {path[:200]!r}...); refused.")
    attrs = {k: h5.attr_value(group, k, label) for k in group.attrs}
    if attrs:
        metadata[path or "/"] = attrs
    out = {}
    for name in group.keys():
        obj = h5.child(group, name, label)
        where = f"{path}/{name}"
        if isinstance(obj, h5.h5py.Dataset):
            out[name] = h5.read_dataset(obj, None, label, f"weight {where}")
        elif name == "vars":
            vars_attrs = {k: h5.attr_value(obj, k, label) for k in obj.attrs}
            if vars_attrs:
                metadata[path or "/"] = {**metadata.get(path or "/", {}), **vars_attrs}
            for var_name in obj.keys():
                ds = h5.child(obj, var_name, label, "dataset")
                out[var_name] = h5.read_dataset(ds, None, label, f"weight {where}/{var_name}")
        else:
            sub = _read_tree(obj, label, where, metadata)
            if sub:
                out[name] = sub
    return out


def _spec_of(model):
    """The weights dict a model's own `.weights.h5` file would hold."""
    from plexus.saving import weights as weights_io
    data = files.h5_bytes(lambda f: weights_io.write(model, f))
    f = h5.open_h5(data, f"the weights of model {model.name!r}")
    try:
        return _read_tree(f, "the reference model", "", {})
    finally:
        f.close()


def _count(tree, name):
    return sum(_count(v, name) for v in tree.values() if isinstance(v, dict)) + (name in tree)


class KerasFileEditor:
    """Inspect, edit and resave the weights of a `.keras` or `.weights.h5` file.

    Args:
        filepath: the file to open.

    Example:
        >>> editor = KerasFileEditor("model.keras")
        >>> editor.summary()
        >>> editor.delete_object("layers/dense_2")
        >>> editor.add_object("layers/einsum_dense", weights={"0": kernel, "1": bias})
        >>> editor.save("edited.weights.h5")
    """

    def __init__(self, filepath):
        self.filepath = os.fspath(filepath)
        if not self.filepath.endswith((".keras", ".weights.h5")):
            raise ValueError(f"KerasFileEditor: expected a .keras or .weights.h5 file; "
                             f"received {self.filepath!r}.")
        label = files.label_of(filepath)
        self.config = self.metadata = None
        self.model = None
        self.object_metadata = {}
        with limits.loading(label), as_load_errors(label):  # (the loaders' checks)
            self.weights_dict = self._read(label)
        print(f"Keras model file '{self.filepath}'")
        if self.metadata:
            print(f"Saved with Keras {self.metadata.get('keras_version')} - date: "
                  f"{self.metadata.get('date_saved')}")

    def _read(self, label):
        """The weights tree (and, from a `.keras` file, its config and metadata)."""
        source = self.filepath
        if self.filepath.endswith(".keras"):
            with files.open_zip(self.filepath) as archive:
                self.config = files.read_json_member(archive, "config.json", label)
                self.metadata = files.read_json_member(archive, "metadata.json", label,
                                                       required=False)
                source = files.read_member(archive, "model.weights.h5", label)
        f = h5.open_h5(source, label)
        try:
            return _read_tree(f, label, "", self.object_metadata)
        finally:
            f.close()

    # ------------------------------------------------------------------ inspecting
    def summary(self):
        """Print the file's weights, object by object."""
        print("Weights structure")
        self._print(self.weights_dict, "  ", "")

    def _print(self, tree, prefix, path):
        items = list(tree.items())
        for i, (key, value) in enumerate(items):
            last = i == len(items) - 1
            connector = "└─ " if last else "├─ "
            where = f"{path}/{key}"
            if isinstance(value, dict):
                name = self.object_metadata.get(where, {}).get("name")
                print(f"{prefix}{connector}{key}" + (f" ('{name}')" if name else ""))
                self._print(value, prefix + ("    " if last else "│   "), where)
            else:
                print(f"{prefix}{connector}{key}: shape={value.shape}, dtype={value.dtype}")

    def compare(self, reference_model):
        """List the differences between the file's weights and `reference_model`'s (missing
        objects or weights on either side, shape mismatches).

        Returns:
            `{"status": "success" or "error", "error_count": ..., "match_count": ...}`, each
            difference and each matching weight counted once (Keras 3.15's counts add those
            of earlier objects again inside nested ones).
        """
        print("Running comparison")
        reference = _spec_of(reference_model)
        checked = set()

        def walk(target, ref, path, target_name, ref_name):
            errors = matches = 0
            for key, ref_value in ref.items():
                where = f"{path}/{key}"
                if where in checked:
                    continue
                if key not in target:
                    errors += 1
                    checked.add(where)
                    kind = "Object" if isinstance(ref_value, dict) else "Weight"
                    print(f"...{kind} {where} present in {ref_name}, missing from "
                          f"{target_name}")
                elif isinstance(ref_value, dict):
                    e, m = walk(target[key], ref_value, where, target_name, ref_name)
                    errors, matches = errors + e, matches + m
                elif np.shape(target[key]) != np.shape(ref_value):
                    errors += 1
                    checked.add(where)
                    print(f"...Weight shape mismatch for {where}\n    In {ref_name}: "
                          f"shape={np.shape(ref_value)}\n    In {target_name}: "
                          f"shape={np.shape(target[key])}")
                else:
                    matches += 1
            return errors, matches

        errors, matches = walk(self.weights_dict, reference, "", "saved file",
                               "reference model")
        errors += walk(reference, self.weights_dict, "", "reference model", "saved file")[0]
        print("─────────────────────")
        if errors == 0:
            print("Comparison successful: saved file is compatible with the reference model")
            print(f"    Found {matches} matching weight{'' if matches == 1 else 's'}")
        else:
            print(f"Found {errors} error{'' if errors == 1 else 's'}: saved file is not "
                  "compatible with the reference model")
        return {"status": "success" if errors == 0 else "error", "error_count": errors,
                "match_count": matches}

    # ------------------------------------------------------------------ editing
    def _edit(self, edit, source_name, target_name=None):
        if target_name is not None and "/" in target_name:
            raise ValueError(f"KerasFileEditor: the new name must be a leaf name, not a path; "
                             f"received {target_name!r}.")
        if "/" in source_name:
            tree, leaf = self._parent(source_name)
            if leaf not in tree:
                raise ValueError(f"KerasFileEditor: path {source_name!r} is not in the file.")
            edit(tree, leaf, target_name)
            return
        found = _count(self.weights_dict, source_name)
        if found > 1:
            raise ValueError(f"KerasFileEditor: the name {source_name!r} occurs {found} times "
                             "in the file; pass its full path (see summary()).")
        if found == 0:
            raise ValueError(f"KerasFileEditor: the name {source_name!r} is not in the file; "
                             "summary() lists its objects.")

        def visit(tree):
            for value in list(tree.values()):
                if isinstance(value, dict):
                    visit(value)
            if source_name in tree:
                edit(tree, source_name, target_name)
        visit(self.weights_dict)

    def _parent(self, path):
        """(the dict holding the last part of `path`, that part); a ValueError when a part
        before it is missing or is a weight."""
        parts = path.split("/")
        tree = self.weights_dict
        for i, part in enumerate(parts[:-1]):
            if not isinstance(tree.get(part), dict):
                what = "a weight, not an object" if part in tree else "not in the file"
                raise ValueError(f"KerasFileEditor: {'/'.join(parts[:i + 1])!r} (in path "
                                 f"{path!r}) is {what}.")
            tree = tree[part]
        return tree, parts[-1]

    @staticmethod
    def _object(tree, name):
        if not isinstance(tree[name], dict):
            raise ValueError(f"KerasFileEditor: {name!r} is a weight, not an object; name the "
                             "object that holds it.")
        return tree[name]

    def rename_object(self, object_name, new_name):
        """Rename an object (e.g. `"dense_2"` or `"layers/dense_2"`) to `new_name`."""
        def rename(tree, source, target):
            tree[target] = tree.pop(source)
        self._edit(rename, object_name, new_name)

    def delete_object(self, object_name):
        """Remove an object (a name or a path) and its weights."""
        self._edit(lambda tree, source, target: tree.pop(source), object_name)

    def add_object(self, object_path, weights):
        """Add an object at `object_path` (e.g. `"layers/dense_2"`) with `weights`, a dict of
        weight name (`"0"`, `"1"`, ...) -> array."""
        _check_weights(weights)
        tree, leaf = self._parent(object_path)
        tree[leaf] = {k: np.asarray(v) for k, v in weights.items()}

    def delete_weight(self, object_name, weight_name):
        """Remove the weight `weight_name` (e.g. `"0"`) of an object."""
        def delete(tree, source, target):
            obj = self._object(tree, source)
            if weight_name not in obj:
                raise ValueError(f"KerasFileEditor: weight {weight_name!r} is not in object "
                                 f"{object_name!r}; it holds {list(obj)}.")
            obj.pop(weight_name)
        self._edit(delete, object_name)

    def add_weights(self, object_name, weights):
        """Add weights (weight name -> array) to an existing object."""
        _check_weights(weights)
        self._edit(lambda tree, source, target: self._object(tree, source).update(
            {k: np.asarray(v) for k, v in weights.items()}), object_name)

    # ------------------------------------------------------------------ saving
    def save(self, filepath):
        """Write the (edited) weights to `filepath`, a `.weights.h5` file."""
        filepath = os.fspath(filepath)
        if not filepath.endswith(".weights.h5"):
            raise ValueError(f"KerasFileEditor.save: expected a .weights.h5 path; received "
                             f"{filepath!r}.")
        import h5py

        def write(group, tree, path):
            leaves = {k: v for k, v in tree.items() if not isinstance(v, dict)}
            if leaves:
                vars_group = group.require_group("vars")
                name = self.object_metadata.get(path or "/", {}).get("name")
                if name is not None:
                    vars_group.attrs["name"] = name
                for key, value in leaves.items():
                    vars_group.create_dataset(key, data=np.asarray(value))
            for key, value in tree.items():
                if isinstance(value, dict) and value:
                    write(group.require_group(key), value, f"{path}/{key}")

        with files.atomic_path(filepath) as tmp:
            with h5py.File(tmp, "w") as f:
                write(f, self.weights_dict, "")

    def resave_weights(self, filepath):
        """`save(filepath)`."""
        self.save(filepath)


def _check_weights(weights):
    if not isinstance(weights, dict):
        raise ValueError(f"KerasFileEditor: weights must be a dict of weight name (usually "
                         f"'0', '1', ...) -> array; received {type(weights).__name__}.")
