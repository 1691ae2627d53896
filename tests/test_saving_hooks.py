"""Keras's saving hooks, as the keras.io guide "Customizing Saving and Serialization" uses them:
`save_own_variables`/`load_own_variables`, `save_assets`/`load_assets`, `get_build_config`/
`build_from_config` and `get_compile_config`/`compile_from_config`, each overridden by a layer or
model of the user's and honoured by `.keras` files (and weights files)."""
import os
import zipfile

import numpy as np
import pytest

import plexus as keras
from plexus.saving.errors import LoadError


def test_default_variable_store_and_a_layer_saving_a_variable_of_its_own(tmp_path):
    dense = keras.layers.Dense(3)
    dense.build((None, 2))
    store = {}
    dense.save_own_variables(store)
    assert sorted(store) == ["0", "1"] and store["0"].shape == (2, 3)
    other = keras.layers.Dense(3)
    other.build((None, 2))
    other.load_own_variables(store)
    np.testing.assert_array_equal(other.kernel.numpy(), dense.kernel.numpy())
    with pytest.raises(ValueError, match="expects 2 variables"):
        other.load_own_variables({"0": store["0"]})

    class Scaled(keras.layers.Dense):
        def __init__(self, units, **kwargs):
            super().__init__(units, **kwargs)
            self.scale = 1.0
            self.calls = []

        def save_own_variables(self, store):
            super().save_own_variables(store)
            store["scale"] = np.array(self.scale)

        def load_own_variables(self, store):
            self.calls.append(sorted(store))
            self.scale = float(store["scale"])
            keras.layers.Dense.load_own_variables(
                self, {k: v for k, v in store.items() if k != "scale"})

        def call(self, inputs):
            return super().call(inputs) * self.scale

    model = keras.Sequential([keras.Input((4,)), Scaled(2, name="scaled")])
    model.layers[0].scale = 3.0
    x = np.random.rand(5, 4).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects={"Scaled": Scaled})
    assert loaded.layers[0].calls == [["0", "1", "scale"]]
    assert loaded.layers[0].scale == 3.0
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    # weights files go through the same hooks
    model.save_weights(tmp_path / "m.weights.h5")
    fresh = keras.Sequential([keras.Input((4,)), Scaled(2, name="scaled")])
    fresh.load_weights(tmp_path / "m.weights.h5")
    assert fresh.layers[0].scale == 3.0
    # a file saved before the layer wrote "scale": the layer's KeyError, named, as a LoadError
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="scaled")])
    plain.save_weights(tmp_path / "old.weights.h5")
    with pytest.raises(LoadError, match=r"load_own_variables\(\) of layer 'scaled'.*'scale'"):
        fresh.load_weights(tmp_path / "old.weights.h5")


class WithAssetsLayer(keras.layers.Dense):
    def __init__(self, vocab=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.vocab = vocab

    def save_assets(self, inner_path):
        with open(os.path.join(inner_path, "vocabulary.txt"), "w") as f:
            f.write(self.vocab)
        os.makedirs(os.path.join(inner_path, "more"))
        with open(os.path.join(inner_path, "more", "notes.bin"), "wb") as f:
            f.write(b"\x00\x01")

    def load_assets(self, inner_path):
        with open(os.path.join(inner_path, "vocabulary.txt")) as f:
            self.vocab = f.read().replace("<unk>", "little")
        with open(os.path.join(inner_path, "more", "notes.bin"), "rb") as f:
            self.notes = f.read()


def test_a_layer_keeps_files_of_its_own_in_the_archive(tmp_path):
    model = keras.Sequential([WithAssetsLayer(vocab="Mary had a <unk> lamb.", units=5)])
    model(np.random.random((2, 10)))
    path = tmp_path / "assets.keras"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        members = [n for n in z.namelist() if n.startswith("assets/")]
    assert sorted(members) == ["assets/layers/with_assets_layer/more/notes.bin",
                               "assets/layers/with_assets_layer/vocabulary.txt"], members
    loaded = keras.models.load_model(path, custom_objects={"WithAssetsLayer": WithAssetsLayer})
    assert loaded.layers[0].vocab == "Mary had a little lamb."
    assert loaded.layers[0].notes == b"\x00\x01"

    # a member whose name would leave the layer's folder is refused, naming it
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("assets/layers/with_assets_layer/../../../escape.txt", b"x")
    with pytest.raises(LoadError, match="escape.txt"):
        keras.models.load_model(path, custom_objects={"WithAssetsLayer": WithAssetsLayer})


def test_a_layer_builds_itself_from_its_own_build_config(tmp_path):
    class CustomBuild(keras.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def call(self, inputs):
            return keras.ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            return dict(units=self.units, **super().get_config())

        def build(self, input_shape, layer_init):
            self._input_shape = input_shape
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer=layer_init)
            self.b = self.add_weight(shape=(self.units,), initializer=layer_init)
            self.layer_init = layer_init

        def get_build_config(self):
            return {"layer_init": self.layer_init, "input_shape": self._input_shape}

        def build_from_config(self, config):
            self.build(config["input_shape"], config["layer_init"])

    layer = CustomBuild(units=4)
    layer.build(input_shape=(3,), layer_init="random_normal")
    model = keras.Sequential([layer, keras.layers.Dense(1, activation="sigmoid")])
    x = np.random.random((6, 3))
    model(x)
    model.save(tmp_path / "b.keras")
    loaded = keras.models.load_model(tmp_path / "b.keras",
                                     custom_objects={"CustomBuild": CustomBuild})
    assert loaded.layers[0].layer_init == "random_normal" and loaded.built
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    # the default pair: the input shape the layer was first called with
    dense = keras.layers.Dense(2)
    dense(np.ones((1, 3)))
    other = keras.layers.Dense(2)
    other.build_from_config(dense.get_build_config() or {"input_shape": (None, 3)})
    assert other.built and tuple(other.kernel.shape) == (3, 2)


def test_a_model_saves_and_restores_its_own_compile_settings(tmp_path):
    @keras.saving.register_keras_serializable(package="hooks_test")
    def small_square_sum_loss(y_true, y_pred):
        return keras.ops.sum(keras.ops.square(y_pred - y_true) / 10.0, axis=1)

    @keras.saving.register_keras_serializable(package="hooks_test")
    class WithCompile(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(4, activation="softmax")

        def call(self, inputs):
            return self.dense(inputs)

        def compile(self, optimizer, loss_fn, metrics):
            super().compile(optimizer=optimizer, loss=loss_fn, metrics=metrics)
            self.model_optimizer, self.loss_fn, self.loss_metrics = optimizer, loss_fn, metrics

        def get_compile_config(self):
            return {"model_optimizer": self.model_optimizer, "loss_fn": self.loss_fn,
                    "metric": self.loss_metrics}

        def compile_from_config(self, config):
            assert isinstance(config["loss_fn"], dict)  # as saved: deserialized here
            self.compile(optimizer=keras.utils.deserialize_keras_object(config["model_optimizer"]),
                         loss_fn=keras.utils.deserialize_keras_object(config["loss_fn"]),
                         metrics=keras.utils.deserialize_keras_object(config["metric"]))

    model = WithCompile()
    model.compile(optimizer="SGD", loss_fn=small_square_sum_loss, metrics=["accuracy"])
    model.fit(np.random.random((4, 8)), np.random.random((4, 4)), verbose=0)
    model.save(tmp_path / "c.keras")
    loaded = keras.models.load_model(tmp_path / "c.keras")
    assert loaded.model_optimizer == "SGD" and loaded.loss_fn is small_square_sum_loss
    assert loaded.loss_metrics == ["accuracy"]
    loaded.fit(np.random.random((4, 8)), np.random.random((4, 4)), verbose=0)


def test_super_save_own_variables_keeps_named_state(tmp_path):
    """A StringLookup subclass whose save/load_own_variables only call super(): its idf
    weights travel as the plain layer's do."""
    class Lookup(keras.layers.StringLookup):
        def save_own_variables(self, store):
            super().save_own_variables(store)

        def load_own_variables(self, store):
            super().load_own_variables(store)

    words = np.array(["a", "b", "b", "c"])
    layer = Lookup(output_mode="tf_idf", name="lookup")
    layer.adapt(words)
    store = {}
    layer.save_own_variables(store)
    assert "idf_weights" in store
    i = keras.Input((1,), dtype="string")
    model = keras.Model(i, layer(i))
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras", custom_objects={"Lookup": Lookup})
    x = np.array([["b"], ["c"], ["z"]])
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0))
