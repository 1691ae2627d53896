"""Math ops (`keras.ops`): special functions, top-k, segment reductions, FFTs, STFT."""
import torch
import torch.nn.functional as F

from plexus.ops.common import all_axes, float_tensor, narrow_float, pair, t
from plexus.ops.elementwise import unary_float
from plexus.graph.tensor import KerasTensor
from plexus.ops.table import op


erf = unary_float("erf", "Erf", torch.erf, "The error function, element-wise.", "math")
erfc = unary_float("erfc", "Erfc", torch.erfc, "`1 - erf(x)`, accurate for large `x`.", "math")
erfinv = unary_float("erfinv", "Erfinv", torch.erfinv, "Inverse of the error function.", "math")
rsqrt = unary_float("rsqrt", "Rsqrt", torch.rsqrt, "`1 / sqrt(x)`, element-wise.", "math")


@op("math", "Logsumexp")
def logsumexp(x, axis=None, keepdims=False):
    """`log(sum(exp(x)))` over `axis`, computed stably."""
    x = float_tensor(x)
    return torch.logsumexp(x, dim=all_axes(x, axis), keepdim=keepdims)


@op("math", "TopK")
def top_k(x, k, sorted=True):  # noqa: A002 (Keras's argument name)
    """The `k` largest values along the last axis and their indices (int64, as torch's)."""
    x = t(x)
    return tuple(torch.topk(x, k, dim=-1, sorted=True))


@op("math", "InTopK", "targets,predictions")
def in_top_k(targets, predictions, k):
    """Whether each target class id is among the `k` largest predictions of its row (ties
    count in its favour)."""
    p, y = pair(predictions, targets)
    p = float_tensor(p)
    target_score = torch.gather(p, 1, y.long().reshape(-1, 1))
    above = torch.sum(p > target_score, dim=1)
    return above < k


def _segments(data, segment_ids, num_segments):
    data, ids = pair(data, segment_ids)
    ids = ids.long()
    if num_segments is None:
        num_segments = int(ids.max().item()) + 1 if ids.numel() else 0
    valid = (ids >= 0) & (ids < num_segments)
    return data, ids, valid, num_segments


def _segment_reduce(data, segment_ids, num_segments, reduce, empty):
    data, ids, valid, n = _segments(data, segment_ids, num_segments)
    inner = data.shape[1:]
    ids = torch.where(valid, ids, n)  # invalid ids land in a dropped extra segment
    out = torch.full((n + 1,) + tuple(inner), empty, dtype=data.dtype, device=data.device)
    index = ids.reshape((-1,) + (1,) * len(inner)).expand_as(data)
    out = out.scatter_reduce(0, index, data, reduce=reduce, include_self=False)
    return out[:n]


def _lowest(dtype):
    return torch.finfo(dtype).min if dtype.is_floating_point else torch.iinfo(dtype).min


def _highest(dtype):
    return torch.finfo(dtype).max if dtype.is_floating_point else torch.iinfo(dtype).max


def _segment_spec(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    return KerasTensor((num_segments,) + tuple(data.shape[1:]), data.dtype)


@op("math", "SegmentSum", "data,segment_ids", spec=_segment_spec)
def segment_sum(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Sum of the rows of `data` in each segment (`segment_ids` per row; negative ids are
    dropped); empty segments are 0."""
    return _segment_reduce(data, segment_ids, num_segments, "sum", 0)


@op("math", "SegmentProd", "data,segment_ids", spec=_segment_spec)
def segment_prod(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Product of the rows of `data` in each segment; empty segments are 1."""
    return _segment_reduce(data, segment_ids, num_segments, "prod", 1)


@op("math", "SegmentMax", "data,segment_ids", spec=_segment_spec)
def segment_max(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Maximum of the rows of `data` in each segment; empty segments hold the dtype's lowest
    value."""
    d = t(data)
    return _segment_reduce(d, segment_ids, num_segments, "amax", _lowest(d.dtype))


@op("math", "SegmentMin", "data,segment_ids", spec=_segment_spec)
def segment_min(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Minimum of the rows of `data` in each segment; empty segments hold the dtype's highest
    value."""
    d = t(data)
    return _segment_reduce(d, segment_ids, num_segments, "amin", _highest(d.dtype))


# ------------------------------------------------------------------------------ complex, FFT
def _complex(x, what):
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(f"{what}: x must be a tuple (real, imag) of two tensors; got "
                         f"{type(x).__name__}.")
    real, imag = pair(x[0], x[1])
    if real.shape != imag.shape:
        raise ValueError(f"{what}: real and imag must have the same shape; got "
                         f"{tuple(real.shape)} and {tuple(imag.shape)}.")
    real, imag = float_tensor(real), float_tensor(imag)
    return torch.complex(real, imag.to(real.dtype))


def _parts(z, dtype):
    return torch.real(z).to(dtype), torch.imag(z).to(dtype)


@op("math", "FFT")
def fft(x):
    """FFT over the last axis of a complex tensor given as `(real, imag)`; returns
    `(real, imag)`."""
    z = _complex(x, "fft")
    return _parts(torch.fft.fft(z), torch.real(z).dtype)


@op("math", "FFT2")
def fft2(x):
    """2-D FFT over the last two axes of `(real, imag)`; returns `(real, imag)`."""
    z = _complex(x, "fft2")
    return _parts(torch.fft.fft2(z), torch.real(z).dtype)


@op("math", "IFFT2")
def ifft2(x):
    """Inverse 2-D FFT over the last two axes of `(real, imag)`; returns `(real, imag)`."""
    z = _complex(x, "ifft2")
    return _parts(torch.fft.ifft2(z), torch.real(z).dtype)


@op("math", "RFFT")
def rfft(x, fft_length=None):
    """FFT of a real signal over its last axis (`fft_length // 2 + 1` bins); `(real, imag)`."""
    x = float_tensor(x)
    return _parts(torch.fft.rfft(x, n=fft_length, dim=-1), x.dtype)


@op("math", "IRFFT")
def irfft(x, fft_length=None):
    """Inverse of `rfft`: a real signal from `(real, imag)` bins."""
    z = _complex(x, "irfft")
    return torch.fft.irfft(z, n=fft_length, dim=-1).to(torch.real(z).dtype)


@op("math", "ViewAsComplex")
def view_as_complex(x):
    """A `(..., 2)` real tensor read as complex numbers (float64 narrowed first, as Keras)."""
    x = narrow_float(x)
    if x.shape[-1] != 2:
        raise ValueError(f"view_as_complex: the last axis must have size 2; got shape "
                         f"{tuple(x.shape)}.")
    return torch.view_as_complex(x.contiguous())


@op("math", "ViewAsReal")
def view_as_real(x):
    """A complex tensor as a real tensor with a last axis of (real, imag)."""
    return torch.view_as_real(t(x))


def _window(window, sequence_length, fft_length, dtype, device, what):
    if window is None:
        win = torch.ones(sequence_length, dtype=dtype, device=device)
    elif isinstance(window, str):
        makers = {"hann": torch.hann_window, "hamming": torch.hamming_window}
        if window not in makers:
            raise ValueError(f"{what}: window must be 'hann', 'hamming', a tensor or None; got "
                             f"{window!r}.")
        win = makers[window](sequence_length, periodic=True, dtype=dtype, device=device)
    else:
        win = t(window).to(device, dtype)
        if win.shape != (sequence_length,):
            raise ValueError(f"{what}: a window tensor must have shape ({sequence_length},); got "
                             f"{tuple(win.shape)}.")
    left = (fft_length - sequence_length) // 2
    return F.pad(win, (left, fft_length - sequence_length - left))


@op("math", "STFT")
def stft(x, sequence_length, sequence_stride, fft_length, window="hann", center=True):
    """Short-time Fourier transform of real signals over the last axis; returns
    `(real, imag)` of shape `(..., frames, fft_length // 2 + 1)`."""
    x = float_tensor(x)
    if fft_length < sequence_length:
        raise ValueError(f"stft: fft_length ({fft_length}) must be at least sequence_length "
                         f"({sequence_length}).")
    win = _window(window, sequence_length, fft_length, x.dtype, x.device, "stft")
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    if center:
        flat = F.pad(flat[:, None], (fft_length // 2, fft_length // 2), mode="reflect")[:, 0]
    z = torch.stft(flat, n_fft=fft_length, hop_length=sequence_stride, win_length=fft_length,
                   window=win, center=False, return_complex=True).transpose(-1, -2)
    z = z.reshape(lead + z.shape[-2:])
    return _parts(z, x.dtype)


@op("math", "ISTFT")
def istft(x, sequence_length, sequence_stride, fft_length, length=None, window="hann",
          center=True):
    """Inverse of `stft`: signals from `(real, imag)` frames by windowed overlap-add."""
    z = _complex(x, "istft")
    dtype = torch.real(z).dtype
    win = _window(window, sequence_length, fft_length, dtype, z.device, "istft")
    lead = z.shape[:-2]
    frames = torch.fft.irfft(z.reshape((-1,) + z.shape[-2:]), n=fft_length, dim=-1) * win
    n_frames = frames.shape[-2]
    total = fft_length + sequence_stride * (n_frames - 1)
    out = F.fold(frames.transpose(1, 2), (1, total), (1, fft_length),
                 stride=(1, sequence_stride))[:, 0, 0]
    norm = F.fold((win * win).expand(1, n_frames, -1).transpose(1, 2), (1, total),
                  (1, fft_length), stride=(1, sequence_stride))[0, 0, 0]
    start = fft_length // 2 if center else 0
    end = total - fft_length // 2 if center else total
    out, norm = out[:, start:end], norm[start:end]
    out = out / torch.where(norm > 1e-10, norm, torch.ones_like(norm))
    if length is not None:
        out = out[:, :length] if out.shape[-1] >= length else F.pad(out, (0, length - out.shape[-1]))
    return out.reshape(lead + out.shape[-1:]).to(dtype)


@op("math", "ExtractSequences")
def extract_sequences(x, sequence_length, sequence_stride):
    """Frames of `sequence_length` taken every `sequence_stride` steps along the last axis:
    shape `(..., frames, sequence_length)`."""
    x = t(x)
    return x.unfold(-1, sequence_length, sequence_stride)


@op("math", "Logdet")
def logdet(x):
    """Log-determinant of square matrices (NaN where the determinant is negative)."""
    return torch.logdet(float_tensor(x))


@op("math", "CDist", "x,y")
def cdist(x, y):
    """Euclidean distances between each row of `x` and each row of `y` (batched)."""
    a, b = pair(x, y)
    a, b = float_tensor(a), float_tensor(b)
    return torch.cdist(a, b.to(a.dtype))

