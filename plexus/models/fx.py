"""`torch.fx.symbolic_trace(model)` for a functional model: its graph of layer calls.

A functional model already is a graph, so tracing does not run its Python: every layer call
becomes a `call_module` node on the model's own layer (a leaf, not traced into), with the
arguments the layer was called with. The `GraphModule` computes what the model computes on
tensors already shaped and typed like its `Input`s.
"""
import torch.fx

from plexus.graph import tree
from plexus.graph.tensor import KerasTensor


def has_proxy(inputs):
    if isinstance(inputs, torch.fx.Proxy):
        return True
    if isinstance(inputs, dict):
        inputs = list(inputs.values())
    return isinstance(inputs, (list, tuple)) and any(
        isinstance(v, torch.fx.Proxy) for v in inputs)


def flat_item(outputs, i):
    """The `i`-th tensor of a layer's (nested) outputs."""
    return tree.flatten(outputs)[i]


def trace(model, inputs):
    """The outputs of `model` as fx proxies, recording one node per layer call."""
    flat = tree.flatten(inputs) if not isinstance(inputs, torch.fx.Proxy) else [inputs]
    if len(flat) == 1 and len(model.inputs) > 1:  # one proxy standing for all the inputs
        keys = list(model.input_names) if isinstance(model._inputs_struct, dict) \
            else range(len(model.inputs))
        flat = [flat[0][k] for k in keys]
    if len(flat) != len(model.inputs):
        raise ValueError(
            f"Model {model.name!r} has {len(model.inputs)} inputs; symbolic tracing received "
            f"{len(flat)}.")
    tracer = flat[0].tracer
    values = {id(t): p for t, p in zip(model.inputs, flat)}
    for step in model._steps:
        node = step.node
        args, kwargs = tree.map_structure(
            lambda v: values[id(v)] if isinstance(v, KerasTensor) else v, (node.args, node.kwargs))
        target = tracer.path_of_module(node.layer)
        out = tracer.create_proxy("call_module", target, tuple(args), dict(kwargs))
        if len(node.output_tensors) == 1 and isinstance(node.outputs, KerasTensor):
            values[id(node.outputs)] = out
        else:
            for i, t in enumerate(node.output_tensors):
                values[id(t)] = tracer.create_proxy("call_function", flat_item, (out, i), {})
    return model._pack_outputs([values[id(t)] for t in model.outputs])
