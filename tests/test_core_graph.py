"""The functional core: Input, symbolic tensors, nodes, Model, Sequential, names, errors."""
import numpy as np
import pytest
import torch

import plexus
from plexus import Input, layers
from plexus.models import Model, Sequential


def mlp():
    inputs = Input(shape=(64,))
    x = layers.Dense(32, activation="relu")(inputs)
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return Model(inputs, outputs)


def test_input_shape_dtype_name():
    x = Input(shape=(32,))
    assert x.shape == (None, 32)
    assert x.dtype == "float32"
    assert x.name == "input_layer"
    t = Input(shape=(None,), dtype="int32", name="text")
    assert t.shape == (None, None) and t.dtype == "int32" and t.name == "text"
    b = Input(batch_shape=(1000, 28, 28, 256))
    assert b.shape == (1000, 28, 28, 256)
    assert Input(shape=(3,), batch_size=8).shape == (8, 3)


def test_layer_call_on_symbolic_tensor_records_one_node():
    x = Input(shape=(32,))
    dense = layers.Dense(16, activation="relu")
    y = dense(x)
    assert y.shape == (None, 16)
    assert len(dense.inbound_nodes) == 1
    assert dense.input is x and dense.output is y
    z = dense(Input(shape=(32,)))
    assert len(dense.inbound_nodes) == 2
    assert dense.get_output_at(1) is z
    assert dense.output is y  # the first call
    with pytest.raises(ValueError, match="2 call"):
        dense.get_output_at(2)


def test_default_names_count_up_and_clear_session_resets():
    assert [layers.Dense(1).name for _ in range(3)] == ["dense", "dense_1", "dense_2"]
    assert layers.GlobalMaxPooling1D().name == "global_max_pooling1d"
    plexus.clear_session()
    assert layers.Dense(1).name == "dense"


def test_mlp_model_parameters_and_weights_order():
    model = mlp()
    assert model.count_params() == 3466
    assert [l.name for l in model.layers] == ["input_layer", "dense", "dense_1", "dense_2"]
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(64, 32), (32,), (32, 32), (32,), (32, 10), (10,)]
    assert len(model.trainable_weights) == 6 and model.non_trainable_weights == []


def test_model_call_numpy_and_torch_return_torch_tensors():
    model = mlp()
    x = np.random.rand(5, 64)
    y = model(x)
    assert isinstance(y, torch.Tensor) and y.shape == (5, 10)
    np.testing.assert_allclose(y.sum(1).detach().numpy(), np.ones(5), rtol=1e-5)
    y2 = model(torch.as_tensor(x, dtype=torch.float32))
    torch.testing.assert_close(y, y2)


def test_model_matches_manual_computation():
    model = mlp()
    x = np.random.rand(3, 64).astype("float32")
    h = x
    for i, layer in enumerate(model.layers[1:]):
        k, b = layer.get_weights()
        h = h @ k + b
        h = np.maximum(h, 0) if i < 2 else np.exp(h) / np.exp(h).sum(1, keepdims=True)
    np.testing.assert_allclose(model(x).detach().numpy(), h, rtol=1e-5, atol=1e-6)


def test_model_keyword_arguments_and_name():
    inputs = Input(shape=(2,))
    model = Model(inputs=inputs, outputs=layers.Dense(2)(inputs), name="tiny")
    assert model.name == "tiny"
    assert model.input is inputs
    assert model.count_params() == 6


def test_multi_input_multi_output_by_list_and_dict():
    a = Input(shape=(4,), name="a")
    b = Input(shape=(3,), name="b")
    x = layers.concatenate([a, b])
    out1 = layers.Dense(1, name="first")(x)
    out2 = layers.Dense(2, name="second")(x)
    model = Model([a, b], [out1, out2])
    assert model.input_names == ["a", "b"]
    assert model.output_names == ["first", "second"]
    xa, xb = np.random.rand(2, 4), np.random.rand(2, 3)
    r1 = model([xa, xb])
    r2 = model({"b": xb, "a": xa})
    assert isinstance(r1, list) and len(r1) == 2
    torch.testing.assert_close(r1[0], r2[0])
    assert r1[1].shape == (2, 2)


def test_dict_inputs_and_outputs():
    a = Input(shape=(4,), name="a")
    out = layers.Dense(2)(a)
    model = Model({"a": a}, {"y": out})
    assert model.output_names == ["y"]
    res = model({"a": np.ones((1, 4))})
    assert set(res) == {"y"} and res["y"].shape == (1, 2)


def test_shared_layer_reuses_weights():
    lstm_like = layers.Dense(8)
    left, right = Input(shape=(5,)), Input(shape=(5,))
    merged = layers.concatenate([lstm_like(left), lstm_like(right)], axis=-1)
    model = Model([left, right], layers.Dense(1, activation="sigmoid")(merged))
    assert model.count_params() == 5 * 8 + 8 + 16 + 1
    x = np.random.rand(2, 5)
    out = model([x, x])
    assert out.shape == (2, 1)
    assert sum(1 for l in model.layers if l is lstm_like) == 1


def test_model_used_as_layer_reuses_weights():
    base = mlp()
    a, b = Input(shape=(64,)), Input(shape=(64,))
    merged = layers.concatenate([base(a), base(b)])
    outer = Model([a, b], merged)
    assert outer.count_params() == base.count_params()
    x1, x2 = np.random.rand(2, 64), np.random.rand(2, 64)
    res = outer([x1, x2])
    torch.testing.assert_close(res[:, :10], base(x1))
    torch.testing.assert_close(res[:, 10:], base(x2))


def test_intermediate_outputs_feature_extraction():
    model = mlp()
    feats = Model(inputs=model.input, outputs=[l.output for l in model.layers])
    out = feats(np.random.rand(2, 64))
    assert [tuple(o.shape) for o in out] == [(2, 64), (2, 32), (2, 32), (2, 10)]


def test_layers_order_follows_traversal_like_keras():
    text = Input(shape=(None,), dtype="int32", name="text")
    question = Input(shape=(None,), dtype="int32", name="question")
    et = layers.Embedding(100, 4)(text)
    eq = layers.Embedding(100, 4)(question)
    c = layers.concatenate([layers.Dense(3)(eq), layers.Dense(3)(et)])
    model = Model([text, question], c)
    names = [l.name for l in model.layers]
    # Branches are listed in the order the concatenation visits them: question first.
    assert names.index("question") < names.index("text")


def test_sequential_variants():
    s1 = Sequential()
    s1.add(layers.Dense(32, activation="relu", input_shape=(64,)))
    s1.add(layers.Dense(32, activation="relu"))
    s1.add(layers.Dense(32, activation="softmax"))
    assert s1.count_params() == 4192
    assert [l.name for l in s1.layers] == ["dense", "dense_1", "dense_2"]
    s2 = Sequential([Input(shape=(2,)), layers.Dense(2)])
    assert s2.count_params() == 6 and s2.output.shape == (None, 2)
    s3 = Sequential([layers.Dense(4), layers.Dense(1)])  # deferred build
    assert not s3.built
    lines = []
    s3.summary(print_fn=lines.append)  # as Keras: "?" shapes and "0 (unbuilt)" params
    assert any("?" in line and "0 (unbuilt)" in line for line in lines)
    assert s3(np.ones((3, 7))).shape == (3, 1)
    assert s3.count_params() == 7 * 4 + 4 + 5
    popped = s1.pop()
    assert popped.name == "dense_2" and s1.output.shape == (None, 32)
    assert s1.count_params() == 2080 + 1056
    s4 = Sequential()
    s4.add(layers.Dense(3))
    s4.build((None, 5))
    assert s4.output.shape == (None, 3)


def test_set_weights_round_trip_and_wrong_shape_error():
    layer = layers.Dense(3)
    layer(np.zeros((1, 4), dtype="float32"))
    k = np.arange(12, dtype="float32").reshape(4, 3)
    layer.set_weights([k, np.ones(3, dtype="float32")])
    np.testing.assert_array_equal(layer.get_weights()[0], k)
    with pytest.raises(ValueError, match=r"dense.*kernel.*\(4, 3\).*\(5, 3\)"):
        layer.set_weights([np.zeros((5, 3)), np.zeros(3)])
    with pytest.raises(ValueError, match="expects 2 weight arrays"):
        layer.set_weights([k])


def test_trainable_flag_freezes_weights():
    model = mlp()
    model.layers[1].trainable = False
    assert len(model.trainable_weights) == 4
    assert len(model.non_trainable_weights) == 2
    assert not model.layers[1].kernel.requires_grad
    model.layers[1].trainable = True
    assert model.layers[1].kernel.requires_grad


def test_custom_layer_subclass_in_functional_model():
    class Scale(layers.Layer):
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

        def call(self, inputs):
            return torch.matmul(inputs, self.w) + self.b

    inputs = Input(shape=(3,))
    layer = Scale(5)
    y = layer(inputs)
    assert y.shape == (None, 5)
    assert layer.name == "scale"
    model = Model(inputs, layers.Dense(1)(y))
    assert model.count_params() == 3 * 5 + 5 + 6
    assert [n for n, _ in layer.named_parameters()] == ["w", "b"]
    assert model(np.ones((2, 3))).shape == (2, 1)
    assert layer.get_config()["units"] == 5


def test_keras_tensor_operators_build_graph():
    a, b = Input(shape=(3,)), Input(shape=(3,))
    model = Model([a, b], (a + b) * 2.0 - b)
    xa, xb = np.ones((1, 3), "float32"), np.full((1, 3), 2.0, "float32")
    np.testing.assert_allclose(model([xa, xb]).numpy(), (xa + xb) * 2 - xb)


def test_input_layer_in_summary_and_params_formatting():
    lines = []
    mlp().summary(print_fn=lines.append)
    text = "\n".join(lines)
    for needle in ["Layer (type)", "Output Shape", "Param #", "input_layer (InputLayer)",
                   "(None, 64)", "Total params: 3,466", "Trainable params: 3,466",
                   "Non-trainable params: 0"]:
        assert needle in text
    assert "Connected to" not in text


def test_summary_connected_to_for_branches_and_line_length():
    a, b = Input(shape=(4,), name="a"), Input(shape=(4,), name="b")
    model = Model([a, b], layers.add([layers.Dense(4, name="d1")(a), b]))
    lines = []
    model.summary(print_fn=lines.append, line_length=120)
    text = "\n".join(lines)
    assert "Connected to" in text and "d1[0][0]" in text and "a[0][0]" in text
    assert max(len(l) for l in lines) == 120


def test_summary_expand_nested_shows_inner_layers():
    inner = mlp()
    x = Input(shape=(64,))
    outer = Model(x, layers.Dense(2)(inner(x)))
    plain, nested = [], []
    outer.summary(print_fn=plain.append)
    outer.summary(print_fn=nested.append, expand_nested=True)
    assert "functional (Functional)" in "\n".join(plain)
    assert "dense_1 (Dense)" not in "\n".join(plain)
    assert "dense_1 (Dense)" in "\n".join(nested)
    assert "Total params: 3,488" in "\n".join(nested)


def test_bad_graphs_get_messages_that_say_how_to_fix_them():
    a = Input(shape=(4,), name="a")
    x = layers.Dense(3, name="same")(a)
    y = layers.Dense(3, name="same")(x)
    with pytest.raises(ValueError, match="two different layers named 'same'.*distinct `name=`"):
        Model(a, y)
    # an intermediate tensor as input gets an Input of its own, as in Keras
    assert Model(x, layers.Dense(1)(x)).layers[0].name == f"{x.name}CLONE"
    with pytest.raises(TypeError, match="must be a symbolic tensor"):
        Model(a, np.zeros((1, 3)))
    with pytest.raises(TypeError, match="must be a symbolic tensor"):
        Model([a, "b"], x)


def test_wrong_input_structures_and_shapes_are_refused_with_expected_names():
    a = Input(shape=(4,), name="a")
    b = Input(shape=(2,), name="b")
    model = Model([a, b], layers.concatenate([a, b]))
    with pytest.raises(ValueError, match=r"missing 'b'.*\['a', 'b'\]"):
        model({"a": np.ones((1, 4))})
    with pytest.raises(ValueError, match="expects 2 input"):
        model([np.ones((1, 4))])
    with pytest.raises(ValueError, match="expects 2 inputs"):
        model(np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"Input 'a'.*\(None, 4\).*\(1, 5\)"):
        model([np.ones((1, 5)), np.ones((1, 2))])
    with pytest.raises(ValueError, match="get_layer"):
        model.get_layer(index=10)
    with pytest.raises(ValueError, match="No layer named 'zzz'.*'a', 'b'"):
        model.get_layer("zzz")


def test_layer_argument_errors_name_the_problem():
    with pytest.raises(ValueError, match="positive integer"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="Unknown activation 'relux'.*'relu'"):
        layers.Dense(2, activation="relux")
    with pytest.raises(TypeError, match="unexpected keyword argument.*unitz"):
        layers.Dense(2, unitz=3)
    with pytest.raises(ValueError, match="Input needs a shape"):
        Input()
    with pytest.raises(ValueError, match=r"cannot reshape.*\(None, 6\).*\(4,\)"):
        layers.Reshape((4,))(Input(shape=(6,)))
    dense = layers.Dense(2, name="head")
    dense(Input(shape=(3,)))
    with pytest.raises(ValueError, match=r"'head'.*last dimension 3.*\(None, 5\)"):
        dense(Input(shape=(5,)))
