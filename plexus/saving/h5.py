"""Careful HDF5 access: only plain groups and numeric datasets of an expected shape are read.

Every path is walked one component at a time; soft and external links, external or virtual
datasets and non-numeric data are refused, and a dataset's shape is compared with the shape the
model expects before a single byte of it is read.
"""
import io

import numpy as np

from plexus.saving.errors import LoadError

_NUMERIC_KINDS = "biuf"


class _LazyH5py:
    """h5py, imported on first use: it adds a noticeable share to `import plexus`."""

    def __getattr__(self, name):
        import h5py
        return getattr(h5py, name)


h5py = _LazyH5py()


def open_h5(source, label, mode="r"):
    """Open an HDF5 file (a path or bytes) for reading, with a clear error when it is not one."""
    try:
        if isinstance(source, (bytes, bytearray)):
            return h5py.File(io.BytesIO(source), mode)
        return h5py.File(source, mode)
    except FileNotFoundError as e:
        raise LoadError(f"No such file: {label}.") from e
    except (OSError, ValueError) as e:
        raise LoadError(
            f"{label} is not a readable HDF5 file (it may be truncated, corrupt or of another "
            f"format): {e}"
        ) from e


def _check_component(name, label):
    if not isinstance(name, str) or not name or name in (".", "..") or "\x00" in name \
            or "/" in name:
        raise LoadError(f"Invalid HDF5 path component {name!r} in {label}.")


def child(group, name, label, kind=None):
    """`group[name]` for one path component, refusing links; None when absent."""
    _check_component(name, label)
    try:
        if name not in group:
            return None
        link = group.get(name, getlink=True)
    except (KeyError, OSError, ValueError, TypeError) as e:
        raise LoadError(f"Cannot read {name!r} in {label}: {e}") from e
    if not isinstance(link, h5py.HardLink):
        raise LoadError(
            f"{label} contains a {type(link).__name__} at {group.name}/{name}; plexus reads only "
            "plain groups and datasets from weight files."
        )
    try:
        obj = group[name]
    except (KeyError, OSError, ValueError) as e:
        raise LoadError(f"Cannot read {group.name}/{name} in {label}: {e}") from e
    if kind == "group" and not isinstance(obj, h5py.Group):
        raise LoadError(f"{label}: expected a group at {obj.name}, found a {type(obj).__name__}.")
    if kind == "dataset" and not isinstance(obj, h5py.Dataset):
        raise LoadError(f"{label}: expected a dataset at {obj.name}, found a {type(obj).__name__}.")
    return obj


def walk(group, path, label, kind=None):
    """Follow a relative `a/b/c` path from `group`; None when any part is absent."""
    if path.startswith("/"):
        raise LoadError(f"Refusing an absolute HDF5 path {path!r} in {label}.")
    parts = path.split("/")
    obj = group
    for i, part in enumerate(parts):
        if not isinstance(obj, h5py.Group):
            return None
        obj = child(obj, part, label, kind if i == len(parts) - 1 else "group")
        if obj is None:
            return None
    return obj


# HDF5 filters built into the library or h5py (deflate, shuffle, fletcher32, szip, lzf);
# an unknown filter would make HDF5 search its plugin folders for a library to load.
_ALLOWED_FILTERS = {1, 2, 3, 4, 32000}


def _check_filters(ds, label):
    try:
        plist = ds.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    except (OSError, ValueError, TypeError) as e:
        raise LoadError(f"{label}: cannot inspect dataset {ds.name}: {e}") from e
    unknown = [f for f in filters if f not in _ALLOWED_FILTERS]
    if unknown:
        raise LoadError(f"{label}: dataset {ds.name} uses HDF5 filter(s) {unknown}, which would "
                        "need a plugin library; refused.")


def read_dataset(ds, expected_shape, label, what):
    """The contents of `ds` as an array, after checking its kind, dtype and shape."""
    if ds.external or ds.is_virtual:
        raise LoadError(f"{label}: dataset {ds.name} stores its data outside the file; refused.")
    _check_filters(ds, label)
    if ds.dtype.kind not in _NUMERIC_KINDS:
        raise LoadError(
            f"{label}: dataset {ds.name} for {what} has dtype {ds.dtype}; weights must be numbers."
        )
    if tuple(ds.shape) != tuple(expected_shape):
        raise LoadError(
            f"{label}: {what} has shape {tuple(expected_shape)} in the model, but the file holds "
            f"shape {tuple(ds.shape)} at {ds.name}. The file was saved from a different "
            "architecture."
        )
    try:
        return np.asarray(ds[()])
    except (OSError, ValueError, TypeError) as e:
        raise LoadError(f"{label}: reading {ds.name} for {what} failed (corrupt file?): {e}") from e


def attr_strings(obj, key, label):
    """A list-of-strings attribute (`layer_names`, `weight_names`) decoded to `str`."""
    try:
        if key not in obj.attrs:
            return None
        value = obj.attrs[key]
    except (OSError, ValueError, TypeError) as e:
        raise LoadError(f"{label}: cannot read attribute {key!r}: {e}") from e
    value = np.atleast_1d(np.asarray(value))
    if value.size == 0:
        return []
    if value.dtype.kind not in "SUO":
        raise LoadError(f"{label}: attribute {key!r} must hold strings.")
    out = []
    for v in value.tolist():
        if isinstance(v, bytes):
            v = v.decode("utf8", errors="replace")
        if not isinstance(v, str):
            raise LoadError(f"{label}: attribute {key!r} must hold strings.")
        out.append(v)
    return out
