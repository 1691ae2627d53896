"""Saving and loading models: Keras-compatible `.keras` / `.h5` files, safe against hostile ones.

    model.save("model.keras")
    model = plexus.saving.load_model("model.keras", custom_objects={"Scale": Scale})

Files name classes; plexus creates only classes from its own registry and those you register
(`register_keras_serializable`) or pass (`custom_objects`). Nothing is unpickled, unmarshalled or
imported from a file. Broken or hostile files raise `LoadError` (a `ValueError`).
"""
from plexus.saving.errors import LoadError
from plexus.saving.registry import (
    get_custom_objects, get_registered_name, get_registered_object, register_keras_serializable,
    register_serializable,
)
from plexus.saving.serialization import (
    CustomObjectScope, custom_object_scope, deserialize_keras_object, serialize_keras_object,
)
from plexus.saving.api import (
    load_model, load_weights, model_from_config, model_from_json, save_model, save_weights,
)
from plexus.saving.file_editor import KerasFileEditor
