"""`keras.preprocessing`: the dataset loaders and the `image` and `sequence` helpers, under
the names Keras 3 keeps for older code."""
from plexus.preprocessing import image, sequence
from plexus.utils.directory_datasets import image_dataset_from_directory, \
    text_dataset_from_directory
from plexus.utils.sequence_utils import timeseries_dataset_from_array
