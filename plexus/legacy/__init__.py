"""`plexus.legacy`, as `keras.legacy`: Keras 2's serialization format (`legacy.saving`)."""
from plexus.legacy import saving
