"""`keras.preprocessing.sequence`."""
from plexus.utils.sequence_utils import pad_sequences
