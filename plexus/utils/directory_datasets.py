"""`image_dataset_from_directory`, `text_dataset_from_directory`,
`audio_dataset_from_directory`: datasets of files in one folder per class.

Files are listed (and, with `shuffle`, put in a seeded random order) as Keras lists them; the
returned `Dataset` reads and decodes them batch by batch (in background threads: `prefetch`),
never all at once.
"""
import os
import wave

import numpy as np
import torch

from plexus.utils.dataset import Dataset, text_array

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


# ---------------------------------------------------------------------- listing files
def _valid_files(directory, follow_links, formats):
    walk = os.walk(directory, followlinks=follow_links)
    for root, _, files in sorted(walk, key=lambda x: x[0]):
        for fname in sorted(files):
            if fname.lower().endswith(formats):
                yield os.path.join(root, fname)


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None,
                    follow_links=False, verbose=True):
    """(file paths, int labels or None, class names), in Keras's order and shuffle."""
    if not os.path.isdir(directory):
        raise ValueError(f"Directory {directory!r} does not exist (or is not a folder).")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if not subdirs:
            raise ValueError(
                f"No class folders in {directory!r}: with labels='inferred', put the files of "
                "each class in a subfolder named after the class (or pass labels=None).")
        if class_names is not None:
            if not set(class_names).issubset(subdirs):
                raise ValueError(f"class_names {list(class_names)} do not match the folders of "
                                 f"{directory!r}: {subdirs} (or a subset of them).")
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise ValueError("class_names can only be given with labels='inferred'.")
        subdirs = [""]
    paths, inferred = [], []
    for index, sub in enumerate(subdirs):
        found = list(_valid_files(os.path.join(directory, sub), follow_links, formats))
        paths += found
        inferred += [index] * len(found)
    if labels == "inferred":
        labels = np.asarray(inferred, dtype="int32")
        class_names = subdirs
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(paths):
            raise ValueError(f"labels has {len(labels)} entries, but {directory!r} holds "
                             f"{len(paths)} files; give one label per file (sorted by path).")
        class_names = [str(label) for label in sorted(set(labels))]
        labels = np.asarray(labels)
    if verbose:
        tail = "" if labels is None else f" belonging to {len(class_names)} classes"
        print(f"Found {len(paths)} files{tail}.")
    if shuffle:
        seed = np.random.randint(1e6) if seed is None else seed
        np.random.RandomState(seed).shuffle(paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return paths, labels, class_names


def check_split_arguments(validation_split, subset, shuffle, seed):
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1; received "
                         f"{validation_split}.")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("Pass validation_split and subset together ('training', 'validation' "
                         "or 'both').")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f"subset must be 'training', 'validation' or 'both'; received "
                         f"{subset!r}.")
    if validation_split and shuffle and seed is None:
        raise ValueError("With validation_split and shuffle=True, pass a seed so that the "
                         "training and validation subsets do not overlap.")


def _split(paths, labels, validation_split, subset, verbose):
    if not validation_split:
        return paths, labels
    n_val = int(validation_split * len(paths))
    if subset == "training":
        if verbose:
            print(f"Using {len(paths) - n_val} files for training.")
        return paths[:len(paths) - n_val], None if labels is None else labels[:len(paths) - n_val]
    if verbose:
        print(f"Using {n_val} files for validation.")
    return paths[len(paths) - n_val:], None if labels is None else labels[len(paths) - n_val:]


def _with_labels(x, labels, indices, label_mode, num_classes):
    """A batch `x`, or `(x, labels)` in `label_mode` when the dataset has labels."""
    return x if labels is None else (x, _labels(labels[indices], label_mode, num_classes))


def _labels(labels, label_mode, num_classes):
    if label_mode == "int":
        return torch.from_numpy(np.asarray(labels, dtype="int64").astype("int32"))
    if label_mode == "binary":
        return torch.from_numpy(np.asarray(labels, dtype="float32").reshape(-1, 1))
    one_hot = np.zeros((len(labels), num_classes), dtype="float32")
    one_hot[np.arange(len(labels)), np.asarray(labels, dtype="int64")] = 1.0
    return torch.from_numpy(one_hot)


def _build(directory, labels, label_mode, class_names, formats, shuffle, seed,
           validation_split, subset, follow_links, verbose, batch_size, make_loader, what):
    """Index, split and wrap in datasets (a list of two for subset='both')."""
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError("labels must be 'inferred', None, or a list of labels (one per file "
                         f"in sorted order); received {labels!r}.")
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(f"label_mode must be 'int', 'categorical', 'binary' or None; "
                         f"received {label_mode!r}.")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    check_split_arguments(validation_split, subset, shuffle, seed)
    seed = np.random.randint(1e6) if seed is None else seed
    paths, labels, class_names = index_directory(directory, labels, formats, class_names,
                                                 shuffle, seed, follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f"label_mode='binary' needs exactly 2 classes; found {class_names}.")
    num_classes = len(class_names) if class_names else 0
    subsets = ["training", "validation"] if subset == "both" else [subset]
    out = []
    for part in subsets:
        part_paths, part_labels = _split(paths, labels, validation_split, part, verbose)
        if not part_paths:
            raise ValueError(f"No {what} found in {directory!r}" + (
                f" for the {part} subset" if part else "") + f" (formats: {formats}).")
        load = make_loader(part_paths, part_labels, label_mode, num_classes)
        ds = Dataset(len(part_paths), load, batch_size,
                     shuffle=shuffle and part != "validation", seed=seed)
        ds = ds.prefetch()
        ds.class_names, ds.file_paths = class_names, part_paths
        out.append(ds)
    return out if subset == "both" else out[0]


# ---------------------------------------------------------------------- images
def _decode_image(path, num_channels, image_size, interpolation, crop, pad):
    from plexus.layers.preprocessing import image_ops
    from plexus.utils.image_utils import load_img
    mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[num_channels]
    img = np.asarray(load_img(path, color_mode=mode), dtype="uint8")
    if img.ndim == 2:
        img = img[..., None]
    t = torch.from_numpy(img.copy())
    h, w = image_size
    if t.shape[0] == h and t.shape[1] == w:
        return t.float()
    return image_ops.resize(t.unsqueeze(0).float(), h, w, interpolation,
                            crop_to_aspect_ratio=crop, pad_to_aspect_ratio=pad)[0]


def image_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, color_mode="rgb", batch_size=32,
                                 image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear",
                                 follow_links=False, crop_to_aspect_ratio=False,
                                 pad_to_aspect_ratio=False, data_format=None, verbose=True):
    """A dataset of `(images, labels)` batches from a folder of images, one subfolder per
    class (`main/cat/*.jpg`, `main/dog/*.jpg`).

    Images are decoded with Pillow and resized to `image_size` batch by batch, as float32
    `(batch, height, width, channels)` with values in [0, 255]. Labels follow `label_mode`:
    `"int"` (int32 class ids), `"categorical"` (one-hot), `"binary"` (float32 0/1, two
    classes), or None. With `validation_split` and `subset` (`"training"`, `"validation"`
    or `"both"`, which returns both), the last fraction of the (seeded) shuffled files is
    held out. The dataset has `class_names` and `file_paths`.
    """
    num_channels = {"rgb": 3, "rgba": 4, "grayscale": 1}.get(color_mode)
    if num_channels is None:
        raise ValueError(f"color_mode must be 'rgb', 'rgba' or 'grayscale'; received "
                         f"{color_mode!r}.")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ValueError(f"image_size must be (height, width); received {image_size!r}.")
    interpolation = interpolation.lower()
    if interpolation not in ("bilinear", "nearest", "bicubic", "area"):
        raise ValueError(f"interpolation must be 'bilinear', 'nearest', 'bicubic' or 'area'; "
                         f"received {interpolation!r}.")
    from plexus.layers.preprocessing.image_base import image_data_format
    channels_first = image_data_format(data_format) == "channels_first"

    def make_loader(paths, labels, label_mode, num_classes):
        def load(indices):
            images = torch.stack([_decode_image(paths[i], num_channels, image_size,
                                                interpolation, crop_to_aspect_ratio,
                                                pad_to_aspect_ratio) for i in indices])
            if channels_first:
                images = images.permute(0, 3, 1, 2).contiguous()
            return _with_labels(images, labels, indices, label_mode, num_classes)
        return load
    return _build(directory, labels, label_mode, class_names, IMAGE_FORMATS, shuffle, seed,
                  validation_split, subset, follow_links, verbose, batch_size, make_loader,
                  "images")


# ---------------------------------------------------------------------- text
def text_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                class_names=None, batch_size=32, max_length=None, shuffle=True,
                                seed=None, validation_split=None, subset=None,
                                follow_links=False, verbose=True):
    """A dataset of `(texts, labels)` batches from a folder of `.txt` files, one subfolder
    per class. Texts are NumPy arrays of `str` (`max_length` cuts each to that many
    characters); labels as in `image_dataset_from_directory`."""
    def make_loader(paths, labels, label_mode, num_classes):
        def load(indices):
            texts = []
            for i in indices:
                with open(paths[i], "rb") as f:
                    data = f.read()
                text = data.decode("utf-8", errors="replace")
                texts.append(text[:max_length] if max_length is not None else text)
            texts = text_array(np.array(texts, dtype=object))
            return _with_labels(texts, labels, indices, label_mode, num_classes)
        return load
    return _build(directory, labels, label_mode, class_names, (".txt",), shuffle, seed,
                  validation_split, subset, follow_links, verbose, batch_size, make_loader,
                  "text files")


# ---------------------------------------------------------------------- audio
def read_wav(path):
    """A WAV file's samples as float32 `(samples, channels)` in [-1, 1], and its rate."""
    try:
        with wave.open(os.fspath(path), "rb") as f:
            channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
            frames = f.readframes(f.getnframes())
    except (wave.Error, EOFError) as e:
        raise ValueError(f"Could not decode audio file {path!r}: {e}. Only PCM WAV files are "
                         "supported.") from e
    if width == 1:
        data = (np.frombuffer(frames, "uint8").astype("float32") - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(frames, "<i2").astype("float32") / 32768.0
    elif width == 4:
        data = np.frombuffer(frames, "<i4").astype("float32") / 2147483648.0
    elif width == 3:
        raw = np.frombuffer(frames, "uint8").reshape(-1, 3)
        ints = (raw[:, 0].astype("int32") | (raw[:, 1].astype("int32") << 8)
                | (raw[:, 2].astype("int32") << 16))
        data = np.where(ints >= 1 << 23, ints - (1 << 24), ints).astype("float32") / (1 << 23)
    else:
        raise ValueError(f"Unsupported sample width {width} bytes in {path!r}.")
    return data.reshape(-1, channels), rate


def audio_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, batch_size=32, sampling_rate=None,
                                 output_sequence_length=None, ragged=False, shuffle=True,
                                 seed=None, validation_split=None, subset=None,
                                 follow_links=False, verbose=True):
    """A dataset of `(audio, labels)` batches from a folder of WAV files, one subfolder per
    class. Audio is float32 `(batch, samples, channels)` in [-1, 1], padded with zeros to the
    longest clip of the batch, or cut/padded to `output_sequence_length`."""
    if ragged:
        raise ValueError("ragged=True needs TensorFlow ragged tensors; use "
                         "output_sequence_length or the default padding instead.")

    def make_loader(paths, labels, label_mode, num_classes):
        def load(indices):
            clips = []
            for i in indices:
                data, rate = read_wav(paths[i])
                if sampling_rate is not None and rate != sampling_rate:
                    raise ValueError(
                        f"{paths[i]!r} is sampled at {rate} Hz, not sampling_rate="
                        f"{sampling_rate}; plexus does not resample audio. Resample the files "
                        "or pass sampling_rate=None.")
                clips.append(data)
            length = output_sequence_length or max(len(c) for c in clips)
            channels = max(c.shape[1] for c in clips)
            audio = np.zeros((len(clips), length, channels), dtype="float32")
            for j, c in enumerate(clips):
                audio[j, :min(length, len(c)), :c.shape[1]] = c[:length]
            return _with_labels(torch.from_numpy(audio), labels, indices, label_mode,
                                num_classes)
        return load
    return _build(directory, labels, label_mode, class_names, (".wav",), shuffle, seed,
                  validation_split, subset, follow_links, verbose, batch_size, make_loader,
                  "audio files")
