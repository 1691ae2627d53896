"""Atomic writes and careful reads of `.keras` archives.

Every file is written to a temporary file in the destination folder and moved into place with
`os.replace`, so a crash or a kill during a save leaves the previous file intact. The temporary
file is removed when the save fails; one left behind by a killed process is removed by the next
save to the same path (only files whose name, host, dead process, owner and first bytes prove
them to be plexus's temporary files for that path). A saved file keeps the permissions of the
file it replaces (new files get the usual ones, as from `open()`), and saving to a symbolic
link replaces the link's target, keeping the link.

Archives are read member by member, by fixed names (`config.json`, `metadata.json`,
`model.weights.h5`): nothing is extracted to disk, so member names such as `../../etc/passwd`
are never used as paths.
"""
import contextlib
import io
import lzma
import os
import re
import secrets
import socket
import stat
import struct
import zipfile
import zlib

from plexus.saving import limits
from plexus.saving.errors import LoadError
from plexus.saving.h5 import check_regular_file

_TEMP_TAG = "plexus-tmp"


def _host():
    return re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname())[:64] or "host"


def _temp_name(base):
    return f".{base}.{_TEMP_TAG}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _process_alive(pid):
    if os.name != "posix":
        return True  # no safe way to ask (os.kill would signal it): never sweep
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists (another user's), or we cannot tell: keep its file
    return True


def _is_stale_temp(folder, name, pattern):
    """Whether `folder/name` is provably a temporary file of a plexus save that was killed."""
    m = pattern.match(name)
    if m is None or m.group("host") != _host() or _process_alive(int(m.group("pid"))):
        return False
    path = os.path.join(folder, name)
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():  # (POSIX only here)
            return False
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    # what plexus writes first: a zip or HDF5 header (HDF5 may not have written it yet)
    return head[:2] == b"PK" or head[:4] == b"\x89HDF" or not head.strip(b"\x00")


def sweep_stale_temps(filepath):
    """Remove temporary files that killed saves to `filepath` left behind."""
    folder, base = os.path.split(os.path.abspath(filepath))
    pattern = re.compile(rf"^\.{re.escape(base)}\.{_TEMP_TAG}-(?P<host>[A-Za-z0-9-]+)-"
                         rf"(?P<pid>[0-9]+)-[0-9a-f]{{8}}\.tmp$")
    prefix = f".{base}.{_TEMP_TAG}-"
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        if _is_stale_temp(folder, name, pattern):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))


def _keep_mode(tmp, target):
    """Give `tmp` the permissions (and, where allowed, owner) of the file it will replace."""
    try:
        st = os.stat(target)
    except OSError:
        return  # a new file: `os.open(..., 0o666)` already applied the umask
    os.chmod(tmp, stat.S_IMODE(st.st_mode) & 0o777)
    mine = os.stat(tmp)
    if (mine.st_uid, mine.st_gid) != (st.st_uid, st.st_gid):
        with contextlib.suppress(OSError):
            os.chown(tmp, st.st_uid, st.st_gid)


def _fsync_folder(folder):
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(filepath):
    """Yield a temporary path next to `filepath`; on success move it to `filepath`.

    A symbolic link is written through: its target is replaced (atomically) and the link stays.
    """
    filepath = os.fspath(filepath)
    target = os.path.realpath(filepath) if os.path.islink(filepath) else filepath
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save to {filepath}: folder {folder} does not exist.")
    sweep_stale_temps(target)
    tmp = os.path.join(folder, _temp_name(os.path.basename(target)))
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        _keep_mode(tmp, target)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def label_of(filepath):
    return repr(os.fspath(filepath)) if isinstance(filepath, (str, os.PathLike)) else "the file"


def open_zip(filepath):
    label = label_of(filepath)
    check_regular_file(filepath, label)
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


# What zipfile and its decompressors raise on corrupt, truncated or encrypted members.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
               NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError, struct.error)


def member_info(archive, name, label, max_bytes=limits.MAX_MEMBER_BYTES, required=True):
    """The `ZipInfo` of member `name` (None when absent and not `required`), its declared size
    checked against `max_bytes` and its compressed size."""
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
    if info.file_size > info.compress_size * limits.MAX_COMPRESSION_RATIO + (1 << 20):
        raise LoadError(
            f"{label}: member {name!r} declares {info.file_size} bytes from {info.compress_size} "
            "compressed ones, more than any real compression gives (a zip bomb); refused."
        )
    if info.flag_bits & 0x1:
        raise LoadError(f"{label}: member {name!r} is encrypted; plexus reads only unencrypted "
                        ".keras archives (decrypt it with a zip tool first).")
    return info


def read_member(archive, name, label, max_bytes=limits.MAX_MEMBER_BYTES, required=True):
    """The bytes of archive member `name`, its declared size checked before reading (against
    `max_bytes`, its compressed size and the load's budget)."""
    info = member_info(archive, name, label, max_bytes, required)
    if info is None:
        return None
    limits.charge(info.file_size, f"member {name!r}")
    try:
        with archive.open(info) as fh:
            data = fh.read(max_bytes + 1)
    except _ZIP_ERRORS as e:
        raise LoadError(f"{label}: member {name!r} is corrupt or truncated: {e}") from e
    if len(data) != info.file_size:
        raise LoadError(f"{label}: member {name!r} holds {len(data)} bytes, not the "
                        f"{info.file_size} it declares; the archive is corrupt.")
    return data


def read_json_member(archive, name, label, required=True):
    data = read_member(archive, name, label, limits.MAX_CONFIG_BYTES, required)
    if data is None:
        return None
    return limits.parse_json(data, f"{label} ({name})")


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
