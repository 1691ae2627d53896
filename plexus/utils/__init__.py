"""Utilities: `to_categorical`, `set_random_seed`, ..."""
from plexus.utils.numerical import normalize, set_random_seed, to_categorical
