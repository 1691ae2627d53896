"""Losses: `plexus.losses.MeanSquaredError()`, `plexus.losses.binary_crossentropy`, ..."""
from plexus.training.losses import (  # noqa: F401
    BCE, KLD, MAE, MAPE, MSE, MSLE, BinaryCrossentropy, CategoricalCrossentropy,
    CategoricalHinge, CosineSimilarity, Hinge, Huber, KLDivergence, LogCosh, Loss,
    LossFunctionWrapper, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError,
    MeanSquaredLogarithmicError, Poisson, SparseCategoricalCrossentropy, SquaredHinge, bce,
    binary_crossentropy, categorical_crossentropy, categorical_hinge, cosine_similarity,
    deserialize, get, hinge, huber, kl_divergence, kld, kullback_leibler_divergence, log_cosh,
    logcosh, mae, mape, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_error, mean_squared_logarithmic_error, mse, msle, poisson, serialize,
    sparse_categorical_crossentropy, squared_hinge)
from plexus.training.task_losses import (  # noqa: F401
    CTC, BinaryFocalCrossentropy, CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy, Circle, Dice, Tversky, binary_focal_crossentropy,
    categorical_focal_crossentropy, categorical_generalized_cross_entropy, circle, ctc, dice,
    tversky)
