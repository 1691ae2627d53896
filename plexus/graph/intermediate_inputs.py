"""Models whose inputs are intermediate tensors of a graph (`Model(encoded, predictions)`),
as Keras allows: each such input is replaced by a new `Input` of its shape and dtype, named
`<tensor name>CLONE` as Keras names it, and the layers between it and the outputs are applied
again to the new input (the same layer objects, so the weights are shared)."""
from plexus.graph import functional, tree


def _is_input(tensor):
    from plexus.layers.input_layer import InputLayer
    return tensor.node is not None and isinstance(tensor.node.layer, InputLayer)


def clone_intermediate_inputs(inputs, outputs):
    """`(inputs, outputs)` with every input not made by `Input` replaced as described above;
    unchanged when every input is an `Input` tensor."""
    from plexus.graph.tensor import KerasTensor
    from plexus.layers.input_layer import Input
    flat_in, flat_out = tree.flatten(inputs), tree.flatten(outputs)
    if not all(isinstance(t, KerasTensor) for t in flat_in + flat_out) or \
            all(_is_input(t) for t in flat_in) or len({id(t) for t in flat_in}) != len(flat_in):
        return inputs, outputs  # (the model reports what is wrong with them)
    input_ids = {id(t) for t in flat_in}
    nodes, _, _ = functional.build_map(flat_in, flat_out)
    # The nodes that made the intermediate inputs are upstream of the new model.
    nodes = [n for n in nodes if not any(id(t) in input_ids for t in n.output_tensors)]
    steps, slot_of = functional.compile_steps(nodes, flat_in, flat_out)
    new_inputs = [t if _is_input(t) else Input(batch_shape=t.shape, dtype=t.dtype,
                                               name=f"{t.name}CLONE") for t in flat_in]
    new_outputs = functional.run_steps(
        steps, len(slot_of), new_inputs, [slot_of[id(t)] for t in flat_out],
        apply=lambda step, args, kwargs: step.layer(*args, **kwargs))
    return tree.pack_like(inputs, new_inputs), tree.pack_like(outputs, new_outputs)
