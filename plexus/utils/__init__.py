"""Utilities: `to_categorical`, `set_random_seed`, `plot_model`, `model_to_dot`, ..."""
from plexus.utils.numerical import normalize, set_random_seed, to_categorical
from plexus.utils.plot import model_to_dot, plot_model
from plexus.saving.registry import register_keras_serializable  # noqa: E402
from plexus.training.data import pack_x_y_sample_weight, unpack_x_y_sample_weight  # noqa: E402
