"""Connectionist temporal classification: `ctc_loss` and `ctc_decode` (`keras.ops.nn`)."""
import torch
import torch.nn.functional as F

from plexus.graph.tensor import KerasTensor
from plexus.ops.common import float_tensor, t
from plexus.ops.table import op


def _loss_spec(target, output, target_length, output_length, mask_index=0):
    dtype = output.dtype if output.dtype in ("float32", "float64") else "float32"
    return KerasTensor((output.shape[0],), dtype)


@op("nn", "CTCLoss", "target,output,target_length,output_length", spec=_loss_spec)
def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """CTC loss per sample: `target` `(batch, max_label_length)` ids, `output`
    `(batch, max_length, num_classes)` logits; `mask_index` is the blank class."""
    out = float_tensor(output)
    if out.dtype in (torch.float16, torch.bfloat16, torch.float64):  # float32, as Keras
        out = out.float()
    log_probs = torch.log_softmax(out.transpose(0, 1), dim=-1)
    return F.ctc_loss(log_probs, t(target).long().to(out.device),
                      t(output_length).long().to(out.device),
                      t(target_length).long().to(out.device), blank=mask_index,
                      reduction="none")


@op("nn", "CTCDecode", "inputs,sequence_lengths")
def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1,
               merge_repeated=True, mask_index=0):
    """Decode CTC outputs `(batch, max_length, num_classes)`: returns `(decoded, scores)`,
    `decoded` of shape `(top_paths, batch, max_length)` padded with -1. Greedy decoding takes
    the best class per step, merges repeats (`merge_repeated`) and drops blanks."""
    if strategy == "beam_search":
        raise NotImplementedError("ctc_decode: strategy='beam_search' is not implemented in "
                                  "plexus yet; use strategy='greedy'.")
    if strategy != "greedy":
        raise ValueError(f"ctc_decode: strategy must be 'greedy' or 'beam_search'; got "
                         f"{strategy!r}.")
    x = float_tensor(inputs)
    if x.dtype in (torch.float16, torch.bfloat16, torch.float64):  # float32, as Keras
        x = x.float()
    lengths = t(sequence_lengths).to(x.device)
    batch, max_length, _ = x.shape
    scores, ids = torch.max(x, dim=-1)
    ids = ids.to(torch.int32)
    steps = torch.arange(max_length, device=x.device)[None, :]
    beyond = steps >= lengths[:, None]
    ids = torch.where(beyond, mask_index, ids)
    scores = torch.where(beyond, torch.zeros_like(scores), scores)
    if merge_repeated:
        repeated = F.pad(ids[:, 1:] == ids[:, :-1], (1, 0))
        ids = torch.where(repeated, mask_index, ids)
    blank = ids == mask_index
    ids = torch.where(blank, -1, ids)
    order = torch.argsort(torch.where(blank, max_length, steps.expand(batch, -1)), dim=-1,
                          stable=True)
    ids = torch.gather(ids, 1, order)
    return ids[None], -torch.sum(scores, dim=1, keepdim=True)
