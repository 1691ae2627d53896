"""The error every refused or broken file raises."""


class LoadError(ValueError):
    """A model or weights file could not be loaded: it is missing, truncated, corrupt, of the
    wrong format, does not match the model, or asks for something plexus refuses to do.

    A `ValueError`, so code catching Keras's loading errors keeps working.
    """
