"""`plexus.saving.KerasFileEditor` against `keras.saving.KerasFileEditor`: the same file
reads into the same weights dict, the same edits give the same file, and comparisons with
models agree."""
import keras
import numpy as np
import pytest

import plexus
from plexus.saving import KerasFileEditor


def _keras_file(tmp_path):
    i = keras.Input((4,))
    h = keras.layers.Dense(3, name="d1")(i)
    h = keras.layers.BatchNormalization(name="bn")(h)
    o = keras.layers.Dense(2, name="d2")(h)
    model = keras.Model(i, o)
    model.set_weights([np.random.default_rng(k).normal(size=w.shape).astype("float32")
                       for k, w in enumerate(model.get_weights())])
    model.save(tmp_path / "m.keras")
    return model


def _same(a, b):
    assert list(a) == list(b)
    for key in a:
        if isinstance(a[key], dict):
            _same(a[key], b[key])
        else:
            np.testing.assert_array_equal(a[key], np.asarray(b[key]))


def test_reads_edits_and_saves_like_keras(tmp_path, capsys):
    _keras_file(tmp_path)
    p = KerasFileEditor(tmp_path / "m.keras")
    k = keras.saving.KerasFileEditor(str(tmp_path / "m.keras"))
    _same(p.weights_dict, k.weights_dict)
    assert p.config == k.config and p.metadata["keras_version"] == keras.__version__
    p.summary()
    printed = capsys.readouterr().out
    assert "dense_1 ('d2')" in printed and "0: shape=(3, 2), dtype=float32" in printed
    new = {"0": np.ones((2, 2), "float32"), "1": np.zeros(2, "float32")}
    for editor in (p, k):
        editor.rename_object("dense_1", "dense_9")
        editor.delete_weight("batch_normalization", "3")
        editor.add_weights("layers/batch_normalization", {"3": np.full(3, 7.0, "float32")})
        editor.add_object("layers/extra", new)
        editor.delete_object("layers/dense")
    _same(p.weights_dict, k.weights_dict)
    p.save(tmp_path / "p.weights.h5")
    k.save(str(tmp_path / "k.weights.h5"))
    _same(KerasFileEditor(tmp_path / "p.weights.h5").weights_dict,
          KerasFileEditor(tmp_path / "k.weights.h5").weights_dict)
    # Keras reads the plexus-written file back into the same dict
    _same(keras.saving.KerasFileEditor(str(tmp_path / "p.weights.h5")).weights_dict,
          k.weights_dict)


def test_edited_weights_load_into_the_changed_model(tmp_path):
    k_model = _keras_file(tmp_path)
    editor = KerasFileEditor(tmp_path / "m.keras")
    # the new architecture drops batch normalization: its weights go, the names stay
    editor.delete_object("batch_normalization")
    editor.save(tmp_path / "new.weights.h5")
    i = plexus.Input((4,))
    o = plexus.layers.Dense(2, name="d2")(plexus.layers.Dense(3, name="d1")(i))
    model = plexus.Model(i, o)
    assert editor.compare(model)["status"] == "success"
    model.load_weights(tmp_path / "new.weights.h5")
    np.testing.assert_array_equal(model.get_layer("d1").get_weights()[0],
                                  k_model.get_layer("d1").get_weights()[0])
    np.testing.assert_array_equal(model.get_layer("d2").get_weights()[1],
                                  k_model.get_layer("d2").get_weights()[1])


def test_compare_agrees_with_keras(tmp_path, capsys):
    k_model = _keras_file(tmp_path)
    p_model = plexus.models.load_model(tmp_path / "m.keras")
    p = KerasFileEditor(tmp_path / "m.keras")
    k = keras.saving.KerasFileEditor(str(tmp_path / "m.keras"))
    same = p.compare(p_model)
    assert same == {"status": "success", "error_count": 0, "match_count": 8}
    assert k.compare(k_model)["status"] == "success"  # (Keras counts matches twice in places)
    i = plexus.Input((4,))
    other = plexus.Model(i, plexus.layers.Dense(5)(plexus.layers.Dense(3)(i)))
    ki = keras.Input((4,))
    k_other = keras.Model(ki, keras.layers.Dense(5)(keras.layers.Dense(3)(ki)))
    result, k_result = p.compare(other), k.compare(k_other)
    assert result["status"] == k_result["status"] == "error"
    # two shape mismatches and batch normalization missing from the model (Keras's count
    # adds the counts of earlier objects again inside each nested one)
    assert result["error_count"] == 3
    assert "shape mismatch for /layers/dense_1/0" in capsys.readouterr().out


def test_errors_are_clear(tmp_path):
    _keras_file(tmp_path)
    editor = KerasFileEditor(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="not in the file"):
        editor.delete_object("nope")
    with pytest.raises(ValueError, match="occurs 3 times"):
        editor.delete_weight("0", "x")
    with pytest.raises(ValueError, match="weight 'x' is not in object"):
        editor.delete_weight("dense", "x")
    with pytest.raises(ValueError, match="leaf name"):
        editor.rename_object("dense", "a/b")
    with pytest.raises(ValueError, match="dict of weight name"):
        editor.add_object("layers/x", [np.zeros(2)])
    with pytest.raises(ValueError, match=".weights.h5"):
        editor.save(tmp_path / "x.h5")
    with pytest.raises(ValueError, match=".keras or .weights.h5"):
        KerasFileEditor(tmp_path / "m.zip")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a valid .keras archive"):
        KerasFileEditor(tmp_path / "bad.keras")


def test_hostile_and_mistaken_uses_are_clear_errors(tmp_path):
    import h5py
    from plexus.saving.errors import LoadError
    deep = tmp_path / "deep.weights.h5"
    with h5py.File(deep, "w") as f:  # groups nested far deeper than any model's
        g = f
        for _ in range(150):
            g = g.create_group("g")
    with pytest.raises(LoadError, match="nested over"):
        KerasFileEditor(deep)
    _keras_file(tmp_path)
    editor = KerasFileEditor(tmp_path / "m.keras")
    leaf = next(path for path in _weight_paths(editor.weights_dict))
    with pytest.raises(ValueError, match="is a weight, not an object"):
        editor.add_weights(leaf, {"9": np.zeros(1)})
    with pytest.raises(ValueError, match="is a weight, not an object"):
        editor.add_object(leaf + "/new", {"0": np.zeros(1)})


def _weight_paths(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _weight_paths(value, f"{prefix}{key}/")
        else:
            yield prefix + key
