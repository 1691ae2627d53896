"""plexus.tree and the serialization/graph utilities, against keras.tree and keras.utils."""
import collections
import inspect

import numpy as np
import pytest
import torch

import plexus
from plexus import layers
from tests.parity.oracle import keras

_P = collections.namedtuple("_P", "x y")


def _structures():
    return [
        {"b": [1, (2, None)], "a": 3, "c": collections.OrderedDict([("z", 4), ("y", 5)])},
        [1, [2, [3, []]], (4,)],
        _P(1, [2, {"k": 3}]),
        7,
        None,
        np.zeros(2),
        collections.defaultdict(list, {"q": 1, "p": [2]}),
    ]


def test_tree_matches_keras():
    for name in dir(keras.tree):
        if not name.startswith("_"):
            assert hasattr(plexus.tree, name), name
            fn, kfn = getattr(plexus.tree, name), getattr(keras.tree, name)
            if inspect.isfunction(kfn):
                assert list(inspect.signature(fn).parameters) == \
                    list(inspect.signature(kfn).parameters), name
    for s in _structures():
        for fname in ("flatten", "flatten_with_path", "is_nested", "lists_to_tuples"):
            ours, theirs = getattr(plexus.tree, fname)(s), getattr(keras.tree, fname)(s)
            assert repr(ours) == repr(theirs), (fname, s)
        double = lambda x: None if x is None else x * 2  # noqa: E731
        assert repr(plexus.tree.map_structure(double, s)) == \
            repr(keras.tree.map_structure(double, s))
        n = len(keras.tree.flatten(s))
        assert repr(plexus.tree.pack_sequence_as(s, list(range(n)))) == \
            repr(keras.tree.pack_sequence_as(s, list(range(n))))
    pair = ({"a": 1, "b": 2}, {"b": 3, "a": 4})
    assert plexus.tree.map_structure(lambda a, b: a + b, *pair) == {"a": 5, "b": 5}
    assert plexus.tree.map_structure(lambda x: 1, [None, 2], none_is_leaf=False) == [None, 1]
    up_to = ([1, [2, 3]], lambda a, b: (a, b), [1, [2, 3]], [4, [5, 6]])
    assert plexus.tree.map_structure_up_to(*up_to) == keras.tree.map_structure_up_to(*up_to)
    shapes = [(1, 2), {"s": (None, 3)}]
    assert plexus.tree.map_shape_structure(len, shapes) == \
        keras.tree.map_shape_structure(len, shapes)
    marker = lambda x: plexus.tree.MAP_TO_NONE if x == 2 else None  # noqa: E731
    assert plexus.tree.traverse(marker, [1, [2]]) == [1, [None]]
    bottom = lambda x: "L" if isinstance(x, list) and len(x) == 1 else None  # noqa: E731
    assert plexus.tree.traverse(bottom, [1, [2]], top_down=False) == \
        keras.tree.traverse(bottom, [1, [2]], top_down=False)


def test_tree_mismatches_raise():
    t = plexus.tree
    with pytest.raises(ValueError, match="same nested structure"):
        t.assert_same_structure([1, 2], [1, [2]])
    with pytest.raises(ValueError, match="same nested structure"):
        t.assert_same_structure((1, 2), [1, 2])
    with pytest.raises(ValueError, match="same nested structure"):
        t.map_structure(lambda a, b: a, {"a": 1}, {"b": 1})
    t.assert_same_paths([1, 2], (3, 4))
    with pytest.raises(ValueError, match="don't have the same paths"):
        t.assert_same_paths([1, 2], [3])
    with pytest.raises(ValueError, match="3 items"):
        t.pack_sequence_as([1, [2]], [1, 2, 3])


def test_get_source_inputs_matches_keras():
    def sources(lib):
        a, b, c = lib.Input((3,), name="a"), lib.Input((3,), name="b"), lib.Input((3,), name="c")
        x = lib.layers.Add()([b, lib.layers.Dense(3)(a)])
        y = lib.layers.Concatenate()([x, c, a])
        return [t.name for t in lib.utils.get_source_inputs(y)], \
            [t.name for t in lib.utils.get_source_inputs(a)]

    assert sources(plexus) == sources(keras)


def test_custom_objects_scope_registry_and_clone_model():
    @plexus.saving.register_keras_serializable(package="treetest")
    def swish2(x):
        return x * torch.sigmoid(x)

    class Halve(plexus.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return torch.full(shape, 0.5, dtype=dtype)

    class Scale(layers.Layer):  # its config comes from the constructor's arguments
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

    inputs = plexus.Input((3,))
    x = layers.Dense(2, activation=swish2, kernel_initializer=Halve())(inputs)
    model = plexus.Model(inputs, Scale(3.0)(x))
    registry = plexus.utils.get_custom_objects()
    assert registry["treetest>swish2"] is swish2
    with pytest.raises(ValueError, match="Unknown initializer"):
        plexus.models.clone_model(model)
    with plexus.utils.custom_object_scope({"Scale": Scale}, {"Halve": Halve}):
        assert plexus.utils.get_registered_object("Halve") is Halve
        clone = plexus.models.clone_model(model)
    assert clone.layers[1].activation is swish2 and isinstance(clone.layers[2], Scale)
    assert clone.layers[2].factor == 3.0 and clone.layers[1].kernel.numpy().max() == 0.5
    registry["Halve"] = Halve  # the live registry, as Keras's get_custom_objects()
    try:
        assert plexus.initializers.get("Halve").__class__ is Halve
    finally:
        del registry["Halve"]
    seen = []
    plexus.models.clone_model(
        model, clone_function=lambda l: l,
        call_function=lambda layer, *a, **k: seen.append(layer.name) or layer(*a, **k))
    assert seen == [model.layers[1].name, model.layers[2].name]
    config = plexus.utils.serialize_keras_object(Halve())
    with plexus.utils.CustomObjectScope({"Halve": Halve}):
        assert isinstance(plexus.utils.deserialize_keras_object(config), Halve)


def test_input_spec_checks_like_keras():
    def make(lib, **spec):
        class Checked(lib.layers.Layer):
            def __init__(self):
                super().__init__(name="checked")
                self.input_spec = lib.layers.InputSpec(**spec)

            def call(self, x):
                return x

        return Checked()

    cases = [
        (dict(ndim=3), (2, 4)),
        (dict(min_ndim=3), (2, 4)),
        (dict(max_ndim=2), (2, 4, 1)),
        (dict(axes={-1: 5}), (2, 4)),
        (dict(shape=(None, 28, 28, 1)), (2, 28, 27, 1)),
        (dict(dtype="int32"), (2, 3)),
    ]
    for spec, shape in cases:
        x = np.zeros(shape, "float32")
        with pytest.raises(ValueError) as ours:
            make(plexus, **spec)(x)
        with pytest.raises(ValueError) as theirs:
            make(keras, **spec)(x)
        # Keras appends the call's arguments after the first line
        assert str(ours.value) == str(theirs.value).splitlines()[0], spec
    squeeze = dict(shape=(None, 28, 28, 1), allow_last_axis_squeeze=True)
    assert make(plexus, **squeeze)(np.zeros((2, 28, 28), "float32")).shape == (2, 28, 28)
    with pytest.raises(ValueError, match="expected ndim=3"):
        make(plexus, ndim=3)(plexus.Input((4,)))  # symbolic calls are checked too
    assert repr(plexus.layers.InputSpec(ndim=3, axes={-1: 4})) == \
        repr(keras.layers.InputSpec(ndim=3, axes={-1: 4}))
