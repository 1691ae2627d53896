"""`clone_model`: the same architecture with new layers (and freshly initialized weights)."""
from plexus.graph import functional, tree
from plexus.layers.input_layer import Input


def _default_clone(layer):
    return type(layer).from_config(layer.get_config())


def clone_model(model, input_tensors=None, clone_function=None, call_function=None,
                recursive=False, **kwargs):
    """A new model with the same graph as `model` and new layers built from their configs.

    Weights are newly initialized, as in Keras; copy them with
    `clone.set_weights(model.get_weights())`. Classes of your own resolve through
    `register_keras_serializable` or an active `custom_object_scope`.

    Args:
        model: a functional or Sequential model (a subclassed one is re-created from its
            config).
        input_tensors: optional `Input` tensors (one per model input) to build the clone on.
        clone_function: `layer -> new layer`, called once per layer (shared layers stay
            shared); defaults to `type(layer).from_config(layer.get_config())`.
        call_function: `(layer, *args, **kwargs) -> outputs`, used instead of
            `layer(*args, **kwargs)` to call each cloned layer of a functional model.
        recursive: clone nested functional and Sequential models with `clone_model` too
            (with the same functions), instead of passing them to `clone_function`.
    """
    from plexus.models.functional import Functional
    from plexus.models.model import Model
    from plexus.models.sequential import Sequential
    if kwargs:
        raise TypeError(f"clone_model: unexpected keyword argument(s) {', '.join(kwargs)}.")
    if not isinstance(model, Model):
        raise TypeError(f"clone_model expects a plexus Model; received {type(model).__name__}.")
    clone = _cloner(clone_function or _default_clone, call_function, recursive)
    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError(
                "`call_function` argument is not supported with Sequential models: their layers "
                "are listed, not called, when the model is built. Use it with functional models.")
        return _clone_sequential(model, input_tensors, clone)
    if isinstance(model, Functional):
        return _clone_functional(model, input_tensors, clone, call_function)
    if input_tensors is not None or clone_function is not None or call_function is not None:
        raise ValueError(
            "Arguments `clone_function`, `call_function` and `input_tensors` need a Sequential "
            f"or functional model; model {model.name!r} is a subclassed "
            f"{type(model).__name__}, which clone_model re-creates from its config.")
    from plexus.saving.serialization import deserialize_keras_object, serialize_keras_object
    return deserialize_keras_object(serialize_keras_object(model),
                                    custom_objects={type(model).__name__: type(model)})


def _cloner(clone_function, call_function, recursive):
    """`clone_function`, applied once per layer (shared layers stay shared), recursing into
    nested models when asked."""
    from plexus.models.functional import Functional
    cache = {}

    def clone(layer):
        if id(layer) not in cache:
            if recursive and isinstance(layer, Functional):
                cache[id(layer)] = clone_model(layer, clone_function=clone_function,
                                               call_function=call_function, recursive=True)
            else:
                cache[id(layer)] = clone_function(layer)
        return cache[id(layer)]

    return clone


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


def _clone_functional(model, input_tensors, clone_function, call_function=None):
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

    def call_clone(step, args, kwargs):
        layer = clone_function(step.layer)  # the same clone for every call of a shared layer
        if call_function is not None:
            return call_function(layer, *args, **kwargs)
        return layer(*args, **kwargs)

    outputs = functional.run_steps(model._steps, model._n_slots, new_inputs,
                                   model._output_slots, apply=call_clone)
    inputs = tree.pack_like(model._inputs_struct, new_inputs)
    return Model(inputs, tree.pack_like(model._outputs_struct, outputs), name=model.name)
