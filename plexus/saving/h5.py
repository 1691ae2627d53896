"""Careful HDF5 access: only plain groups and numeric datasets of an expected shape are read.

`open_h5` scans the whole file before anything else reads it, looking at link kinds without
following any link: soft, external and user-defined links, virtual datasets, datasets stored in
other files and datasets with plugin filters are refused with a `LoadError` naming the path
inside the file, and every dataset's declared size is checked against the bytes it occupies.
The scan's total of stored numbers sets the load's allocation budget (`limits.Budget`). Paths
are then walked one component at a time, and a dataset's shape is compared with the shape the
model expects before a single byte of it is read; data in another byte order is converted.
"""
import io
import math
import os
import stat

import numpy as np

from plexus.saving import limits
from plexus.saving.errors import LoadError

_NUMERIC_KINDS = "biuf"


class _LazyH5py:
    """h5py, imported on first use: it adds a noticeable share to `import plexus`."""

    def __getattr__(self, name):
        import h5py
        return getattr(h5py, name)


h5py = _LazyH5py()


def check_regular_file(filepath, label):
    """Refuse paths that are not regular files (a FIFO or a device would block or never end)."""
    try:
        mode = os.stat(filepath).st_mode
    except FileNotFoundError as e:
        raise LoadError(f"No such file: {label}.") from e
    except OSError as e:
        raise LoadError(f"Cannot read {label}: {e}") from e
    if stat.S_ISDIR(mode):
        raise LoadError(f"{label} is a folder; plexus loads .keras and .h5 files, not "
                        "TensorFlow SavedModel folders.")
    if not stat.S_ISREG(mode):
        raise LoadError(f"{label} is not a regular file (a pipe, socket or device); refused.")


def open_h5(source, label):
    """Open an HDF5 file (a path or bytes) for reading, scanned (see `scan`) before it is
    returned, with a clear error when it is not one."""
    if not isinstance(source, (bytes, bytearray)):
        check_regular_file(source, label)
    try:
        f = h5py.File(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source,
                      "r")
    except FileNotFoundError as e:
        raise LoadError(f"No such file: {label}.") from e
    except (OSError, ValueError) as e:
        raise LoadError(
            f"{label} is not a readable HDF5 file (it may be truncated, corrupt or of another "
            f"format): {e}"
        ) from e
    try:
        stored = scan(f, label)
    except BaseException:
        f.close()
        raise
    budget = limits.current()
    if budget is not None:
        budget.allow(stored)
    return f


_LINK_KINDS = {1: "a soft link", 64: "an external link"}


def _link_kind(code):
    return _LINK_KINDS.get(code, f"a user-defined link (type {code})")


def _links(group_id, path, label):
    """[(name, link type)] of one group, read without following any link."""
    out = []
    try:
        group_id.links.iterate(lambda name, info: out.append((name, info.type)), info=True)
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise LoadError(f"{label}: cannot list group {path}: {e}") from e
    return out


def scan(f, label):
    """Check every object of the open file `f`; return the bytes of numbers it stores.

    Walks the file with its own stack, visiting each object once (hard links may form loops),
    and never follows anything but hard links.
    """
    stack, seen, stored, count = [(f.id, "")], set(), 0, 0
    while stack:
        group_id, path = stack.pop()
        for name, kind in _links(group_id, path or "/", label):
            where = f"{path}/{name.decode('utf8', 'replace')}"
            if kind != h5py.h5l.TYPE_HARD:
                raise LoadError(
                    f"{label} contains {_link_kind(kind)} at {where}; plexus reads only plain "
                    "groups and datasets from weight files (a link could lead to another file "
                    "or a device). Refused before following it."
                )
            count += 1
            if count > limits.MAX_H5_OBJECTS:
                raise LoadError(f"{label} holds more than {limits.MAX_H5_OBJECTS} HDF5 objects "
                                "(plexus.saving.limits.MAX_H5_OBJECTS); refused.")
            try:
                oid = h5py.h5o.open(group_id, name)
                info = h5py.h5o.get_info(oid)
            except (KeyError, OSError, ValueError, RuntimeError) as e:
                raise LoadError(f"{label}: cannot open {where}: {e}") from e
            if (info.fileno, info.addr) in seen:
                continue
            seen.add((info.fileno, info.addr))
            if isinstance(oid, h5py.h5g.GroupID):
                stack.append((oid, where))
            elif isinstance(oid, h5py.h5d.DatasetID):
                stored += _check_dataset(oid, where, label)
    return stored


# HDF5 filters built into the library or h5py (deflate, shuffle, fletcher32, szip, nbit,
# scale-offset, lzf); an unknown filter would make HDF5 search its plugin folders for a library
# to load.
_ALLOWED_FILTERS = {1, 2, 3, 4, 5, 6, 32000}
_SLACK_BYTES = 64 << 10
# Reading a chunked dataset decodes whole chunks: one may not be much larger than its data.
_MAX_CHUNK_BYTES = 1 << 20


def _check_dataset(dsid, where, label):
    """Refuse datasets stored elsewhere or needing plugins, and declared sizes the file does
    not back; return the declared bytes of a numeric dataset (0 for others)."""
    try:
        plist = dsid.get_create_plist()
        layout = plist.get_layout()
        external = plist.get_external_count()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        points = dsid.get_space().get_simple_extent_npoints()
        itemsize = dsid.get_type().get_size()
        kind = dsid.dtype.kind
        stored = dsid.get_storage_size()
        chunk = plist.get_chunk() if layout == h5py.h5d.CHUNKED else None
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise LoadError(f"{label}: cannot inspect dataset {where}: {e}") from e
    if layout == h5py.h5d.VIRTUAL or external:
        raise LoadError(f"{label}: dataset {where} stores its data outside the file "
                        f"({'a virtual dataset' if external == 0 else 'external storage'}); "
                        "refused.")
    unknown = [code for code in filters if code not in _ALLOWED_FILTERS]
    if unknown:
        raise LoadError(f"{label}: dataset {where} uses HDF5 filter(s) {unknown}, which would "
                        "need a plugin library; refused.")
    if kind not in _NUMERIC_KINDS:
        return 0
    declared = points * itemsize
    chunk_bytes = math.prod(chunk) * itemsize if chunk else 0
    if chunk_bytes > max(declared, _MAX_CHUNK_BYTES):
        raise LoadError(f"{label}: dataset {where} holds {declared} bytes in chunks of "
                        f"{chunk_bytes}; refused (reading it would decode far more than it holds).")
    ratio = limits.MAX_COMPRESSION_RATIO if filters else 1
    if declared > stored * ratio + _SLACK_BYTES:
        raise LoadError(
            f"{label}: dataset {where} declares {declared} bytes but occupies {stored} in the "
            "file; refused (a truncated file, or one crafted to make the load allocate memory "
            "it does not hold)."
        )
    return declared


def _check_component(name, label):
    if not isinstance(name, str) or not name or name in (".", "..") or "\x00" in name \
            or "/" in name:
        raise LoadError(f"Invalid HDF5 path component {name!r} in {label}.")


def child(group, name, label, kind=None):
    """`group[name]` for one path component, refusing links; None when absent."""
    _check_component(name, label)
    key = name.encode("utf8")
    try:
        if not group.id.links.exists(key):
            return None
        link_type = group.id.links.get_info(key).type
    except (KeyError, OSError, ValueError, TypeError, RuntimeError) as e:
        raise LoadError(f"Cannot read {name!r} in {label}: {e}") from e
    if link_type != h5py.h5l.TYPE_HARD:
        raise LoadError(
            f"{label} contains {_link_kind(link_type)} at {group.name.rstrip('/')}/{name}; "
            "plexus reads only plain groups and datasets from weight files."
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


def _native(dtype):
    """The dtype to read `dtype` into: native byte order; long doubles as float64."""
    if dtype.kind == "f" and dtype.itemsize > 8:
        return np.dtype("float64")
    return dtype.newbyteorder("=")


def read_dataset(ds, expected_shape, label, what):
    """The contents of `ds` as a native-byte-order array, after checking its dtype and shape
    (`expected_shape` None: any shape, for state whose shape the caller checks afterwards)."""
    if ds.dtype.kind not in _NUMERIC_KINDS:
        raise LoadError(
            f"{label}: dataset {ds.name} for {what} has dtype {ds.dtype}; weights must be numbers."
        )
    if expected_shape is not None and tuple(ds.shape) != tuple(expected_shape):
        raise LoadError(
            f"{label}: {what} has shape {tuple(expected_shape)} in the model, but the file holds "
            f"shape {tuple(ds.shape)} at {ds.name}. The file was saved from a different "
            "architecture."
        )
    dtype = _native(ds.dtype)
    limits.charge(ds.size * dtype.itemsize, f"{what} ({ds.name})")
    out = np.empty(ds.shape, dtype)
    try:
        if out.size:
            ds.read_direct(out)
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise LoadError(f"{label}: reading {ds.name} for {what} failed (corrupt file?): {e}") from e
    return out


def attr_value(obj, key, label):
    """Attribute `key` of `obj` (None when absent), its size charged to the load's budget."""
    try:
        if key not in obj.attrs:
            return None
        aid = obj.attrs.get_id(key)
        limits.charge(aid.get_space().get_simple_extent_npoints() * aid.get_type().get_size(),
                      f"attribute {key!r}")
        return obj.attrs[key]
    except LoadError:
        raise
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as e:
        raise LoadError(f"{label}: cannot read attribute {key!r}: {e}") from e


def attr_strings(obj, key, label):
    """A list-of-strings attribute (`layer_names`, `weight_names`) decoded to `str`."""
    value = attr_value(obj, key, label)
    if value is None:
        return None
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


def attr_text(obj, key, label):
    """A text attribute (a JSON config) as `str`, or None when absent."""
    value = attr_value(obj, key, label)
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes):
        value = value.decode("utf8", errors="replace")
    if not isinstance(value, str):
        raise LoadError(f"{label}: attribute {key!r} must hold text; found "
                        f"{type(value).__name__}.")
    return value
