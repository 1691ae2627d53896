"""`Model.export`: a model as an ONNX file (through `torch.onnx.export`, the dynamo exporter) or
a `torch.export` program (`.pt2`), both runnable without plexus.

The model's symbolic inputs give the signature: every `None` axis (the batch, a variable
sequence length) is dynamic, input names are the model's `Input` names and output names its
`output_names`. The program is traced in inference mode and its weights are saved as plain
tensors, so `torch.export.load` needs only torch and the ONNX file only an ONNX runtime.
"""
import os

import torch

from plexus.graph import tree
from plexus.graph.tensor import KerasTensor, torch_dtype

FORMATS = ("onnx", "torch")
_EXAMPLE_BATCH = 2  # sizes of the example inputs for dynamic axes (not 0 or 1: torch
_EXAMPLE_OTHER = 3  # specializes those)


def export_model(model, filepath, format="onnx", verbose=None, input_signature=None, **kwargs):
    """Write `model` to `filepath` in `format` (`"onnx"` or `"torch"`); returns the path.

    `input_signature`: the inputs' shapes and dtypes, by default the model's `Input`s: one
    spec for each input (`plexus.InputSpec`, a symbolic tensor, a tensor, or a shape tuple), in
    a list (or a dict by input name). Extra keyword arguments go to `torch.onnx.export` or
    `torch.export.export`.
    """
    label = f"Model {getattr(model, 'name', type(model).__name__)!r}"
    if format not in FORMATS:
        raise ValueError(
            f"{label}: unknown export format {format!r}. plexus exports format='onnx' (an ONNX "
            "file through torch.onnx) or format='torch' (a torch.export program, .pt2); "
            "TensorFlow's formats (tf_saved_model) need TensorFlow.")
    from plexus.models.functional import Functional
    if not isinstance(model, Functional):
        raise ValueError(
            f"{label} is a subclassed model, which has no symbolic inputs to name and shape "
            "the export: `export()` takes functional and Sequential models. Export a subclassed "
            "model with torch.export.export(model, (example,)) or torch.onnx.export directly.")
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise ValueError(
            f"{label} has not been built, so its inputs are unknown: call it on data or on "
            "`plexus.Input`s (or build it with `model.build(input_shape)`) before `export()`.")
    specs = _signature(model, input_signature, label)
    examples, dynamic = [], []
    for name, shape, dtype in specs:
        if dtype is None:
            raise ValueError(f"{label}: input {name!r} takes strings, which neither ONNX nor "
                             "torch.export can take. Export a model that starts after the "
                             "text preprocessing.")
        concrete = [(_EXAMPLE_BATCH if i == 0 else _EXAMPLE_OTHER) if d is None else d
                    for i, d in enumerate(shape)]
        if dtype.is_floating_point:
            examples.append(torch.rand(concrete, dtype=dtype))
        else:
            examples.append(torch.zeros(concrete, dtype=dtype))
        dynamic.append({i: (_BATCH if i == 0 else torch.export.Dim.DYNAMIC)
                        for i, d in enumerate(shape) if d is None} or None)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    examples = [e.to(device) for e in examples]
    packed = examples[0] if len(examples) == 1 else model._pack_inputs(examples)
    packed_dynamic = dynamic[0] if len(dynamic) == 1 else model._pack_inputs(dynamic)
    filepath = os.fspath(filepath)
    was_training = model.training
    model.train(False)
    try:
        # Traced for inference: without gradients (a grad-mode switch inside a layer would
        # otherwise be recorded as a region the saved program cannot load back).
        with torch.no_grad():
            program = torch.export.export(
                model, (packed,), dynamic_shapes=(packed_dynamic,),
                **{k: v for k, v in kwargs.items() if format == "torch"})
    except torch._dynamo.exc.UserError as e:
        if getattr(e, "error_type", None) is not \
                torch._dynamo.exc.UserErrorType.CONSTRAINT_VIOLATION:
            raise
        free = {name: shape for name, shape, _ in specs if None in shape[1:]}
        lines = [ln.strip(" -") for ln in str(e).splitlines() if "specialized" in ln]
        why = lines[0].split(" If you")[0] if lines else str(e).splitlines()[0]
        if not free or "batch" in why:  # the graph fixed the batch axis itself
            fixed = [tuple(2 if d is None else d for d in shape) for _, shape, _ in specs]
            raise ValueError(
                f"{label}: the traced graph fixes the batch size (torch.export: {why}), so "
                "the export cannot keep the batch axis dynamic; a layer of the model shapes "
                "its tensors for one batch size (e.g. a reshape to a fixed leading size). "
                f"Export with a fixed batch in input_signature, e.g. {fixed}, or make that "
                "layer keep the batch axis free (-1 or the input's own size)."
            ) from None
        examples = [tuple(d if d is not None or i == 0 else 100 for i, d in enumerate(shape))
                    for shape in free.values()]
        raise ValueError(
            f"{label}: an axis left free (None) cannot stay dynamic in the export, the traced "
            f"graph fixes its size (torch.export: {why}); recurrent layers, for one, are traced "
            f"for one sequence length. Pass input_signature with fixed sizes for the free "
            f"axes of {sorted(free)} (shapes {list(free.values())}), e.g. {examples}."
        ) from None
    finally:
        model.train(was_training)
    _plain_state(program)
    if format == "torch":
        torch.export.save(program, filepath)
    else:
        onnx_program = torch.onnx.export(
            program, input_names=[name for name, _, _ in specs],
            output_names=list(model.output_names), dynamo=True,
            verbose=bool(verbose) if verbose is not None else False, **kwargs)
        onnx_program.save(filepath)
    if verbose:
        print(f"Saved {label} as {format} to {filepath}")
    return filepath


_BATCH = torch.export.Dim("batch")


def _plain_state(program):
    """The program's weights as plain tensors (plexus's `Variable` is a parameter subclass):
    loading the file must not need plexus."""
    for key, value in list(program.state_dict.items()):
        plain = value.detach().as_subclass(torch.Tensor)
        if isinstance(value, torch.nn.Parameter):
            plain = torch.nn.Parameter(plain, requires_grad=value.requires_grad)
        program.state_dict[key] = plain
    for key, value in list(program.constants.items()):
        if isinstance(value, torch.Tensor) and type(value) is not torch.Tensor:
            program.constants[key] = value.detach().as_subclass(torch.Tensor)


def _signature(model, input_signature, label):
    """[(name, shape, torch dtype or None for strings)] for the model's inputs."""
    names = list(model.input_names)
    own = [(n, tuple(t.shape), None if t.dtype == "string" else torch_dtype(t.dtype))
           for n, t in zip(names, model.inputs)]
    if input_signature is None:
        return own
    sig = input_signature
    if isinstance(sig, dict):
        unknown = sorted(set(sig) - set(names))
        if unknown or len(sig) != len(names):
            raise ValueError(
                f"{label}: input_signature names {sorted(sig)}, but the model's inputs are "
                f"{names}.")
        sig = [sig[n] for n in names]
    elif not isinstance(sig, (list, tuple)) or _is_shape(sig):
        sig = [sig]
    if len(sig) == 1 and len(names) > 1 and isinstance(sig[0], (list, tuple)) \
            and not _is_shape(sig[0]):
        sig = list(sig[0])
    if len(sig) != len(names):
        raise ValueError(
            f"{label} has {len(names)} input(s) {names}; input_signature gives {len(sig)} "
            f"spec(s). Pass one spec per input, e.g. "
            f"{[tuple(s) for _, s, _ in own]}.")
    out = []
    for (name, shape, dtype), spec in zip(own, sig):
        s_shape, s_dtype = _spec_shape_dtype(spec, label, name)
        bad = len(s_shape) != len(shape) or any(
            d is not None and d != e for d, e in zip(shape, s_shape))
        if bad:
            raise ValueError(
                f"{label}: input_signature gives input {name!r} the shape {s_shape}, but the "
                f"model's input {name!r} has shape {shape} (None: any size). Give a shape of "
                f"rank {len(shape)} that agrees with it on every fixed axis.")
        out.append((name, s_shape, dtype if s_dtype is None else s_dtype))
    return out


def _is_shape(value):
    return isinstance(value, (list, tuple)) and all(
        d is None or isinstance(d, int) for d in value)


def _spec_shape_dtype(spec, label, name):
    if isinstance(spec, torch.Tensor):
        return tuple(spec.shape), spec.dtype
    if isinstance(spec, KerasTensor):
        return tuple(spec.shape), torch_dtype(spec.dtype)
    if _is_shape(spec):
        return tuple(spec), None
    shape = getattr(spec, "shape", None)
    if shape is not None and _is_shape(tuple(shape)):
        dtype = getattr(spec, "dtype", None)
        return tuple(shape), (torch_dtype(dtype) if dtype is not None else None)
    raise ValueError(
        f"{label}: input_signature for input {name!r} must be a plexus.InputSpec (with a "
        f"shape), a symbolic tensor, a tensor or a shape tuple; received {tree.flatten(spec)!r}.")
