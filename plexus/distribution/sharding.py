"""`ModelParallel`: parameters sharded across the processes with torch FSDP2.

When training starts, every layer that owns a weight whose path the `LayoutMap` gives a
sharded layout is wrapped with `torch.distributed.fsdp.fully_shard` over all processes: its
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


def _layers_to_shard(model, layout_map):
    """The layers owning a weight the layout map shards, outermost first, each once."""
    from plexus.layers.layer import Layer
    out, seen = [], set()
    for module in model.modules():
        if module is model or not isinstance(module, Layer) or id(module) in seen:
            continue
        own = list(module._parameters.values())
        if not any(p is not None for p in own):
            continue
        for v in own:
            if v is None:
                continue
            path = getattr(v, "path", None) or ""
            layout = layout_map[path]
            if layout is not None and layout.sharded:
                out.append(module)
                seen.add(id(module))
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
    R.broadcast_state(model)  # (the shards are cut from rank 0's weights)
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
        for name, p in list(layer._parameters.items()):
            if isinstance(p, DTensor):
                held.append((layer, name, p))
                layer._parameters[name] = torch.nn.Parameter(
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
        for layer, name, p in held:
            layer._parameters[name] = p
        for layer in layers:
            layer.__class__ = _fsdp_class(layer.__dict__["_class_before_sharding"])
