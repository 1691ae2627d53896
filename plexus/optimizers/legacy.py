"""`plexus.optimizers.legacy`: Keras 2's optimizers, kept by name so that old imports fail
with a clear message (as in Keras 3) rather than an AttributeError."""


class _Legacy:
    def __init__(self, *args, **kwargs):
        raise ImportError(
            f"plexus.optimizers.legacy.{type(self).__name__} is Keras 2's (tf.keras) optimizer, "
            "which Keras 3 and plexus do not have; use "
            f"plexus.optimizers.{type(self).__name__} instead.")


class Adagrad(_Legacy):
    """Keras 2's Adagrad: use `plexus.optimizers.Adagrad`."""


class Adam(_Legacy):
    """Keras 2's Adam: use `plexus.optimizers.Adam`."""


class Ftrl(_Legacy):
    """Keras 2's Ftrl: use `plexus.optimizers.Ftrl`."""


class Optimizer(_Legacy):
    """Keras 2's Optimizer: use `plexus.optimizers.Optimizer`."""


class RMSprop(_Legacy):
    """Keras 2's RMSprop: use `plexus.optimizers.RMSprop`."""


class SGD(_Legacy):
    """Keras 2's SGD: use `plexus.optimizers.SGD`."""
