"""Keras 2's `{"class_name", "config"}` serialization, as `keras.legacy.saving`."""
from plexus.saving.legacy_serialization import deserialize_keras_object, serialize_keras_object
