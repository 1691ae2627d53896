"""Optimizer state in Keras 3's layout: `optimizer/vars/0..n` (iterations, learning rate, then
each slot variable), so training resumes where it stopped.

An optimizer can take over with Keras's protocol: `save_own_variables(store)` fills a dict
`{"0": array, ...}` and `load_own_variables(store)` reads one. Otherwise plexus writes
`[iterations, learning_rate] + optimizer.variables` and reads the same back, building the
optimizer for the model's trainable weights first when needed.
"""
import warnings

import numpy as np
import torch

from plexus.variables import copy_into
from plexus.saving import h5 as h5util
from plexus.saving import limits
from plexus.saving.errors import LoadError


def _optimizer(model):
    if not getattr(model, "compiled", False):
        return None
    return getattr(model, "optimizer", None)


def _arrays(opt):
    if hasattr(opt, "save_own_variables"):
        store = {}
        opt.save_own_variables(store)
        return [np.asarray(store[k]) for k in sorted(store, key=int)]
    # the steps taken (with gradient accumulation, more than the updates applied)
    out = [np.asarray(getattr(opt, "_iterations", getattr(opt, "iterations", 0)), dtype=np.int64)]
    lr = getattr(opt, "_learning_rate", getattr(opt, "learning_rate", None))
    if isinstance(lr, (int, float)):
        out.append(np.asarray(lr, dtype=np.float32))
    out += [v.detach().cpu().numpy() for v in keras_ordered_slots(opt)]
    return out


def keras_ordered_slots(opt):
    """The optimizer's state tensors in the order Keras saves them (after `iterations` and the
    learning rate). plexus optimizers list `variables` in that order: slots created together
    interleaved per weight (`m_0, v_0, m_1, v_1`), then extra state such as Nadam's
    `u_product`."""
    return list(getattr(opt, "variables", []))


def write(model, f):
    """Write the compiled model's optimizer state into the open h5py file `f`."""
    opt = _optimizer(model)
    if opt is None:
        return
    group = f.require_group("optimizer/vars")
    group.attrs["name"] = str(getattr(opt, "name", type(opt).__name__.lower()))
    for i, value in enumerate(_arrays(opt)):
        group.create_dataset(str(i), data=value)
    inner = getattr(opt, "inner_optimizer", None)
    if inner is not None:  # a LossScaleOptimizer: Keras also reads its inner optimizer's own
        sub = f.require_group("optimizer/inner_optimizer/vars")
        for i, value in enumerate(_arrays(inner)):
            sub.create_dataset(str(i), data=value)
    seen = {}
    for part in getattr(opt, "optimizers", None) or ():  # a MultiOptimizer's, likewise
        name = str(part.name)
        seen[name] = seen.get(name, -1) + 1
        if seen[name]:
            name = f"{name}_{seen[name]}"  # (two sub-optimizers with one name)
        sub = f.require_group(f"optimizer/optimizers/{name}/vars")
        for i, value in enumerate(_arrays(part)):
            sub.create_dataset(str(i), data=value)


def _datasets(group, label):
    out = []
    for i in range(len(group)):
        ds = h5util.child(group, str(i), label, kind="dataset")
        if ds is None:
            raise LoadError(f"{label}: optimizer state is missing entry {i} "
                            f"({group.name}/{i}).")
        out.append(ds)
    return out


def _read_all(group, label):
    """Every entry of `group`, for optimizers that read their own state (shapes unknown)."""
    arrays = []
    for i, ds in enumerate(_datasets(group, label)):
        if len(ds.shape) > 8 or np.prod(ds.shape, dtype=np.int64) > limits.MAX_WEIGHT_ELEMENTS:
            raise LoadError(f"{label}: optimizer entry {i} ({ds.name}) has an absurd shape "
                            f"{ds.shape}.")
        arrays.append(h5util.read_dataset(ds, None, label, f"optimizer entry {i}"))
    return arrays


def stage(model, f, label):
    """Check and read the optimizer state saved in `f` for the compiled model's optimizer
    (building it for the model's weights when needed: plexus builds optimizers on the first
    step, Keras before `fit` starts); returns a function that puts the state in place (None
    when there is nothing to restore). Nothing else changes."""
    opt = _optimizer(model)
    group = h5util.walk(f, "optimizer/vars", label, kind="group")
    if opt is None or group is None:
        return None
    params = [p for p in model.weights if p.requires_grad]
    if not getattr(opt, "built", True) and hasattr(opt, "bind_model"):
        opt.bind_model(model)  # (some rules keep state in Keras's layout of each weight)
    if hasattr(opt, "load_own_variables"):
        if getattr(opt, "_builds_before_loading", False) and not opt.built:
            opt.build(params)
        store = {str(i): a for i, a in enumerate(_read_all(group, label))}
        return lambda: opt.load_own_variables(store)
    entries = _datasets(group, label)
    if not getattr(opt, "built", True) and len(entries) <= 2:
        return None  # saved before its first step: no state beyond the config (as Keras)
    return stage_restore(opt, entries, label, params)


def restore(opt, arrays, label, params):
    """Put `[iterations, learning_rate] + slots` (as `_arrays` lists them) back into `opt`,
    building it for `params` first when needed; nothing changes when any entry is wrong."""
    commit = stage_restore(opt, arrays, label, params)
    if commit is not None:
        commit()


def _entry(entry, shape, label, what):
    """An array, or the contents of an HDF5 dataset (`read_dataset` checks `shape` first)."""
    if hasattr(entry, "id") and hasattr(entry, "name"):
        return h5util.read_dataset(entry, shape, label, what)
    value = np.asarray(entry)
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise LoadError(f"{label}: {what} has shape {value.shape}; the optimizer expects "
                        f"{tuple(shape)}.")
    return value


def stage_restore(opt, entries, label, params):
    """Check `entries` (arrays or HDF5 datasets: `[iterations, learning_rate] + slots`) against
    `opt` (built for `params` when needed) and convert them; returns the function that copies
    them in, or None (with a warning) when their number does not match."""
    if not getattr(opt, "built", True) and hasattr(opt, "build"):
        opt.build(params)
    _prime_torch_state(opt)
    slots = keras_ordered_slots(opt)
    limits.charge(sum(v.numel() * v.element_size() for v in slots), "the optimizer's slots")
    lr = getattr(opt, "_learning_rate", None)
    head = 2 if isinstance(lr, (int, float)) else 1
    if len(entries) != head + len(slots):
        warnings.warn(
            f"{label}: the saved optimizer state has {len(entries)} entries but the optimizer "
            f"{type(opt).__name__} has {head + len(slots)}; its state was not restored (training "
            "resumes with fresh optimizer state).", stacklevel=4)
        return None
    for i, (slot, entry) in enumerate(zip(slots, entries[head:])):
        if tuple(np.shape(entry)) != tuple(slot.shape):  # every shape, before reading any
            raise LoadError(f"{label}: optimizer entry {head + i} has shape "
                            f"{tuple(np.shape(entry))}; the optimizer expects "
                            f"{tuple(slot.shape)}.")
    names = ("step count", "learning rate")
    scalars = [_entry(e, None, label, f"optimizer entry {i}") for i, e in enumerate(entries[:head])]
    for i, value in enumerate(scalars):
        if value.size != 1 or value.dtype.kind not in "biuf":
            raise LoadError(f"{label}: optimizer entry {i} (the {names[i]}) must be one number; "
                            f"it has shape {value.shape} and dtype {value.dtype}.")
    staged = []
    for i, (slot, entry) in enumerate(zip(slots, entries[head:])):
        value = _entry(entry, tuple(slot.shape), label, f"optimizer entry {head + i}")
        limits.charge(slot.numel() * slot.element_size(), f"optimizer entry {head + i}")
        staged.append(torch.from_numpy(np.asarray(value, order="C")).to(slot.dtype))
    iterations = int(scalars[0].reshape(()))
    rate = float(scalars[1].reshape(())) if head == 2 else None

    def commit():
        with torch.no_grad():
            for slot, value in zip(slots, staged):
                copy_into(slot, value)  # (a sharded slot takes its shard)
        if hasattr(opt, "_iterations"):
            opt._iterations = iterations
        else:
            opt.iterations = iterations
        if rate is not None and np.float32(rate) != np.float32(opt._learning_rate):
            opt.learning_rate = rate  # (the file holds float32: keep an equal rate)
        inner = getattr(opt, "_torch", None)
        if isinstance(inner, torch.optim.Optimizer):
            for state in inner.state.values():
                if "step" in state:
                    state["step"] = torch.as_tensor(float(opt.iterations),
                                                    dtype=state["step"].dtype,
                                                    device=state["step"].device)
    return commit


def _prime_torch_state(opt):
    """torch optimizers create their state (moments, step counts) on their first step. Make
    it exist now, with one zero-gradient, zero-rate step whose effect on the weights is
    undone, so that saved moments have somewhere to go."""
    inner = getattr(opt, "_torch", None)
    if not isinstance(inner, torch.optim.Optimizer) or inner.state:
        return
    params = [p for group in inner.param_groups for p in group["params"]]
    saved = [p.detach().clone() for p in params]
    grads = [p.grad for p in params]
    rates = [group["lr"] for group in inner.param_groups]
    with torch.no_grad():
        for p in params:
            p.grad = torch.zeros_like(p)
        for group in inner.param_groups:
            group["lr"] = 0.0
        inner.step()
        for p, value, g in zip(params, saved, grads):
            p.copy_(value)
            p.grad = g
        for group, lr in zip(inner.param_groups, rates):
            group["lr"] = lr
