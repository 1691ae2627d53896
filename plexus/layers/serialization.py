"""`plexus.layers.serialize` / `deserialize`: one layer to and from its Keras-format config."""


def serialize(layer):
    """`{"module", "class_name", "config", "registered_name"}` for `layer`, as Keras writes it."""
    from plexus.saving.serialization import serialize_layer
    return serialize_layer(layer)


def deserialize(config, custom_objects=None, safe_mode=True):
    """A new layer from `serialize`'s output (or Keras's); classes resolve only through
    plexus's registry and `custom_objects`. Already-built layers are returned unchanged."""
    from plexus.saving.serialization import deserialize_keras_object
    return deserialize_keras_object(config, custom_objects=custom_objects, safe_mode=safe_mode,
                                    category="layers")
