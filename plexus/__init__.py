"""plexus: the Keras Functional API, rebuilt on PyTorch.

    import plexus as keras
    inputs = keras.Input(shape=(64,))
    outputs = keras.layers.Dense(10, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
"""
from plexus import activations, backend, config, constraints, initializers, layers, models
from plexus import random, regularizers, tree, utils
from plexus.backend import clear_session
from plexus.graph.tensor import KerasTensor
from plexus.layers import Input, InputLayer, InputSpec, Layer
from plexus.models import Functional, Model, Sequential
from plexus import callbacks, losses, metrics, optimizers  # noqa: E402  (training API)
from plexus import ops  # noqa: E402  (keras.ops: eager, symbolic, saved as Keras op nodes)
from plexus import saving  # noqa: E402  (save_model, load_model, register_keras_serializable)
from plexus import applications  # noqa: E402  (after layers and models, which it uses)
from plexus import dtype_policies, mixed_precision  # noqa: E402  (dtype policies, loss scaling)
from plexus import datasets, preprocessing  # noqa: E402  (data loading)
from plexus import distribution  # noqa: E402  (several processes: keras.distribution)
from plexus import distillation, legacy, quantizers, visualization  # noqa: E402
from plexus.mixed_precision import DTypePolicy, FloatDTypePolicy  # noqa: E402
from plexus.variables import Variable  # noqa: E402
# Base classes and helpers Keras also names at the top level.
from plexus.initializers import Initializer  # noqa: E402
from plexus.losses import Loss  # noqa: E402
from plexus.metrics import Metric  # noqa: E402
from plexus.optimizers import Optimizer  # noqa: E402
from plexus.quantizers import Quantizer  # noqa: E402
from plexus.regularizers import Regularizer  # noqa: E402
from plexus.rematerialization import remat  # noqa: E402

__version__ = "0.1.0"


def version():
    """plexus's version string."""
    return __version__
