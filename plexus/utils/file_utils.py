"""`get_file`: download a file once into Keras's cache folder, check its hash, extract it.

The cache is Keras's (`$KERAS_HOME`, else `~/.keras`, then `datasets/`), so a file Keras
downloaded is reused. Archives are extracted member by member after checking every member:
absolute paths, `..` components, links and device files are refused, so an archive cannot write
outside its folder.
"""
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile


def keras_home():
    """Keras's cache root: `$KERAS_HOME`, else `~/.keras`."""
    return os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))


def cache_path(fname, cache_subdir="datasets", cache_dir=None):
    """Where `get_file` keeps `fname` (without downloading anything)."""
    base = os.path.expanduser(cache_dir) if cache_dir else keras_home()
    return os.path.join(base, cache_subdir, fname)


def _hasher(algorithm, file_hash):
    if algorithm == "auto":
        algorithm = "sha256" if file_hash is not None and len(file_hash) == 64 else "md5"
    if algorithm not in ("sha256", "md5"):
        raise ValueError(f"hash_algorithm must be 'auto', 'sha256' or 'md5'; received "
                         f"{algorithm!r}.")
    return hashlib.sha256() if algorithm == "sha256" else hashlib.md5()


def hash_file(fpath, algorithm="sha256", chunk_size=65535):
    """The hex digest of a file."""
    h = _hasher(algorithm, None) if algorithm != "auto" else hashlib.sha256()
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=65535):
    """Whether the file's hash (sha256 or md5) equals `file_hash`."""
    h = _hasher(algorithm, file_hash)
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest() == str(file_hash)


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False,
             archive_format="auto", cache_dir=None, force_download=False):
    """Download a file from `origin` unless it is already in the cache; return its path.

    Args:
        fname: the file's name in the cache (defaults to the URL's last part).
        origin: the URL.
        file_hash: the expected sha256 (or md5) hex digest; a cached file that does not match
            is downloaded again, a download that does not match is an error.
        cache_subdir: the folder under the cache root (`"datasets"`).
        hash_algorithm: `"auto"`, `"sha256"` or `"md5"`.
        extract: extract the archive (zip or tar) and return the extraction folder.
        archive_format: `"auto"`, `"zip"`, `"tar"`, or a list of them.
        cache_dir: the cache root (default `$KERAS_HOME` or `~/.keras`).
        force_download: download even if the file is cached.

    Returns:
        The path of the file (or of the extracted folder).
    """
    if origin is None:
        raise ValueError('get_file needs origin= (the URL to download the file from).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    base = os.path.expanduser(cache_dir) if cache_dir else keras_home()
    if not _can_create(base):  # (as Keras: fall back to a temporary folder)
        base = os.path.join(tempfile.gettempdir(), ".keras")
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)
    given = fname
    fname = os.fspath(fname) if fname else os.path.basename(urllib.parse.urlsplit(origin).path)
    if not fname:
        raise ValueError(f"Cannot tell a file name from origin {origin!r}; pass fname=.")
    if os.sep in fname or (os.altsep and os.altsep in fname):
        raise ValueError(f"fname must be a plain file name; use cache_dir/cache_subdir for "
                         f"its folder. Received fname={fname!r}.")
    if extract or untar:
        if given and "." in fname:
            target = os.path.join(datadir, fname)
            extraction_dir = os.path.join(datadir, f"{fname[:fname.find('.')]}_extracted")
        else:
            target = os.path.join(datadir, f"{fname}_archive")
            extraction_dir = os.path.join(datadir, fname)
    else:
        target = os.path.join(datadir, fname)
    download = force_download or not os.path.exists(target)
    if not download and file_hash is not None and not validate_file(target, file_hash,
                                                                     hash_algorithm):
        print(f"A local file was found at {target}, but its hash does not match "
              f"{file_hash}; downloading it again.")
        download = True
    if download:
        _download(origin, target, file_hash, hash_algorithm)
    if extract or untar:
        formats = "tar" if untar else archive_format
        if not extract_archive(target, extraction_dir, formats):
            raise ValueError(f"{target} is not a {formats} archive plexus can extract "
                             "(zip or tar).")
        return extraction_dir
    return target


def _can_create(path):
    try:
        os.makedirs(path, exist_ok=True)
        return os.access(path, os.W_OK)
    except OSError:
        return False


def _download(origin, target, file_hash, hash_algorithm):
    print(f"Downloading data from {origin}")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".download.")
    os.close(fd)
    try:
        urllib.request.urlretrieve(origin, tmp)
    except (urllib.error.URLError, OSError, ValueError) as e:
        os.remove(tmp)
        reason = getattr(e, "reason", e)
        raise OSError(
            f"Could not download {origin} ({reason}). Without network access, download the "
            f"file elsewhere and put it at {target} (the cache folder is $KERAS_HOME or "
            "~/.keras, then the cache subfolder).") from e
    except BaseException:
        os.remove(tmp)
        raise
    if file_hash is not None and not validate_file(tmp, file_hash, hash_algorithm):
        os.remove(tmp)
        raise ValueError(f"The file downloaded from {origin} is incomplete or corrupted: its "
                         f"hash does not match {file_hash}.")
    os.replace(tmp, target)


# ---------------------------------------------------------------------- safe extraction
def _safe_name(name, label):
    """A member name as a relative path inside the archive's folder, or a ValueError."""
    norm = name.replace("\\", "/")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or ".." in parts:
        raise ValueError(f"{label}: member {name!r} would be written outside the extraction "
                         "folder (absolute path or '..'); refused.")
    return os.path.join(*parts) if parts else None


def _check_zip(archive, label):
    members = []
    for info in archive.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ValueError(f"{label}: member {info.filename!r} is a symbolic link; refused.")
        rel = _safe_name(info.filename, label)
        if rel is not None:
            members.append((info, rel))
    return members


def _check_tar(archive, label):
    members = []
    for info in archive.getmembers():
        if info.issym() or info.islnk():
            raise ValueError(f"{label}: member {info.name!r} is a link; refused.")
        if not (info.isfile() or info.isdir()):
            raise ValueError(f"{label}: member {info.name!r} is a device or special file; "
                             "refused.")
        rel = _safe_name(info.name, label)
        if rel is not None:
            members.append((info, rel))
    return members


def extract_archive(file_path, path=".", archive_format="auto"):
    """Extract a zip or tar archive into `path` (checked member by member first).

    Returns True if the file was an archive of an accepted format and was extracted.
    """
    formats = ["tar", "zip"] if archive_format == "auto" else (
        [archive_format] if isinstance(archive_format, str) else list(archive_format))
    label = repr(os.fspath(file_path))
    if "zip" in formats and zipfile.is_zipfile(file_path):
        with zipfile.ZipFile(file_path) as archive:
            _write_members(_check_zip(archive, label), path,
                           lambda info: archive.open(info), lambda info: info.is_dir())
        return True
    if "tar" in formats and tarfile.is_tarfile(file_path):
        with tarfile.open(file_path) as archive:
            _write_members(_check_tar(archive, label), path,
                           lambda info: archive.extractfile(info), lambda info: info.isdir())
        return True
    return False


def _write_members(members, path, open_member, is_dir):
    """Write checked members into a temporary folder, then move it into place."""
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".extract.")
    try:
        for info, rel in members:
            dest = os.path.join(tmp, rel)
            if is_dir(info):
                os.makedirs(dest, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open_member(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
        if os.path.exists(path):
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
