"""Metrics: `plexus.metrics.AUC()`, `plexus.metrics.Precision()`, ... (stateful objects)."""
from plexus.training.metrics import (  # noqa: F401
    AUC, BinaryAccuracy, BinaryCrossentropy, CategoricalAccuracy, CategoricalCrossentropy,
    Hinge, KLDivergence, Mean, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanMetricWrapper, MeanSquaredError, MeanSquaredLogarithmicError, Metric, Poisson,
    Precision, Recall, RootMeanSquaredError, SparseCategoricalAccuracy,
    SparseCategoricalCrossentropy, SparseTopKCategoricalAccuracy, Sum, TopKCategoricalAccuracy,
    binary_accuracy, categorical_accuracy, deserialize, get, serialize,
    sparse_categorical_accuracy, sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)
from plexus.training.losses import (  # noqa: F401
    binary_crossentropy, categorical_crossentropy, hinge, kl_divergence, mae, mape,
    mean_absolute_error, mean_absolute_percentage_error, mean_squared_error,
    mean_squared_logarithmic_error, mse, msle, poisson, sparse_categorical_crossentropy)
