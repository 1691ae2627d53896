"""Finding pretrained files: the local cache first, then the published download.

Files are cached where Keras caches them (`~/.keras/models`, or `$KERAS_HOME/models`), so a
file Keras has already downloaded is found without a network, and plexus needs no folder of its
own.
"""
import hashlib
import os
import shutil
import tempfile
import urllib.request

BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


def default_cache_dir():
    """The folder where pretrained files are looked for and downloaded to."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def _hash_file(path, algorithm):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url, path):
    """Download `url` to `path` (the one place that touches the network)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as f:
        shutil.copyfileobj(response, f, 1 << 20)


def get_file(fname, origin, file_hash=None, cache_dir=None, what=None):
    """Path of the cached file `fname`, downloading it from `origin` if it is not cached.

    Args:
        fname: the file name in the cache folder.
        origin: the URL to download from.
        file_hash: MD5 (32 hex digits) or SHA-256 of the file; checked after a download.
        cache_dir: the folder to use instead of `~/.keras/models`.
        what: words for error messages ("the ImageNet weights of VGG16").

    Raises:
        OSError: when the file is not cached and cannot be downloaded; the message says
            where to put the file by hand.
    """
    folder = cache_dir or default_cache_dir()
    path = os.path.join(folder, fname)
    if os.path.exists(path):
        return path
    what = what or fname
    try:
        os.makedirs(folder, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=fname + ".", suffix=".part", dir=folder)
        os.close(fd)
    except OSError as e:
        raise OSError(
            f"Could not get {what}: {path} does not exist and the folder {folder} cannot be "
            f"written ({e}). Download {origin} yourself and save it as {path}, or pass the "
            "file's path as `weights=`."
        ) from e
    try:
        download(origin, partial)
        if file_hash:
            algorithm = "md5" if len(file_hash) == 32 else "sha256"
            actual = _hash_file(partial, algorithm)
            if actual != file_hash:
                raise OSError(
                    f"the downloaded file's {algorithm} hash is {actual}, expected {file_hash} "
                    "(an incomplete or altered download)"
                )
        os.replace(partial, path)
    except Exception as e:
        if os.path.exists(partial):
            os.remove(partial)
        raise OSError(
            f"Could not download {what} from {origin}: {type(e).__name__}: {e}. plexus first "
            f"looks for the file at {path}; without a network, download it on another machine "
            f"and put it there (or pass its path as `weights=`), or use weights=None for "
            "random weights."
        ) from e
    return path
