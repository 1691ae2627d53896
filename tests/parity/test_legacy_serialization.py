"""`plexus.legacy.saving` / `plexus.utils.legacy` (Keras 2's serialization format) and
`plexus.utils.Config`, against Keras."""
import copy

import keras
import pytest

import plexus
from plexus.legacy.saving import deserialize_keras_object, serialize_keras_object


def test_same_functions_in_both_namespaces():
    assert plexus.utils.legacy.serialize_keras_object is serialize_keras_object
    assert plexus.utils.legacy.deserialize_keras_object is deserialize_keras_object


@pytest.mark.parametrize("make", [
    lambda m: m.initializers.GlorotUniform(seed=1),
    lambda m: m.initializers.Constant(2.5),
    lambda m: m.regularizers.L1L2(l1=0.1, l2=0.2),
    lambda m: m.activations.relu,
    lambda m: None,
])
def test_serialize_matches_keras(make):
    assert serialize_keras_object(make(plexus)) == \
        keras.legacy.saving.serialize_keras_object(make(keras))


def test_layer_is_written_as_class_name_and_config():
    layer = plexus.layers.Dense(3, activation="relu", name="d")
    written = serialize_keras_object(layer)
    assert set(written) == {"class_name", "config"}
    assert written["class_name"] == "Dense" and written["config"] == layer.get_config()
    # Keras reads it back with its own layers
    k_layer = keras.legacy.saving.deserialize_keras_object(
        written, module_objects=vars(keras.layers))
    assert isinstance(k_layer, keras.layers.Dense) and k_layer.units == 3


def test_passive_objects_and_function_names_are_read_back():
    keras2 = {"class_name": "Dense", "config": {
        "name": "old", "units": 2, "activation": "relu",
        "kernel_initializer": {"class_name": "Constant", "config": {"value": 0.5},
                               "__passive_serialization__": True}}}
    objects = {**vars(plexus.layers), **vars(plexus.initializers), **vars(plexus.activations)}
    layer = deserialize_keras_object(copy.deepcopy(keras2), module_objects=objects)
    k_layer = keras.legacy.saving.deserialize_keras_object(copy.deepcopy(keras2), module_objects={
        **vars(keras.layers), **vars(keras.initializers), **vars(keras.activations)})
    assert isinstance(layer, plexus.layers.Dense) and layer.name == k_layer.name == "old"
    assert isinstance(layer.kernel_initializer, plexus.initializers.Constant)
    assert layer.kernel_initializer.get_config() == k_layer.kernel_initializer.get_config()
    assert layer.activation is plexus.activations.relu


def test_names_custom_objects_and_errors():
    assert deserialize_keras_object("relu", module_objects=vars(plexus.activations)) is \
        plexus.activations.relu
    zeros = deserialize_keras_object("Zeros", module_objects=vars(plexus.initializers))
    assert isinstance(zeros, plexus.initializers.Zeros)  # a class by name: an instance

    class Scale(plexus.layers.Layer):
        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    written = serialize_keras_object(Scale(3.0, name="s"))
    assert written["class_name"] == "Scale"
    assert deserialize_keras_object(written, custom_objects={"Scale": Scale}).factor == 3.0
    with plexus.saving.custom_object_scope({"Scale": Scale}):
        assert deserialize_keras_object(written).factor == 3.0
    with pytest.raises(ValueError, match="Unknown layer: 'Scale'"):
        deserialize_keras_object(written, printable_module_name="layer")
    with pytest.raises(ValueError, match="'class_name' and 'config'"):
        deserialize_keras_object({"config": {}})
    with pytest.raises(ValueError, match="Could not interpret"):
        deserialize_keras_object(3)
    with pytest.raises(ValueError, match="no get_config"):
        serialize_keras_object(3)


def test_config_behaves_like_keras():
    for module in (plexus, keras):
        config = module.utils.Config(learning_rate=0.1, momentum=0.9)
        config.use_ema = True
        config["seed"] = 123
        assert config.seed == 123 and config["learning_rate"] == 0.1
        assert list(config) == ["learning_rate", "momentum", "seed", "use_ema"]
        assert len(config) == 4 and "momentum" in config and config.get("x", 5) == 5
        assert config.as_dict() == {"learning_rate": 0.1, "momentum": 0.9, "use_ema": True,
                                    "seed": 123}
        assert config.to_json() == ('{"learning_rate": 0.1, "momentum": 0.9, '
                                    '"use_ema": true, "seed": 123}')
        config.freeze()
        assert config.frozen
        for change in (lambda: setattr(config, "foo", 1), lambda: config.update(a=1),
                       lambda: config.pop("seed"), lambda: config.__setitem__("a", 1),
                       lambda: config.__delitem__("seed")):
            with pytest.raises(ValueError, match="frozen"):
                change()
        config.unfreeze()
        del config["seed"]
        assert config.pop("use_ema") and len(config) == 2
        with pytest.raises(AttributeError, match="momentun"):
            config.momentun  # noqa: B018
    with pytest.raises(AttributeError, match="Did you mean 'momentum'"):
        plexus.utils.Config(momentum=1).momentun  # noqa: B018
