"""Keras 2's `{"class_name", "config"}` serialization, as `keras.utils.legacy`."""
from plexus.saving.legacy_serialization import deserialize_keras_object, serialize_keras_object
