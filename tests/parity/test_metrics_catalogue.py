"""The rest of keras.metrics: the same batches fed to Keras and plexus give the same result
after every batch, with and without sample weights; configs, string names, compile and
saving."""
import keras
import numpy as np
import pytest

import plexus
from tests.parity.training_helpers import mlp_pair

rng = np.random.default_rng(11)
N = 24
PROBS = rng.uniform(0, 1, (2, N, 1)).astype("float32")
PROBS[0, :4, 0] = [0.0, 0.5, 1.0, 0.25]  # exactly on thresholds
LABELS = rng.integers(0, 2, (2, N, 1)).astype("float32")
MULTI = rng.uniform(0, 1, (2, N, 4)).astype("float32")
MULTI_LABELS = rng.integers(0, 2, (2, N, 4)).astype("float32")
ONEHOT = np.eye(4, dtype="float32")[rng.integers(0, 4, (2, N))]
IDS = rng.integers(0, 4, (2, N, 1))
PRED_IDS = rng.integers(0, 4, (2, N, 1))
REAL = rng.normal(size=(2, N, 3)).astype("float32")
REAL2 = (REAL + rng.normal(scale=0.5, size=(2, N, 3))).astype("float32")
SIGNS = rng.choice([-1.0, 1.0], (2, N, 3)).astype("float32")
SW = rng.uniform(0, 2, (2, N)).astype("float32")
INT_SW = rng.integers(0, 3, (2, N))

CASES = [
    ("Accuracy", {}, IDS, PRED_IDS),
    ("TruePositives", {}, LABELS, PROBS),
    ("FalsePositives", {"thresholds": [0.25, 0.5, 0.75]}, LABELS, PROBS),
    ("TrueNegatives", {"thresholds": 0.3}, LABELS, PROBS),
    ("FalseNegatives", {}, LABELS, PROBS),
    ("Precision", {"thresholds": [0.0, 0.5, 1.0]}, LABELS, PROBS),
    ("Precision", {"top_k": 2}, MULTI_LABELS, MULTI),
    ("Recall", {"class_id": 2, "thresholds": 0.4}, MULTI_LABELS, MULTI),
    ("SensitivityAtSpecificity", {"specificity": 0.6}, LABELS, PROBS),
    ("SpecificityAtSensitivity", {"sensitivity": 0.7, "num_thresholds": 50}, LABELS, PROBS),
    ("PrecisionAtRecall", {"recall": 0.5, "class_id": 1}, MULTI_LABELS, MULTI),
    ("RecallAtPrecision", {"precision": 0.6, "num_thresholds": 1}, LABELS, PROBS),
    ("AUC", {"curve": "PRGAIN"}, LABELS, PROBS),
    ("AUC", {"multi_label": True, "label_weights": [1.0, 2.0, 0.5, 1.0]}, MULTI_LABELS, MULTI),
    ("AUC", {"multi_label": True, "curve": "PR"}, MULTI_LABELS, MULTI),
    ("AUC", {"label_weights": [1.0, 2.0, 0.5, 1.0], "summation_method": "majoring"},
     MULTI_LABELS, MULTI),
    ("AUC", {"thresholds": [0.1, 0.5, 0.7], "from_logits": True}, LABELS, REAL[..., :1]),
    ("F1Score", {}, ONEHOT, MULTI),
    ("F1Score", {"average": "macro", "threshold": 0.5}, MULTI_LABELS, MULTI),
    ("FBetaScore", {"average": "micro", "beta": 2.0}, ONEHOT, MULTI),
    ("FBetaScore", {"average": "weighted", "beta": 0.5, "threshold": 0.3}, MULTI_LABELS, MULTI),
    ("R2Score", {}, REAL, REAL2),
    ("R2Score", {"class_aggregation": "variance_weighted_average"}, REAL, REAL2),
    ("R2Score", {"class_aggregation": None, "num_regressors": 2}, REAL, REAL2),
    ("IoU", {"num_classes": 4, "target_class_ids": [0, 2]}, IDS, PRED_IDS),
    ("MeanIoU", {"num_classes": 4, "ignore_class": 1}, IDS, PRED_IDS),
    ("MeanIoU", {"num_classes": 4, "sparse_y_pred": False, "dtype": "float32"}, IDS, MULTI),
    ("BinaryIoU", {"target_class_ids": [1], "threshold": 0.4}, LABELS, PROBS),
    ("OneHotIoU", {"num_classes": 4, "target_class_ids": [1, 3]}, ONEHOT, MULTI),
    ("OneHotMeanIoU", {"num_classes": 4}, ONEHOT, MULTI),
    ("CosineSimilarity", {}, REAL, REAL2),
    ("LogCoshError", {}, REAL, REAL2),
    ("Hinge", {}, SIGNS, REAL2),
    ("SquaredHinge", {}, SIGNS, REAL2),
    ("CategoricalHinge", {}, ONEHOT, MULTI),
    ("PearsonCorrelation", {}, REAL, REAL2),
    ("ConcordanceCorrelation", {}, REAL, REAL2),
]
IDS_ = [f"{c[0]}-{'-'.join(c[1])}" for c in CASES]


@pytest.mark.parametrize("name,kwargs,y_true,y_pred", CASES, ids=IDS_)
@pytest.mark.parametrize("weights", [None, SW])
def test_streaming_result_matches_keras(name, kwargs, y_true, y_pred, weights):
    if "IoU" in name and weights is not None and kwargs.get("dtype") != "float32":
        weights = INT_SW  # (integer counts: Keras truncates fractional weights)
    p = getattr(plexus.metrics, name)(**kwargs)
    k = getattr(keras.metrics, name)(**kwargs)
    for i in range(2):
        sw = None if weights is None else weights[i]
        p.update_state(y_true[i], y_pred[i], sample_weight=sw)
        k.update_state(y_true[i], y_pred[i], sample_weight=sw)
        np.testing.assert_allclose(np.asarray(p.result()), np.asarray(k.result()),
                                   rtol=2e-5, atol=2e-6)
    assert p.name in (k.name, k.name.rsplit("_", 1)[0])  # (Keras numbers repeated names)
    k_config = {key: np.asarray(v).tolist() if hasattr(v, "shape") else v  # (a tensor: AUC's
                for key, v, in k.get_config().items()}           # label_weights)
    k_config["name"] = p.name
    assert {key: p.get_config()[key] for key in k_config} == k_config
    again = plexus.metrics.deserialize(plexus.metrics.serialize(p))
    assert again.get_config() == p.get_config()
    p.reset_state()
    assert not np.any(np.asarray(p.result()))


def test_every_keras_name_resolves_to_the_same_class():
    from keras.src.metrics import ALL_OBJECTS_DICT
    for key, cls in ALL_OBJECTS_DICT.items():
        if key in ("accuracy", "Metric", "metric", "MeanMetricWrapper",
                   "mean_metric_wrapper") or cls.__name__ in (
                "IoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU", "SensitivityAtSpecificity",
                "SpecificityAtSensitivity", "PrecisionAtRecall", "RecallAtPrecision"):
            continue  # (these need constructor arguments, or resolve per output)
        assert type(plexus.metrics.get(key)).__name__ == cls.__name__, key


def test_vector_results_reach_the_logs_whole():
    pm, km = mlp_pair(out_units=3, out_activation="softmax")
    x = rng.normal(size=(16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    logs = {}
    for lib, m in (("plexus", pm), ("keras", km)):
        m.compile("sgd", loss="categorical_crossentropy",
                  metrics=[getattr(plexus if lib == "plexus" else keras, "metrics").F1Score(),
                           "r2_score", "pearson_correlation", "auc"])
        logs[lib] = m.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert set(logs["plexus"]) == set(logs["keras"])
    for key in logs["keras"]:
        np.testing.assert_allclose(logs["plexus"][key], np.asarray(logs["keras"][key]),
                                   rtol=1e-5, atol=1e-6)


def test_metrics_survive_saving(tmp_path):
    pm, _ = mlp_pair(out_units=1, out_activation="sigmoid")
    pm.compile("adam", loss="binary_focal_crossentropy",
               metrics=[plexus.metrics.AUC(curve="PR", name="pr"),
                        plexus.metrics.FBetaScore(beta=2.0, threshold=0.5), "true_positives"])
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.integers(0, 2, (8, 1)).astype("float32")
    pm.fit(x, y, verbose=0)
    pm.save(tmp_path / "m.keras")
    for lib in (plexus, keras):
        loaded = lib.saving.load_model(tmp_path / "m.keras")
        got = loaded.evaluate(x, y, verbose=0, return_dict=True)
        assert {"loss", "pr", "fbeta_score", "true_positives"} <= set(got)
    np.testing.assert_allclose(got["pr"], pm.evaluate(x, y, verbose=0, return_dict=True)["pr"],
                               rtol=1e-5)


def test_metric_argument_errors():
    M = plexus.metrics
    with pytest.raises(ValueError, match="average must be"):
        M.F1Score(average="samples")
    with pytest.raises(ValueError, match="beta must be a Python float"):
        M.FBetaScore(beta=2)
    with pytest.raises(ValueError, match=r"target class id 5 is out of range \[0, 3\)"):
        M.IoU(3, [0, 5])
    with pytest.raises(ValueError, match=r"recall must be in \[0, 1\]"):
        M.PrecisionAtRecall(1.5)
    with pytest.raises(ValueError, match="expects 2-D inputs"):
        M.R2Score().update_state(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="curve must be"):
        M.AUC(curve="DET")
    with pytest.raises(ValueError, match=r"Threshold values must be in \[0, 1\]"):
        M.Precision(thresholds=[0.2, 1.5])
