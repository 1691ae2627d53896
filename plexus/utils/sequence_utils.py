"""`pad_sequences`, `timeseries_dataset_from_array` and `split_dataset`."""
import numpy as np
import torch

from plexus.utils.dataset import Dataset, from_arrays


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Pad (or cut) sequences to one length: a `(num_sequences, maxlen)` array.

    Args:
        sequences: a list of sequences (lists or arrays, whose elements may themselves be
            arrays of one shape).
        maxlen: the length; defaults to the longest sequence.
        dtype: the output dtype (`object` for strings of varying length).
        padding: `"pre"` or `"post"`: where to add `value`.
        truncating: `"pre"` or `"post"`: which end to cut from sequences longer than `maxlen`.
        value: the padding value.

    Example:
        >>> pad_sequences([[1], [2, 3], [4, 5, 6]])
        array([[0, 0, 1],
               [0, 2, 3],
               [4, 5, 6]], dtype=int32)
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError("pad_sequences: `sequences` must be a list of sequences.")
    if padding not in ("pre", "post"):
        raise ValueError(f"pad_sequences: padding must be 'pre' or 'post'; received "
                         f"{padding!r}.")
    if truncating not in ("pre", "post"):
        raise ValueError(f"pad_sequences: truncating must be 'pre' or 'post'; received "
                         f"{truncating!r}.")
    lengths, sample_shape = [], None
    for i, s in enumerate(sequences):
        try:
            lengths.append(len(s))
        except TypeError:
            raise ValueError(f"pad_sequences: `sequences` must be a list of sequences; item "
                             f"{i} is {s!r}.") from None
        if sample_shape is None and len(s):
            sample_shape = np.asarray(s).shape[1:]
    sample_shape = sample_shape or ()
    if maxlen is None:
        maxlen = int(np.max(lengths)) if lengths else 0
    is_text = np.issubdtype(np.dtype(dtype), np.str_) or np.issubdtype(np.dtype(dtype),
                                                                        np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_text:
        raise ValueError(f"pad_sequences: dtype {dtype} cannot hold the string padding value "
                         f"{value!r}; use dtype=object for strings.")
    out = np.full((len(sequences), maxlen) + tuple(sample_shape), value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s) or maxlen == 0:
            continue
        kept = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if kept.shape[1:] != tuple(sample_shape):
            raise ValueError(f"pad_sequences: the elements of sequence {i} have shape "
                             f"{kept.shape[1:]}, but earlier ones have {tuple(sample_shape)}.")
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, -len(kept):] = kept
    return out


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None):
    """A dataset of sliding windows over `data` (and the target at each window's start).

    Window `i` holds `data[start + s_i : start + s_i + sequence_length * sampling_rate :
    sampling_rate]` with `s_i = i * sequence_stride`; its target is `targets[start + s_i]`.

    Args:
        data: an array or tensor, time along axis 0.
        targets: targets aligned with `data`'s time steps, or None.
        sequence_length: time steps per window.
        sequence_stride: the step between window starts.
        sampling_rate: the step between time steps within a window.
        batch_size: windows per batch (None: one window at a time).
        shuffle: a new order of windows each epoch; `seed` makes it reproducible.
        start_index, end_index: the part of `data` to use (`end_index` excluded).
    """
    n = len(data)
    start = start_index or 0
    if start_index is not None and not 0 <= start_index < n:
        raise ValueError(f"start_index must be in [0, {n}); received {start_index}.")
    if end_index is not None and (end_index >= n or end_index <= 0 or end_index <= start):
        raise ValueError(f"end_index must be in ({start}, {n}); received {end_index}.")
    for name, v in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if v <= 0 or v >= n:
            raise ValueError(f"{name} must be in [1, {n}) for data of length {n}; received "
                             f"{v}.")
    end = end_index if end_index is not None else n
    num_seqs = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        num_seqs = min(num_seqs, len(targets))
    positions = np.arange(0, max(num_seqs, 0), sequence_stride)
    if shuffle:
        np.random.RandomState(np.random.randint(1e6) if seed is None else seed).shuffle(
            positions)
    offsets = np.arange(sequence_length) * sampling_rate
    source = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    target_src = None if targets is None else (
        targets if isinstance(targets, torch.Tensor) else torch.as_tensor(np.asarray(targets)))

    def load(indices):
        starts = positions[indices] + start
        windows = source[torch.from_numpy((starts[:, None] + offsets[None, :]).reshape(-1))]
        windows = windows.reshape(len(indices), sequence_length, *source.shape[1:])
        if target_src is None:
            return windows
        return windows, target_src[torch.from_numpy(starts)]
    return Dataset(len(positions), load, batch_size, shuffle=shuffle, seed=seed)


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None):
    """Split arrays (or a tuple of arrays, or a dataset of samples) into two datasets.

    Args:
        left_size, right_size: a fraction in (0, 1) or a number of samples; one may be None
            (the rest). Both None means 0.5.
        shuffle: shuffle the samples before splitting (with `seed`).

    Returns:
        `(left, right)`: unbatched datasets (call `.batch(n)` on them).
    """
    if isinstance(dataset, Dataset):
        if dataset.batch_size is not None:
            dataset = dataset.unbatch()
        samples = list(dataset)
        if not samples:
            raise ValueError("split_dataset received an empty dataset.")
        arrays = tuple(np.stack([np.asarray(s[j]) for s in samples])
                       for j in range(len(samples[0]))) if isinstance(samples[0], tuple) \
            else np.stack([np.asarray(s) for s in samples])
    elif isinstance(dataset, (list, tuple)):
        arrays = tuple(np.asarray(a) if not isinstance(a, torch.Tensor) else a for a in dataset)
    else:
        arrays = dataset if isinstance(dataset, torch.Tensor) else np.asarray(dataset)
    n = len(arrays[0]) if isinstance(arrays, tuple) else len(arrays)
    left, right = _split_sizes(left_size, right_size, n)
    order = np.arange(n)
    if shuffle:
        np.random.RandomState(np.random.randint(1e6) if seed is None else seed).shuffle(order)

    def take(idx):
        pick = lambda a: a[torch.from_numpy(idx)] if isinstance(a, torch.Tensor) \
            else a[idx]  # noqa: E731
        return tuple(pick(a) for a in arrays) if isinstance(arrays, tuple) else pick(arrays)
    return from_arrays(take(order[:left])), from_arrays(take(order[left:left + right]))


def _split_sizes(left_size, right_size, total):
    def count(size, name):
        if size is None:
            return None
        if isinstance(size, float):
            if not 0 < size < 1:
                raise ValueError(f"split_dataset: a fractional {name} must be in (0, 1); "
                                 f"received {size}.")
            return int(round(size * total))
        if isinstance(size, (int, np.integer)) and 0 <= size <= total:
            return int(size)
        raise ValueError(f"split_dataset: {name} must be a fraction in (0, 1) or a count in "
                         f"[0, {total}]; received {size!r}.")
    left, right = count(left_size, "left_size"), count(right_size, "right_size")
    if left is None and right is None:
        left = int(round(0.5 * total))
    if left is None:
        left = total - right
    if right is None:
        right = total - left
    if left + right > total or left == 0 and right == 0:
        raise ValueError(f"split_dataset: left_size ({left}) + right_size ({right}) must be "
                         f"at most the {total} samples and not both zero.")
    return left, right
