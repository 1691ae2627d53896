"""`ModelParallel`: parameters sharded across the processes with torch FSDP2.

When training starts, every layer the model calls that holds a weight (its own or a
sublayer's) whose path the `LayoutMap` gives a sharded layout is wrapped with `torch.distributed.fsdp.fully_shard` over all processes: its
parameters become DTensors split along dimension 0, gathered before the layer's forward and
backward passes and freed after; their gradients are reduce-scattered (averaged) by FSDP, and
the optimizer's slots for them, made like the parameters, are sharded too. The layers run
through `nn.Module._call_impl`, so FSDP's hooks see every call. The model's other weights stay
replicated (their gradients are averaged with the rest, see `runtime.average_gradients`).

Saving gathers the shards (`gathered`): every process all-gathers the full parameters and the
optimizer's full slots, rank 0 writes an ordinary file, and the sharded ones are put back.
"""
import contextlib

import torch


def _dtensor_type():
    from torch.distributed.tensor import DTensor
    return DTensor


def _candidates(model):
    """The layers the model calls (a nested model's own layers in its place): FSDP gathers a
    layer's weights when that layer is called, so it wraps these, not the sublayers whose
    weights they use (an LSTM runs its cell's weights in one fused kernel)."""
    from plexus.layers.layer import Layer
    layers = getattr(model, "layers", None)
    if layers is None:
        layers = [m for m in model.children() if isinstance(m, Layer)]
    for layer in layers:
        if layer is model:
            continue
        if hasattr(layer, "layers") and hasattr(layer, "_forward_flat"):  # a nested model
            yield from _candidates(layer)
        elif isinstance(layer, Layer):
            yield layer


def _layers_to_shard(model, layout_map):
    """The layers holding a weight (theirs or their sublayers') that the layout map shards."""
    out, seen = [], set()
    for layer in _candidates(model):
        if id(layer) in seen:
            continue
        for v in layer.weights:
            if not getattr(v, "requires_grad", False):
                continue
            layout = layout_map[getattr(v, "path", None) or ""]
            if layout is not None and layout.sharded:
                out.append(layer)
                seen.add(id(layer))
                break
    return out


def shard_model(model, distribution):
    """Wrap the layers `distribution` (a `ModelParallel`) shards with FSDP, once per model."""
    from plexus.distribution.distribution_lib import ModelParallel
    if not isinstance(distribution, ModelParallel) or model.__dict__.get("_fsdp_sharded"):
        return
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from plexus.distribution import runtime as R
    kind = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
    mesh = init_device_mesh(kind, (R.world_size(),))
    layers = _layers_to_shard(model, distribution.layout_map)
    if not layers:
        raise ValueError(
            f"Rank {R.rank()}: ModelParallel's LayoutMap shards none of model {model.name!r}'s "
            f"weights (keys {list(distribution.layout_map)}; weight paths such as "
            f"{[w.path for w in model.weights[:3]]}). Give the weights to shard a layout with "
            "a mesh axis name, e.g. layout_map['dense.*kernel'] = ('model', None).")
    for layer in layers:
        cls = type(layer)
        fully_shard(layer, mesh=mesh)
        object.__setattr__(layer, "_class_before_sharding", cls)
        _FSDP_CLASSES[cls] = type(layer)
    object.__setattr__(model, "_fsdp_sharded", [layer for layer in layers])
    for opt in _optimizers(model):
        opt._packable = False  # FSDP's DTensors cannot be rebound to views of a flat buffer


def _optimizers(model):
    opt = getattr(model, "optimizer", None)
    out = []
    while opt is not None:
        out.append(opt)
        out += list(getattr(opt, "optimizers", None) or [])
        opt = getattr(opt, "inner_optimizer", None)
    return out


_FSDP_CLASSES = {}


def _fsdp_class(cls):
    return _FSDP_CLASSES[cls]


def sharded_layers(model):
    return model.__dict__.get("_fsdp_sharded") or []


@contextlib.contextmanager
def gathered(model):
    """Within the block the model holds full parameters (and its optimizer full slots) on
    every process; a collective: every process enters it."""
    layers = sharded_layers(model)
    if not layers:
        yield
        return
    DTensor = _dtensor_type()
    held = []  # (layer, name, sharded parameter): put back as they were after the block
    for layer in layers:
        # FSDP gave the layer a class of its own (`FSDPDense`); files name the layer's class
        layer.__class__ = layer.__dict__["_class_before_sharding"]
        for module in layer.modules():  # (the layer's and its sublayers' weights)
            for name, p in list(module._parameters.items()):
                if isinstance(p, DTensor):
                    held.append((module, name, p))
                    module._parameters[name] = torch.nn.Parameter(
                        p.full_tensor().detach(), requires_grad=p.requires_grad)
    swapped = []
    for opt in _optimizers(model):
        if not getattr(opt, "built", False):
            continue
        for name in opt._all_slot_names():
            slots = getattr(opt, name, None)
            if slots and any(isinstance(t, DTensor) for t in slots):
                swapped.append((opt, name, slots))
                object.__setattr__(opt, name, [t.full_tensor() if isinstance(t, DTensor) else t
                                               for t in slots])
    try:
        yield
    finally:
        for opt, name, slots in swapped:
            object.__setattr__(opt, name, slots)
        for module, name, p in held:
            module._parameters[name] = p
        for layer in layers:
            layer.__class__ = _fsdp_class(layer.__dict__["_class_before_sharding"])
