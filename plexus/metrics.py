"""Metrics: `plexus.metrics.AUC()`, `plexus.metrics.F1Score()`, ... (stateful objects), and
the functions they average (`plexus.metrics.binary_accuracy`, ...)."""
from plexus.training.metrics import (  # noqa: F401
    AUC, Accuracy, BinaryAccuracy, BinaryCrossentropy, BinaryIoU, CategoricalAccuracy,
    CategoricalCrossentropy, CategoricalHinge, ConcordanceCorrelation, CosineSimilarity,
    F1Score, FalseNegatives, FalsePositives, FBetaScore, Hinge, IoU, KLDivergence,
    LogCoshError, Mean, MeanAbsoluteError, MeanAbsolutePercentageError, MeanIoU,
    MeanMetricWrapper, MeanSquaredError, MeanSquaredLogarithmicError, Metric, OneHotIoU,
    OneHotMeanIoU, PearsonCorrelation, Poisson, Precision, PrecisionAtRecall, R2Score,
    Recall, RecallAtPrecision, RootMeanSquaredError, SensitivityAtSpecificity,
    SparseCategoricalAccuracy, SparseCategoricalCrossentropy, SparseTopKCategoricalAccuracy,
    SpecificityAtSensitivity, SquaredHinge, Sum, TopKCategoricalAccuracy, TrueNegatives,
    TruePositives, binary_accuracy, categorical_accuracy, concordance_correlation,
    deserialize, get, pearson_correlation, serialize, sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)
from plexus.training.losses import (  # noqa: F401
    binary_crossentropy, categorical_crossentropy, categorical_hinge, hinge, huber,
    kl_divergence, log_cosh, mae, mape, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_error, mean_squared_logarithmic_error, mse, msle, poisson,
    sparse_categorical_crossentropy, squared_hinge)
from plexus.training.task_losses import (  # noqa: F401
    binary_focal_crossentropy, categorical_focal_crossentropy)
