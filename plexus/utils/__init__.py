"""Utilities, as `keras.utils`: `to_categorical`, `set_random_seed`, `plot_model`,
`get_source_inputs`, `custom_object_scope`, serialization helpers, ..."""
from plexus.utils.numerical import normalize, set_random_seed, to_categorical
from plexus.utils.plot import model_to_dot, plot_model
from plexus.utils.graph_utils import get_source_inputs
from plexus.backend import clear_session, is_keras_tensor, standardize_dtype  # noqa: E402
from plexus.config import (  # noqa: E402
    disable_interactive_logging, enable_interactive_logging, is_interactive_logging_enabled)
from plexus.saving.registry import (  # noqa: E402
    get_custom_objects, get_registered_name, get_registered_object, register_keras_serializable)
from plexus.saving.serialization import (  # noqa: E402
    CustomObjectScope, custom_object_scope, deserialize_keras_object, serialize_keras_object)
from plexus.training.data import pack_x_y_sample_weight, unpack_x_y_sample_weight  # noqa: E402
