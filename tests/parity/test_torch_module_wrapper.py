"""TorchModuleWrapper: torch modules in functional models, trained by fit, counted by summary,
saved by state dict (files from Keras load too), never pickled."""
import copy
import json
import zipfile

import keras
import numpy as np
import pytest
import torch
from torch import nn

import plexus
from plexus import layers
from tests.parity.oracle import assert_close


def _block():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.3), nn.ReLU())


def _model(module, name="torch_block"):
    inp = plexus.Input((4,))
    x = layers.TorchModuleWrapper(module, name=name)(inp)
    return plexus.Model(inp, layers.Dense(1)(x))


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5], [1.5]], "float32"))


def test_wrapped_module_trains_with_fit_and_counts_in_summary():
    block = _block()
    model = _model(block)
    wrapper = model.get_layer("torch_block")
    assert [w.shape for w in wrapper.get_weights()] == [(8, 4), (8,), (8,), (8,)]
    assert wrapper.count_params() == 56 and len(model.trainable_weights) == 6
    lines = []
    model.summary(print_fn=lines.append)
    assert any(l.startswith(" torch_block (") and l.rstrip().endswith(" 56") for l in lines)
    x, y = _data()
    model.compile(plexus.optimizers.Adam(0.02), "mse")
    before = block[0].weight.detach().clone()
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]
    assert not torch.equal(before, block[0].weight)
    assert block[1].num_batches_tracked.item() == 15 * 4  # BatchNorm trained in fit
    assert not block.training  # back to inference after fit
    p1, p2 = model.predict(x, verbose=0), model.predict(x, verbose=0)
    assert np.array_equal(p1, p2)  # Dropout off, moving statistics used
    assert_close(model(x, training=False), p1, atol=1e-6)


def test_module_without_parameters_and_traced_shapes():
    inp = plexus.Input((3, 8, 8))
    x = layers.TorchModuleWrapper(nn.Conv2d(3, 4, 3))(inp)  # channels-first, as torch
    x = layers.TorchModuleWrapper(nn.Sequential(nn.ReLU(), nn.Flatten()))(x)
    assert x.shape == (None, 4 * 6 * 6)
    model = plexus.Model(inp, x)
    assert model.layers[2].count_params() == 0 and model.layers[1].count_params() == 112
    fixed = layers.TorchModuleWrapper(nn.Linear(4, 3), output_shape=(None, 3))
    assert fixed(plexus.Input((4,))).shape == (None, 3)


def test_trainable_false_freezes_the_module():
    block = _block()
    model = _model(block)
    model.get_layer("torch_block").trainable = False
    assert not any(p.requires_grad for p in block.parameters())
    assert len(model.trainable_weights) == 2
    model.compile("adam", "mse")
    before = [p.detach().clone() for p in block.parameters()]
    model.fit(*_data(), epochs=1, verbose=0)
    assert all(torch.equal(a, b) for a, b in zip(before, block.parameters()))
    model.get_layer("torch_block").trainable = True
    assert all(p.requires_grad for p in block.parameters())


def test_saved_by_state_dict_and_loaded_with_the_callers_module(tmp_path):
    model = _model(_block())
    model.compile("adam", "mse")
    model.fit(*_data(), epochs=2, verbose=0)
    x = _data()[0][:10]
    want = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        config = json.loads(z.read("config.json"))
    layer_config = [l for l in config["config"]["layers"] if l["name"] == "torch_block"][0]
    assert "module" not in layer_config["config"]  # no pickle, no code
    with pytest.raises(ValueError, match="custom_objects=\\{'torch_block'"):
        plexus.models.load_model(tmp_path / "m.keras")
    fresh = _block()
    loaded = plexus.models.load_model(tmp_path / "m.keras",
                                      custom_objects={"torch_block": fresh})
    assert_close(loaded.predict(x, verbose=0), want, atol=1e-6)
    trained = model.get_layer("torch_block").module
    assert torch.equal(fresh[1].running_mean, trained[1].running_mean)
    by_class = plexus.models.load_model(tmp_path / "m.keras",
                                        custom_objects={"torch_block": _block})
    assert_close(by_class.predict(x, verbose=0), want, atol=1e-6)
    model.save_weights(tmp_path / "m.weights.h5")
    other = _model(_block())
    other.load_weights(tmp_path / "m.weights.h5")
    assert_close(other.predict(x, verbose=0), want, atol=1e-6)
    copied = copy.deepcopy(model)
    assert_close(copied.predict(x, verbose=0), want, atol=1e-6)


def test_keras_file_with_a_wrapped_module_loads_in_plexus(tmp_path):
    torch.manual_seed(1)
    inp = keras.Input((4,))
    block = _block()
    x = keras.layers.TorchModuleWrapper(block, name="torch_block", output_shape=(None, 8))(inp)
    km = keras.Model(inp, keras.layers.Dense(1)(x))
    km.compile("adam", "mse")
    km.fit(*_data(), epochs=1, verbose=0)
    data = _data()[0][:10]
    want = km.predict(data, verbose=0)
    km.save(tmp_path / "k.keras")
    pm = plexus.models.load_model(tmp_path / "k.keras", custom_objects={"torch_block": _block})
    assert_close(pm.predict(data, verbose=0), want, atol=1e-5)


def test_bad_modules():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        layers.TorchModuleWrapper(lambda x: x)
    with pytest.raises(ValueError, match="uninitialized"):
        layers.TorchModuleWrapper(nn.LazyLinear(3))
