"""Utilities, as `keras.utils`: data loading (`image_dataset_from_directory`, `PyDataset`,
`pad_sequences`, ...), images, files, `to_categorical`, `set_random_seed`, `plot_model`,
`Progbar`, `get_source_inputs`, `custom_object_scope` and the serialization helpers."""
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
from plexus.utils.dataset import AUTOTUNE, Dataset
from plexus.utils.directory_datasets import (
    audio_dataset_from_directory, image_dataset_from_directory, text_dataset_from_directory,
)
from plexus.utils.file_utils import get_file
from plexus.utils.image_utils import array_to_img, img_to_array, load_img, save_img
from plexus.utils.progbar import Progbar
from plexus.utils.py_dataset import PyDataset, Sequence
from plexus.utils.sequence_utils import (
    pad_sequences, split_dataset, timeseries_dataset_from_array,
)
from plexus.training.data import pack_x_y_sample_weight, unpack_x_y_sample_weight  # noqa: E402
from plexus.utils.config_container import Config  # noqa: E402
from plexus.utils import legacy  # noqa: E402
from plexus.utils import bounding_boxes  # noqa: E402
from plexus.utils.feature_space import FeatureSpace  # noqa: E402
