"""Ordering a graph of nodes and running it: the engine behind a functional `Model`."""
import inspect

from plexus.graph import tree
from plexus.graph.tensor import KerasTensor

_SIGNATURES = {}
_DONE = object()  # marks a finished node on build_map's stack


def call_accepts(layer, arg):
    """Whether `layer.call` takes keyword `arg` (cached per class)."""
    key = (type(layer), arg)
    if key not in _SIGNATURES:
        params = inspect.signature(layer.call).parameters
        _SIGNATURES[key] = arg in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return _SIGNATURES[key]


def build_map(inputs, outputs):
    """Walk back from `outputs` to `inputs` (iteratively: any depth of graph).

    Returns `(nodes, nodes_by_depth, layers)`: the nodes in an order where every node comes
    after the nodes it depends on, and the layers ordered as Keras orders `model.layers` (by
    depth from the outputs, inputs first; ties broken by traversal order). Raises ValueError
    naming the input that is not among `inputs` and the layer needing it.
    """
    input_ids = {id(t) for t in inputs}
    finished, in_progress = set(), set()
    ordered, layer_index = [], {}
    # A depth-first walk with an explicit stack: (tensor, consumer layer) entries to visit,
    # and (node, None) entries that mark a node whose inputs are all done.
    stack = [(t, None) for t in reversed(outputs)]
    while stack:
        tensor, consumer = stack.pop()
        if consumer is _DONE:
            finished.add(id(tensor))
            in_progress.discard(id(tensor))
            ordered.append(tensor)
            continue
        node = tensor.node
        if node is None:
            raise ValueError(f"Tensor {tensor.name!r} was not produced by a layer call.")
        if id(node) in finished:
            continue
        if id(node) in in_progress:
            raise ValueError(f"The graph has a cycle at layer {node.layer.name!r}.")
        layer_index.setdefault(node.layer, len(layer_index))
        in_progress.add(id(node))
        stack.append((node, _DONE))
        if id(tensor) not in input_ids:
            if node.is_input:
                needed_by = f"layer {consumer.name!r}" if consumer else "the outputs"
                raise ValueError(
                    f"Graph disconnected: {needed_by} needs input {tensor.name!r} "
                    f"(shape {tensor.shape}), which is not among the model's inputs "
                    f"[{', '.join(repr(t.name) for t in inputs)}]. Pass every Input the outputs "
                    "depend on to Model(inputs=...)."
                )
            stack.extend((t, node.layer) for t in reversed(node.input_tensors))

    # Depth: outputs at 0, each parent at least one deeper than its children.
    node_depth, layer_depth = {}, {}
    for node in reversed(ordered):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = depth
        node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    nodes_by_depth = {}
    for node in ordered:
        nodes_by_depth.setdefault(node_depth[id(node)], []).append(node)
    layers_by_depth = {}
    for layer, depth in layer_depth.items():
        layers_by_depth.setdefault(depth, []).append(layer)
    layers = []
    for depth in sorted(layers_by_depth, reverse=True):
        layers.extend(sorted(layers_by_depth[depth], key=lambda l: layer_index[l]))
    return ordered, nodes_by_depth, layers


class _Slot:
    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i


class Step:
    """One node, compiled for running: which value slots feed it and which it fills."""

    __slots__ = ("layer", "node", "single", "template", "flat", "out_slots", "pass_training",
                 "mask_in", "makes_mask", "free", "arg_masks")

    def __init__(self, node, slot_of):
        self.layer = node.layer
        self.node = node
        mark = lambda t: _Slot(slot_of[id(t)]) if isinstance(t, KerasTensor) else t  # noqa: E731
        args = tree.map_structure(mark, node.args)
        kwargs = tree.map_structure(mark, node.kwargs)
        self.single = (len(args) == 1 and isinstance(args[0], _Slot) and not kwargs)
        self.template = (args, kwargs)
        # Positional arguments that are each a slot or a plain constant (`x * 0.1`, ops with
        # several tensors): filled with one comprehension instead of a structure walk.
        self.flat = not kwargs and not any(isinstance(a, (list, tuple, dict)) for a in args)
        self.out_slots = [slot_of[id(t)] for t in node.output_tensors]
        # As Keras: the model's mode, when given (fit, predict), wins over a `training=`
        # recorded with the call (Keras records one for Dropout, SpectralNormalization, ...).
        self.pass_training = call_accepts(self.layer, "training")
        in_masked = any(t.has_mask for t in node.input_tensors)
        self.mask_in = in_masked and call_accepts(self.layer, "mask")
        self.makes_mask = any(t.has_mask for t in node.output_tensors)
        self.free = ()
        self.arg_masks = _arg_masks(node, slot_of) if in_masked else ()


def _arg_masks(node, slot_of):
    """`(name_mask, slot)` for masked tensors passed as arguments after the first to a layer
    whose call takes `<name>_mask` (MultiHeadAttention's `value` -> `value_mask`)."""
    try:
        params = inspect.signature(node.layer.call).parameters
    except (TypeError, ValueError):
        return ()
    names = [n for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    given = list(zip(names[1:], node.args[1:])) + list(node.kwargs.items())
    out = []
    for name, t in given:
        key = f"{name}_mask"
        if isinstance(t, KerasTensor) and t.has_mask and key in params and key not in node.kwargs:
            out.append((key, slot_of[id(t)]))
    return tuple(out)


def compile_steps(nodes, inputs, outputs):
    """Turn ordered nodes into steps over numbered value slots, freeing values after last use."""
    slot_of = {}
    for t in inputs:
        slot_of.setdefault(id(t), len(slot_of))
    steps = []
    for node in nodes:
        if node.is_input:
            continue
        for t in node.output_tensors:
            slot_of.setdefault(id(t), len(slot_of))
        steps.append(Step(node, slot_of))
    keep = {slot_of[id(t)] for t in outputs}
    last_use = {}
    for i, step in enumerate(steps):
        for t in step.node.input_tensors:
            last_use[slot_of[id(t)]] = i
    frees = {}
    for slot, i in last_use.items():
        if slot not in keep:
            frees.setdefault(i, []).append(slot)
    for i, step in enumerate(steps):
        step.free = tuple(frees.get(i, ()))
    steps = StepList(steps)
    steps.uses_masks = any(s.mask_in or s.makes_mask for s in steps)
    return steps, slot_of


class StepList(list):
    """The compiled steps, plus whether any of them reads or makes a mask (known once)."""

    __slots__ = ("uses_masks",)


def _fill(template, vals):
    return tree.map_structure(lambda a: vals[a.i] if isinstance(a, _Slot) else a, template)


def consumers(steps, tensor):
    """The nodes among `steps` that take `tensor` as an input."""
    return [step.node for step in steps if any(t is tensor for t in step.node.input_tensors)]


def run_steps(steps, n_slots, input_values, output_slots, training=None, input_masks=None,
              apply=None):
    """Walk compiled steps (a `StepList` from `compile_steps`) over value slots; returns the
    output values in order.

    By default each step calls its layer on the values (tensors), passing `training` and, when
    the graph has masks, each layer's input mask. `apply(step, args, kwargs) -> outputs`
    replaces that call: the same walk computes output specs or clones a graph.
    """
    vals = [None] * n_slots
    vals[:len(input_values)] = input_values
    masks = None
    if apply is None and (input_masks is not None or steps.uses_masks):
        masks = [None] * n_slots
        if input_masks is not None:
            masks[:len(input_masks)] = input_masks
    for step in steps:
        layer = step.layer
        if apply is not None:
            args, kwargs = _fill(step.template, vals)
            for s, v in zip(step.out_slots, tree.flatten(apply(step, args, kwargs))):
                vals[s] = v
        elif step.single and masks is None:
            x = vals[step.template[0][0].i]
            out = layer._call_impl(x, training=training) if (training is not None and step.pass_training) \
                else layer._call_impl(x)
            if len(step.out_slots) == 1:
                vals[step.out_slots[0]] = out
            else:
                for s, v in zip(step.out_slots, tree.flatten(out)):
                    vals[s] = v
        elif step.flat and masks is None and not step.pass_training:
            out = layer._call_impl(*[vals[a.i] if type(a) is _Slot else a
                                     for a in step.template[0]])
            if len(step.out_slots) == 1:
                vals[step.out_slots[0]] = out
            else:
                for s, v in zip(step.out_slots, tree.flatten(out)):
                    vals[s] = v
        else:
            args, kwargs = _fill(step.template, vals)
            if training is not None and step.pass_training:
                kwargs = {**kwargs, "training": training}
            in_mask = None
            if masks is not None:
                in_mask = _fill(step.template[0][0], masks) if step.template[0] else None
                if step.mask_in:
                    kwargs = {**kwargs, "mask": in_mask}
                for name, slot in step.arg_masks:
                    kwargs = {**kwargs, name: masks[slot]}
            out = layer._call_impl(*args, **kwargs)
            flat = tree.flatten(out)
            for s, v in zip(step.out_slots, flat):
                vals[s] = v
            if masks is not None and step.makes_mask:
                m = layer.compute_mask(args[0], in_mask)
                flat_m = tree.flatten(m) if isinstance(m, (list, tuple)) else [m] * len(flat)
                for s, v in zip(step.out_slots, flat_m):
                    masks[s] = v
        for s in step.free:
            vals[s] = None
    return [vals[s] for s in output_slots]
