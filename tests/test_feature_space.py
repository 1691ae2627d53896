"""`plexus.utils.FeatureSpace` (Keras's needs TensorFlow, so these are known-answer tests of
the documented behaviour, on plexus's preprocessing layers that have their own parity tests)."""
import numpy as np
import pytest
import torch

import plexus
from plexus.utils import FeatureSpace

CITY = np.array(["b", "b", "b", "a", "a", "c"] * 4)
ZIP = np.array([7, 7, 3, 3, 3, 3] * 4)
AGE = np.linspace(20.0, 60.0, 24).astype("float32")
SCORE = np.arange(24, dtype="float32")
DATA = {"age": AGE, "city": CITY, "zip": ZIP, "score": SCORE, "raw": AGE / 10}


def _space(**kwargs):
    fs = FeatureSpace({"age": "float_normalized", "city": "string_categorical",
                       "zip": "integer_categorical", "score": "float_discretized",
                       "raw": "float"}, crosses=[("city", "zip")], crossing_dim=8,
                      num_discretization_bins=4, **kwargs)
    fs.adapt(DATA)
    return fs


def test_concat_layout_and_values():
    out = _space()(DATA)
    # sorted names (age 1, city 1+3, raw 1, score 4, zip 1+2), then the cross (8)
    assert out.shape == (24, 1 + 4 + 1 + 4 + 3 + 8) and out.dtype == torch.float32
    age, city, raw, score, zip_, cross = torch.split(out, [1, 4, 1, 4, 3, 8], dim=1)
    assert abs(float(age.mean())) < 1e-5 and abs(float(age.std(unbiased=False)) - 1) < 1e-4
    # vocabulary by frequency, out-of-vocabulary first: [UNK, b, a, c] and [UNK, 3, 7]
    np.testing.assert_array_equal(city[:6].numpy(), np.eye(4)[[1, 1, 1, 2, 2, 3]])
    np.testing.assert_array_equal(zip_[:6].numpy(), np.eye(3)[[2, 2, 1, 1, 1, 1]])
    np.testing.assert_allclose(raw[:, 0].numpy(), AGE / 10)
    # Discretization's approximate quantiles of 0..23 (Keras's) bound the bins at 5, 11, 17
    assert score.sum(0).tolist() == [5.0, 6.0, 6.0, 7.0]
    assert score[:6].argmax(1).tolist() == [0, 0, 0, 0, 0, 1]
    ids = plexus.layers.HashedCrossing(8)([np.array([[1], [2]]), np.array([[2], [1]])])
    np.testing.assert_array_equal(cross[[0, 3]].argmax(1).numpy(), ids[:, 0].numpy())


def test_one_sample_dict_mode_and_int_outputs():
    fs = _space()
    single = fs({"age": 40.0, "city": "z", "zip": 7, "score": 100.0, "raw": 1.0})
    assert single.shape == (21,)
    assert single[1:5].tolist() == [1.0, 0.0, 0.0, 0.0]  # an unknown city: the OOV slot
    d = FeatureSpace({"city": "string_hashed",
                      "zip": FeatureSpace.integer_categorical(output_mode="int")},
                     output_mode="dict", hashing_dim=16)
    d.adapt([{"city": ["x", "y"], "zip": [1, 2]}, ({"city": ["z"], "zip": [2]}, [0])])
    out = d({"city": ["x", "x", "q"], "zip": [2, 1, 9]})
    assert set(out) == {"city", "zip"} and out["city"].shape == (3, 16)
    assert torch.equal(out["city"][0], out["city"][1])
    assert out["zip"][:, 0].tolist() == [1, 2, 0]  # 2 is the most frequent; 9 is unknown
    with pytest.raises(ValueError, match="not encoded as floats"):
        bad = FeatureSpace({"zip": FeatureSpace.integer_categorical(output_mode="int")})
        bad.adapt({"zip": [1, 2]})
        bad({"zip": [1]})


def test_a_model_on_the_encoded_features_trains_saves_and_loads(tmp_path):
    fs = _space()
    inputs = fs.get_inputs()
    assert set(inputs) == set(DATA) and inputs["city"].dtype == "string"
    outputs = plexus.layers.Dense(1)(fs.get_encoded_features())
    model = plexus.Model(inputs, outputs)
    columns = {k: v.reshape(-1, 1) for k, v in DATA.items()}
    encoded = plexus.Model(inputs, fs.get_encoded_features()).predict(columns, verbose=0)
    np.testing.assert_allclose(encoded, fs(DATA).numpy(), atol=1e-6)
    model.compile("adam", "mse")
    model.fit(columns, SCORE[:, None], epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "fs.keras")
    reloaded = plexus.models.load_model(tmp_path / "fs.keras")
    np.testing.assert_allclose(reloaded.predict(columns, verbose=0),
                               model.predict(columns, verbose=0), atol=1e-5)


def test_explicit_features_config_and_errors():
    fs = FeatureSpace({"x": FeatureSpace.float_rescaled(scale=2.0, offset=1.0),
                       "b": FeatureSpace.float_discretized(num_bins=None,
                                                           bin_boundaries=[0.0, 1.0]),
                       "c": FeatureSpace.string_categorical(max_tokens=3)},
                      crosses=[FeatureSpace.cross(("b", "c"), crossing_dim=4,
                                                  output_mode="int")], output_mode="dict")
    fs.adapt({"x": [1.0], "b": [0.5], "c": ["p", "q", "q", "r"]})
    out = fs({"x": [1.0, 2.0], "b": [-1.0, 5.0], "c": ["q", "r"]})
    assert out["x"][:, 0].tolist() == [3.0, 5.0]
    assert out["b"].argmax(1).tolist() == [0, 2]
    assert out["c"].shape == (2, 3)  # max_tokens=3: the OOV slot and two terms
    assert out["b_X_c"].dtype == torch.int64 and out["b_X_c"].shape == (2, 1)
    config = fs.get_config()
    again = FeatureSpace.from_config(config)
    assert again.output_mode == "dict" and again.crosses[0].feature_names == ("b", "c")
    assert type(again.features["c"].preprocessor).__name__ == "StringLookup"
    with pytest.raises(ValueError, match="adapt"):
        FeatureSpace({"c": "string_categorical"})({"c": ["a"]})
    with pytest.raises(ValueError, match="invalid type"):
        FeatureSpace({"c": "strings"})
    with pytest.raises(ValueError, match="not in `features`"):
        FeatureSpace({"c": "float"}, crosses=[("c", "d")])
    with pytest.raises(ValueError, match="no feature 'c'"):
        FeatureSpace({"c": "string_categorical"}).adapt({"d": ["a"]})
    with pytest.raises(ValueError, match="lacks features"):
        _space()({"age": [1.0]})
    with pytest.raises(ValueError, match="one value per sample"):
        _space()({**DATA, "age": np.zeros((24, 2))})


def test_the_keras_io_pattern_training_and_inference_models():
    fs = _space()
    encoded = fs.get_encoded_features()
    hidden = plexus.layers.Dense(8, activation="relu")(encoded)
    predictions = plexus.layers.Dense(1, activation="sigmoid")(hidden)
    training_model = plexus.Model(inputs=encoded, outputs=predictions)  # on encoded features
    training_model.compile("adam", "binary_crossentropy")
    training_model.fit(fs(DATA).numpy(), (SCORE > 10).astype("float32"), epochs=1, verbose=0)
    inference_model = plexus.Model(inputs=fs.get_inputs(), outputs=predictions)  # raw features
    sample = {"age": 41.0, "city": "a", "zip": 3, "score": 5.0, "raw": 4.1}
    raw = inference_model.predict({k: np.array([v]) for k, v in sample.items()}, verbose=0)
    direct = training_model.predict(fs(sample)[None].numpy(), verbose=0)
    np.testing.assert_allclose(raw, direct, atol=1e-6)


def test_adapts_on_and_maps_a_dataset_of_dict_batches():
    columns = {"city": CITY, "age": AGE}
    ds = plexus.utils.Dataset(24, lambda idx: ({k: v[idx] for k, v in columns.items()},
                                               SCORE[idx]), batch_size=8)
    fs = FeatureSpace({"city": "string_categorical", "age": "float_normalized"})
    fs.adapt(ds.map(lambda x, y: x))
    whole = FeatureSpace({"city": "string_categorical", "age": "float_normalized"})
    whole.adapt(columns)
    np.testing.assert_allclose(fs(columns).numpy(), whole(columns).numpy(), atol=1e-5)
    batches = list(ds.map(lambda x, y: (fs(x), y)))
    assert len(batches) == 3 and batches[0][0].shape == (8, 5)


def test_adapting_again_resizes_the_one_hot_encodings():
    fs = FeatureSpace({"city": "string_categorical"})
    fs.adapt({"city": ["a", "b"]})
    assert fs({"city": ["a"]}).shape == (1, 3)
    fs.adapt({"city": ["a", "b", "c", "d"]})
    assert fs({"city": ["d"]}).shape == (1, 5)


def test_save_and_load_keep_what_adapt_learned(tmp_path):
    fs = _space()
    fs.save(tmp_path / "fs.keras")
    loaded = plexus.models.load_model(tmp_path / "fs.keras")
    assert isinstance(loaded, FeatureSpace)
    np.testing.assert_array_equal(loaded(DATA).numpy(), fs(DATA).numpy())
    assert loaded.preprocessors["city"].get_vocabulary() == ["[UNK]", "b", "a", "c"]
    not_adapted = FeatureSpace({"city": "string_categorical"})
    with pytest.raises(ValueError, match="adapt"):
        not_adapted({"city": ["a"]})


def test_saved_names_are_keras_names():
    """FeatureSpace and its inner layers are named in files as Keras names them, so Keras's
    deserializer finds its own classes."""
    import keras
    from keras.src.layers.preprocessing import feature_space as kfs
    from plexus.saving.serialization import serialize_keras_object
    from plexus.utils import feature_space as pfs
    pairs = [(plexus.utils.FeatureSpace(features={"a": "float"}),
              keras.utils.FeatureSpace(features={"a": "float"})),
             (pfs.TFDConcat(axis=-1), kfs.TFDConcat(axis=-1)),
             (pfs.TFDIdentity(), kfs.TFDIdentity())]
    for ours, theirs in pairs:
        a, b = serialize_keras_object(ours), keras.saving.serialize_keras_object(theirs)
        assert (a["module"], a["class_name"], a["registered_name"]) == \
            (b["module"], b["class_name"], b["registered_name"])
    assert type(keras.saving.deserialize_keras_object(serialize_keras_object(pairs[1][0]))) \
        is kfs.TFDConcat
