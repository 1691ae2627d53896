"""Atomic writes and careful reads of `.keras` archives.

Every file is written to a temporary file in the destination folder and moved into place with
`os.replace`, so a crash or a kill during a save leaves the previous file intact. Archives are
read member by member, by fixed names (`config.json`, `metadata.json`, `model.weights.h5`):
nothing is extracted to disk, so member names such as `../../etc/passwd` are never used as paths.
"""
import contextlib
import io
import json
import os
import tempfile
import zipfile

from plexus.saving import limits
from plexus.saving.errors import LoadError


@contextlib.contextmanager
def atomic_path(filepath):
    """Yield a temporary path next to `filepath`; on success move it to `filepath`."""
    filepath = os.fspath(filepath)
    folder = os.path.dirname(os.path.abspath(filepath))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save to {filepath}: folder {folder} does not exist.")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(filepath) + ".",
                               suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def label_of(filepath):
    return repr(os.fspath(filepath)) if isinstance(filepath, (str, os.PathLike)) else "the file"


def open_zip(filepath):
    label = label_of(filepath)
    try:
        return zipfile.ZipFile(filepath, "r")
    except FileNotFoundError as e:
        raise LoadError(f"No such file: {label}.") from e
    except IsADirectoryError as e:
        raise LoadError(f"{label} is a folder, not a .keras file.") from e
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise LoadError(
            f"{label} is not a valid .keras archive (a zip file): {e}. It may be truncated, "
            "corrupt, or of another format (a legacy .h5 file should be named *.h5)."
        ) from e


def read_member(archive, name, label, max_bytes=limits.MAX_MEMBER_BYTES, required=True):
    """The bytes of archive member `name`, with its declared size checked before reading."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        if not required:
            return None
        raise LoadError(
            f"{label} has no {name!r} member; it is not a complete .keras file "
            f"(members: {', '.join(archive.namelist()[:10])})."
        ) from None
    if info.file_size > max_bytes:
        raise LoadError(
            f"{label}: member {name!r} declares {info.file_size} bytes, more than the limit of "
            f"{max_bytes} (plexus.saving.limits); refused."
        )
    try:
        with archive.open(info) as fh:
            data = fh.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise LoadError(f"{label}: member {name!r} is corrupt or truncated: {e}") from e
    if len(data) > max_bytes:
        raise LoadError(f"{label}: member {name!r} is larger than the limit of {max_bytes} bytes.")
    return data


def read_json_member(archive, name, label, required=True):
    data = read_member(archive, name, label, limits.MAX_CONFIG_BYTES, required)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise LoadError(f"{label}: {name!r} is not valid JSON (or is nested absurdly deep): "
                        f"{str(e)[:200]}") from e


def write_archive(filepath, members):
    """Write a zip of `{name: bytes}` atomically to `filepath`."""
    with atomic_path(filepath) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in members.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def h5_bytes(write_fn):
    """Run `write_fn(h5py_file)` on an in-memory HDF5 file and return its bytes."""
    import h5py
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        write_fn(f)
    return buf.getvalue()
