"""Saving and loading within plexus: configs, .keras files, weight files, JSON, cloning."""
import os

import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L
from plexus.saving import LoadError


def _out(model, x):
    y = model(x)
    if isinstance(y, dict):
        return {k: v.detach().numpy() for k, v in y.items()}
    if isinstance(y, (list, tuple)):
        return [v.detach().numpy() for v in y]
    return y.detach().numpy()


def _same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-6)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _multi_io():
    a = plexus.Input((4,), name="a")
    b = plexus.Input((3,), name="b")
    shared = L.Dense(5, activation="relu", name="shared")
    x = L.Concatenate()([shared(L.Dense(4)(a)), shared(a)])
    y = L.Dense(2, name="y")(L.Concatenate()([x, b]))
    z = L.Dense(1, activation="sigmoid", name="z")(x)
    return plexus.Model({"a": a, "b": b}, {"y": y, "z": z}, name="multi")


def _data():
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(2, 4)).astype("float32"),
            "b": rng.normal(size=(2, 3)).astype("float32")}


def test_keras_roundtrip_multi_io_dicts_and_shared_layer(tmp_path):
    model = _multi_io()
    x = _data()
    model.save(tmp_path / "m.keras")
    loaded = plexus.models.load_model(tmp_path / "m.keras")
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert len(loaded.get_layer("shared").inbound_nodes) == 2  # still shared
    _same(_out(loaded, x), _out(model, x))
    assert loaded.count_params() == model.count_params()


def test_keras_file_layout(tmp_path):
    import json
    import zipfile
    model = _multi_io()
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(z.read("config.json"))
    assert config["class_name"] == "Functional"
    assert config["config"]["input_layers"] == {"a": ["a", 0, 0], "b": ["b", 0, 0]}
    shared = [l for l in config["config"]["layers"] if l["name"] == "shared"][0]
    hist = [n["args"][0]["config"]["keras_history"] for n in shared["inbound_nodes"]]
    assert hist == [["dense", 0, 0], ["a", 0, 0]]


def test_sequential_roundtrip_and_lazy_build(tmp_path):
    model = plexus.Sequential([L.Dense(4, activation="relu", input_shape=(3,)), L.Dropout(0.2),
                               L.Dense(2)], name="seq")
    x = np.ones((2, 3), "float32")
    model.save(tmp_path / "s.keras")
    loaded = plexus.models.load_model(tmp_path / "s.keras")
    assert isinstance(loaded, plexus.Sequential) and loaded.name == "seq"
    _same(_out(loaded, x), _out(model, x))


def test_nested_model_roundtrip_and_trainable_flag(tmp_path):
    inner_in = plexus.Input((3,))
    inner = plexus.Model(inner_in, L.Dense(2)(inner_in), name="inner")
    inp = plexus.Input((3,))
    frozen = L.Dense(3, name="frozen", trainable=False)
    model = plexus.Model(inp, inner(frozen(inp)))
    model.save(tmp_path / "n.keras")
    loaded = plexus.models.load_model(tmp_path / "n.keras")
    assert loaded.get_layer("frozen").trainable is False
    assert isinstance(loaded.get_layer("inner"), plexus.Model)
    x = np.ones((2, 3), "float32")
    _same(_out(loaded, x), _out(model, x))


@plexus.saving.register_keras_serializable(package="tests")
class Scale(L.Layer):
    """A custom layer with a weight and an argument."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _double(x):
    return x * 2


def test_registered_custom_layer_and_custom_function(tmp_path):
    inp = plexus.Input((3,))
    model = plexus.Model(inp, L.Dense(2, activation=_double)(Scale(3.0)(inp)))
    with torch.no_grad():
        model.layers[1].w.copy_(torch.tensor([1.0, 2.0, 3.0]))
    model.save(tmp_path / "c.keras")
    with pytest.raises(LoadError, match="_double"):
        plexus.models.load_model(tmp_path / "c.keras")
    loaded = plexus.models.load_model(tmp_path / "c.keras", custom_objects={"_double": _double})
    assert isinstance(loaded.layers[1], Scale) and loaded.layers[1].factor == 3.0
    x = np.ones((2, 3), "float32")
    _same(_out(loaded, x), _out(model, x))


def test_unregistered_custom_layer_needs_custom_objects(tmp_path):
    class Shift(L.Layer):
        def call(self, x):
            return x + 1.0

    inp = plexus.Input((2,))
    plexus.Model(inp, Shift(name="shift")(inp)).save(tmp_path / "u.keras")
    with pytest.raises(LoadError, match="Unknown class 'Shift'.*custom_objects"):
        plexus.models.load_model(tmp_path / "u.keras")
    loaded = plexus.models.load_model(tmp_path / "u.keras", custom_objects={"Shift": Shift})
    np.testing.assert_allclose(_out(loaded, np.zeros((1, 2), "float32")), np.ones((1, 2)))
    with plexus.saving.custom_object_scope({"Shift": Shift}):
        assert isinstance(plexus.models.load_model(tmp_path / "u.keras").layers[1], Shift)


def test_to_json_and_model_from_json():
    model = _multi_io()
    clone = plexus.models.model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    _same(_out(clone, _data()), _out(model, _data()))


def test_clone_model_new_weights_same_graph():
    model = _multi_io()
    clone = plexus.models.clone_model(model)
    assert [type(l) for l in clone.layers] == [type(l) for l in model.layers]
    assert all(a is not b for a, b in zip(clone.layers, model.layers))
    assert len(clone.get_layer("shared").inbound_nodes) == 2
    assert not np.allclose(clone.get_layer("y").get_weights()[0],
                           model.get_layer("y").get_weights()[0])
    clone.set_weights(model.get_weights())
    _same(_out(clone, _data()), _out(model, _data()))
    seq = plexus.Sequential([plexus.Input((3,)), L.Dense(2)])
    seq_clone = plexus.models.clone_model(seq, clone_function=lambda l: L.Dense(2, name="d2"))
    assert [l.name for l in seq_clone.layers] == ["d2"]


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_save_and_load_weights(tmp_path, suffix):
    model, other = _multi_io(), _multi_io()
    path = tmp_path / ("w" + suffix)
    model.save_weights(path)
    other.load_weights(path)
    _same(_out(other, _data()), _out(model, _data()))


def test_legacy_h5_by_name_skips_unknown_layers(tmp_path):
    inp = plexus.Input((3,))
    src = plexus.Model(inp, L.Dense(2, name="head")(L.Dense(4, name="body")(inp)))
    src.save_weights(tmp_path / "w.h5")
    inp = plexus.Input((3,))
    dst = plexus.Model(inp, L.Dense(5, name="new")(L.Dense(4, name="body")(inp)))
    before = dst.get_layer("new").get_weights()
    dst.load_weights(tmp_path / "w.h5", by_name=True)
    np.testing.assert_array_equal(dst.get_layer("body").get_weights()[0],
                                  src.get_layer("body").get_weights()[0])
    np.testing.assert_array_equal(dst.get_layer("new").get_weights()[0], before[0])


def test_mismatched_weights_change_nothing(tmp_path):
    inp = plexus.Input((3,))
    plexus.Model(inp, L.Dense(2)(L.Dense(4)(inp))).save_weights(tmp_path / "w.weights.h5")
    inp = plexus.Input((3,))
    dst = plexus.Model(inp, L.Dense(3)(L.Dense(4)(inp)))
    before = dst.get_weights()
    with pytest.raises(LoadError, match=r"dense_2.*\(4, 3\).*\(4, 2\)"):
        dst.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(before, dst.get_weights()):
        np.testing.assert_array_equal(a, b)  # the first layer matched but was not assigned


def test_save_is_atomic(tmp_path, monkeypatch):
    from plexus.saving import weights
    path = tmp_path / "m.keras"
    model = _multi_io()
    model.save(path)
    original = path.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-save")

    monkeypatch.setattr(weights, "write", crash)
    with pytest.raises(RuntimeError):
        model.save(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["m.keras"]  # no temporary file left behind


def test_overwrite_false_and_bad_suffix(tmp_path):
    model = _multi_io()
    model.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.keras", overwrite=False)
    with pytest.raises(ValueError, match=".keras"):
        model.save(tmp_path / "m.model")
    with pytest.raises(ValueError, match="weights.h5"):
        model.save_weights(tmp_path / "w.bin")


def test_lambda_function_supplied_by_name(tmp_path):
    inp = plexus.Input((2,))
    model = plexus.Model(inp, L.Lambda(_double, name="twice")(inp))
    model.save(tmp_path / "l.keras")
    loaded = plexus.models.load_model(tmp_path / "l.keras", custom_objects={"_double": _double})
    np.testing.assert_allclose(_out(loaded, np.ones((1, 2), "float32")), 2 * np.ones((1, 2)))


KERAS2_FUNCTIONAL = {
    "class_name": "Functional", "keras_version": "2.4.0", "backend": "tensorflow",
    "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [], "config": {
            "batch_input_shape": [None, 4], "dtype": "float32", "sparse": False,
            "ragged": False, "name": "input_1"}},
        {"class_name": "Dense", "name": "dense", "inbound_nodes": [[["input_1", 0, 0, {}]]],
         "config": {"name": "dense", "trainable": True, "dtype": "float32", "units": 3,
                    "activation": "relu", "use_bias": True,
                    "kernel_initializer": {"class_name": "GlorotUniform",
                                           "config": {"seed": None}},
                    "bias_initializer": {"class_name": "Zeros", "config": {}},
                    "kernel_regularizer": None, "bias_regularizer": None,
                    "activity_regularizer": None, "kernel_constraint": None,
                    "bias_constraint": None}},
        {"class_name": "Dense", "name": "dense_1", "inbound_nodes": [[["dense", 0, 0, {}]]],
         "config": {"name": "dense_1", "trainable": True, "dtype": "float32", "units": 2,
                    "activation": "softmax", "use_bias": True}}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense_1", 0, 0]]}}


def test_keras2_full_model_h5(tmp_path):
    """A tf.keras 2 `model.save('m.h5')` file: config in attributes, legacy node lists."""
    import json
    import h5py
    from plexus.saving import legacy_h5
    reference = plexus.models.model_from_config(KERAS2_FUNCTIONAL)
    assert [l.name for l in reference.layers] == ["input_1", "dense", "dense_1"]
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(KERAS2_FUNCTIONAL)
        f.attrs["training_config"] = json.dumps({"loss": "categorical_crossentropy",
                                                 "metrics": ["accuracy"], "optimizer_config": {
                                                     "class_name": "Adam",
                                                     "config": {"learning_rate": 0.01}}})
        legacy_h5.write(reference, f.create_group("model_weights"))
    loaded = plexus.models.load_model(tmp_path / "m.h5")
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    np.testing.assert_allclose(_out(loaded, x), _out(reference, x), rtol=1e-6)
    assert loaded.compiled and loaded.optimizer.learning_rate == pytest.approx(0.01)


def test_keras2_sequential_config_with_batch_input_shape():
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "batch_input_shape": [None, 5],
                                           "activation": "linear"}}]}}
    model = plexus.models.model_from_config(config)
    assert model.layers[0].get_weights()[0].shape == (5, 2)


@plexus.saving.register_keras_serializable(package="tests")
class TwoLayer(plexus.Model):
    """A subclassed model: layers as attributes, computation in call."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = L.Dense(units, activation="relu")
        self.head = L.Dense(1)

    def call(self, x):
        return self.head(self.hidden(x))

    def get_config(self):
        return {"name": self.name, "units": self.units}


def test_subclassed_model_roundtrip(tmp_path):
    model = TwoLayer(4)
    x = np.random.default_rng(0).normal(size=(2, 5)).astype("float32")
    expected = _out(model, x)
    model.save(tmp_path / "sub.keras")
    loaded = plexus.models.load_model(tmp_path / "sub.keras")
    assert isinstance(loaded, TwoLayer) and loaded.units == 4
    _same(_out(loaded, x), expected)


def test_layers_serialize_deserialize_and_tensor_constants():
    layer = plexus.layers.deserialize(plexus.layers.serialize(L.Dense(3, name="d")))
    assert isinstance(layer, L.Dense) and layer.units == 3 and layer.name == "d"
    inp = plexus.Input((3,))
    model = plexus.Model(inp, inp * torch.tensor([1.0, 2.0, 3.0]))
    clone = plexus.models.model_from_json(model.to_json())
    x = np.ones((2, 3), "float32")
    _same(_out(clone, x), _out(model, x))


def test_mixed_precision_policy_loads_as_the_policy():
    config = {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
              "config": {"name": "d", "units": 2, "dtype": {
                  "module": "keras", "class_name": "DTypePolicy",
                  "config": {"name": "mixed_float16"}, "registered_name": None}}}
    layer = plexus.layers.deserialize(config)
    assert layer.dtype_policy.name == "mixed_float16"
    assert (layer.dtype, layer.compute_dtype) == ("float32", "float16")


def test_anonymous_lambda_is_saved_by_reference(tmp_path):
    inp = plexus.Input((2,))
    model = plexus.Model(inp, L.Lambda(lambda t: t + 5.0, name="shift")(inp))
    with pytest.warns(UserWarning, match="custom_objects"):
        model.save(tmp_path / "anon.keras")
    with pytest.raises(LoadError, match="<lambda>"):
        plexus.models.load_model(tmp_path / "anon.keras")
    loaded = plexus.models.load_model(tmp_path / "anon.keras",
                                      custom_objects={"shift": lambda t: t + 5.0})
    np.testing.assert_allclose(_out(loaded, np.zeros((1, 2), "float32")), np.full((1, 2), 5.0))


def test_clone_model_on_new_inputs_with_nested_model():
    inner_in = plexus.Input((3,))
    inner = plexus.Model(inner_in, L.Dense(2)(inner_in), name="inner")
    inp = plexus.Input((3,))
    model = plexus.Model(inp, inner(L.Dense(3)(inp)))
    new_in = plexus.Input((3,), name="fresh")
    clone = plexus.models.clone_model(model, input_tensors=new_in)
    assert clone.layers[0].name == "fresh"
    assert isinstance(clone.layers[-1], plexus.Model) and clone.layers[-1] is not inner
    clone.set_weights(model.get_weights())
    x = np.ones((2, 3), "float32")
    _same(_out(clone, x), _out(model, x))
    with pytest.raises(ValueError, match="input_tensors"):
        plexus.models.clone_model(model, input_tensors=[new_in, plexus.Input((3,))])
