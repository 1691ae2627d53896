"""Turning integer ids into the `output_mode`s of Keras's categorical layers:
`"int"`, `"one_hot"`, `"multi_hot"`, `"count"` (and `"tf_idf"`, a weighted count)."""
import numpy as np
import torch

from plexus.graph.tensor import torch_dtype

OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count")


def check_output_mode(layer_name, output_mode, allowed=OUTPUT_MODES):
    if output_mode not in allowed:
        raise ValueError(f"{layer_name}: output_mode must be one of "
                         f"{', '.join(map(repr, allowed))}; received output_mode={output_mode!r}.")


def encoded_shape(input_shape, output_mode, depth):
    """The output shape of `encode` for inputs of `input_shape`."""
    input_shape = tuple(input_shape)
    if output_mode == "int":
        return input_shape
    if not input_shape:
        return (depth,)
    if output_mode == "one_hot":
        if len(input_shape) > 1 and input_shape[-1] == 1:
            return input_shape[:-1] + (depth,)
        return input_shape + (depth,)
    if len(input_shape) == 1:  # one sample of ids
        return (depth,)
    return (input_shape[0],) + input_shape[2:] + (depth,)  # ids of a sample along axis 1


def _check_range(ids, depth, layer):
    if ids.numel() and (int(ids.max()) >= depth):
        bad = int(ids.max())
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) received id {bad}, but it encodes "
            f"ids in [0, {depth}) (num_tokens/num_bins={depth}). Pass a larger depth or map "
            "the values to ids first (e.g. with IntegerLookup).")


def encode(ids, output_mode, depth, dtype, layer, count_weights=None):
    """Encode integer `ids` (a tensor) as `output_mode`. Negative ids count as absent."""
    if output_mode == "int":
        return ids.to(torch_dtype(dtype))
    out_dtype = torch_dtype(dtype)
    if ids.is_floating_point():
        ids = ids.long()
    ids = ids.long()
    if ids.ndim == 0:
        ids = ids.reshape(1)
    _check_range(ids, depth, layer)
    valid = ids >= 0
    safe = torch.where(valid, ids, torch.zeros_like(ids))
    if output_mode == "one_hot":
        if ids.ndim > 1 and ids.shape[-1] == 1:
            safe, valid = safe.squeeze(-1), valid.squeeze(-1)
        out = torch.zeros(safe.shape + (depth,), dtype=out_dtype, device=ids.device)
        out.scatter_(-1, safe.unsqueeze(-1), valid.unsqueeze(-1).to(out_dtype))
        return out
    # multi_hot / count / tf_idf: the ids of a sample lie along axis 1 (axis 0 for one sample)
    lead = ids.ndim == 1
    if lead:
        safe, valid = safe.unsqueeze(0), valid.unsqueeze(0)
    moved = safe.movedim(1, -1)
    keep = valid.movedim(1, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    if count_weights is not None and output_mode == "count":
        w = torch.as_tensor(count_weights, dtype=out_dtype, device=ids.device)
        if lead:
            w = w.unsqueeze(0)
        src = (w.movedim(1, -1) * keep).reshape(rows.shape)
    else:
        src = keep.reshape(rows.shape).to(out_dtype)
    out = torch.zeros(rows.shape[0], depth, dtype=out_dtype, device=ids.device)
    out.scatter_add_(1, rows, src)
    if output_mode == "multi_hot":
        out = (out > 0).to(out_dtype)
    out = out.reshape(moved.shape[:-1] + (depth,))
    return out[0] if lead else out


def to_numpy_values(x):
    """Inputs of a categorical layer as a NumPy array (strings stay strings)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
