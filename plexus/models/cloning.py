"""`clone_model`: the same architecture with new layers (and freshly initialized weights)."""
from plexus.graph import functional, tree
from plexus.layers.input_layer import Input


def _default_clone(layer):
    return type(layer).from_config(layer.get_config())


def clone_model(model, input_tensors=None, clone_function=None, **kwargs):
    """A new model with the same graph as `model` and new layers built from their configs.

    Weights are newly initialized, as in Keras; copy them with
    `clone.set_weights(model.get_weights())`.

    Args:
        model: a functional or Sequential model (a subclassed one is re-created from its
            config).
        input_tensors: optional `Input` tensors (one per model input) to build the clone on.
        clone_function: `layer -> new layer`, called once per layer (shared layers stay
            shared); defaults to `type(layer).from_config(layer.get_config())`.
    """
    from plexus.models.functional import Functional
    from plexus.models.model import Model
    from plexus.models.sequential import Sequential
    if kwargs:
        raise TypeError(f"clone_model: unexpected keyword argument(s) {', '.join(kwargs)}.")
    if not isinstance(model, Model):
        raise TypeError(f"clone_model expects a plexus Model; received {type(model).__name__}.")
    clone_function = clone_function or _default_clone
    if isinstance(model, Sequential):
        return _clone_sequential(model, input_tensors, clone_function)
    if not isinstance(model, Functional):
        return type(model).from_config(model.get_config())
    return _clone_functional(model, input_tensors, clone_function)


def _new_input(layer):
    return Input(batch_shape=layer.batch_shape, dtype=layer.dtype, name=layer.name)


def _clone_sequential(model, input_tensors, clone_function):
    from plexus.models.sequential import Sequential
    clone = Sequential(name=model.name)
    if input_tensors is not None:
        flat = tree.flatten(input_tensors)
        if len(flat) != 1:
            raise ValueError("A Sequential model has one input; pass one tensor as input_tensors.")
        clone.add(flat[0])
    elif model._input_layer is not None:
        clone.add(_new_input(model._input_layer))
    for layer in model.layers:
        clone.add(clone_function(layer))
    return clone


def _clone_functional(model, input_tensors, clone_function):
    from plexus.models.model import Model
    if input_tensors is not None:
        new_inputs = tree.flatten(input_tensors)
        if len(new_inputs) != len(model.inputs):
            raise ValueError(
                f"clone_model: model {model.name!r} has {len(model.inputs)} input(s); received "
                f"{len(new_inputs)} input_tensors."
            )
    else:
        new_inputs = [_new_input(t.node.layer) for t in model.inputs]
    layer_map = {}

    def call_clone(step, args, kwargs):
        if step.layer not in layer_map:
            layer_map[step.layer] = clone_function(step.layer)
        return layer_map[step.layer](*args, **kwargs)

    outputs = functional.run_steps(model._steps, model._n_slots, new_inputs,
                                   model._output_slots, apply=call_clone)
    inputs = tree.pack_like(model._inputs_struct, new_inputs)
    return Model(inputs, tree.pack_like(model._outputs_struct, outputs), name=model.name)
