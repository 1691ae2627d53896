"""`torch.compile(model, fullgraph=True)` traces every layer family in one graph (recurrent
layers through the `plexus::fused_rnn` custom op), with the outputs and gradients of eager
runs; `torch.fx.symbolic_trace(model)` gives the model's own graph of layer calls."""
import numpy as np
import pytest
import torch

import plexus as keras
from plexus import layers

# "aot_eager" traces forward and backward through AOTAutograd (fake tensors, the custom op's
# shape function and gradient formula) without inductor's code generation, which takes tens of
# seconds per model on a small CPU; one inductor test is marked slow.
BACKEND = "aot_eager"


def seq_model(build, shape=(7, 3), dtype="float32"):
    inp = keras.Input(shape, dtype=dtype)
    return keras.Model(inp, build(inp))


RECURRENT = {
    "lstm": lambda i: layers.LSTM(5)(i),
    "lstm_sequences_states": lambda i: layers.concatenate(
        [layers.Flatten()(layers.LSTM(4, return_sequences=True)(i)),
         *layers.LSTM(3, return_state=True)(i)[1:]]),
    "gru": lambda i: layers.GRU(5, return_sequences=True)(i),
    "simple_rnn": lambda i: layers.SimpleRNN(5)(i),
    "bidirectional_lstm": lambda i: layers.Bidirectional(layers.LSTM(4))(i),
    "bidirectional_gru_sum": lambda i: layers.Bidirectional(
        layers.GRU(4, return_sequences=True), merge_mode="sum")(i),
    "stacked_go_backwards": lambda i: layers.GRU(3, go_backwards=True)(
        layers.SimpleRNN(4, return_sequences=True)(i)),
}


def compare(model, x, backend=BACKEND):
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    np.testing.assert_allclose(compiled(x).detach().numpy(), model(x).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    # Gradients through the compiled graph (training mode) match eager ones.
    grads = []
    for fn in (compiled, model):
        model.zero_grad()
        fn(x, training=True).square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    model.zero_grad()
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    return compiled


FAST = {"lstm"}  # (the others compile for 1-6 s each here: slow)


@pytest.mark.parametrize("name", [
    n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in sorted(RECURRENT)])
def test_recurrent_models_compile_in_one_graph(name):
    model = seq_model(RECURRENT[name])
    compare(model, torch.rand(4, 7, 3))


def test_masked_recurrent_model_compiles():
    model = seq_model(lambda i: layers.LSTM(4)(layers.GRU(5, return_sequences=True)(
        layers.Embedding(30, 3, mask_zero=True)(i))), shape=(6,), dtype="int32")
    x = torch.randint(1, 30, (4, 6))
    x[0, 4:] = 0
    x[2, :3] = 0
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=BACKEND)
    np.testing.assert_allclose(compiled(x).detach().numpy(), model(x).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_compiled_recurrent_model_takes_other_lengths():
    """The custom op's shape function keeps the time axis symbolic: other lengths run through
    the same compiled graph."""
    model = seq_model(lambda i: layers.GRU(5)(i), shape=(None, 3))
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend=BACKEND)
    for steps in (4, 9, 30):
        x = torch.rand(2, steps, 3)
        np.testing.assert_allclose(compiled(x).detach().numpy(), model(x).detach().numpy(),
                                   rtol=1e-5, atol=1e-6)


OTHER_FAMILIES = {
    "dense_batchnorm_dropout": ((6,), lambda i: layers.Dropout(0.3)(
        layers.BatchNormalization()(layers.Dense(4, activation="relu")(i)))),
    "convolutions_pooling": ((8, 8, 3), lambda i: layers.GlobalAveragePooling2D()(
        layers.SeparableConv2D(3, 3)(layers.MaxPooling2D()(layers.DepthwiseConv2D(3, padding="same")(
            layers.Conv2D(4, 3, padding="same")(i)))))),
    "attention_layernorm": ((5, 6), lambda i: layers.LayerNormalization()(
        layers.MultiHeadAttention(2, 4)(i, i))),
    "conv_lstm": ((4, 6, 2), lambda i: layers.ConvLSTM1D(2, 3)(i)),
    "ops_and_reshaping": ((4, 6), lambda i: layers.Reshape((24,))(
        keras.ops.mean(i, axis=-1, keepdims=True) * i + 1.0)),
}


@pytest.mark.parametrize("name", [
    n if n in {"dense_batchnorm_dropout", "ops_and_reshaping"}
    else pytest.param(n, marks=pytest.mark.slow) for n in sorted(OTHER_FAMILIES)])
def test_other_layer_families_compile_in_one_graph(name):
    shape, build = OTHER_FAMILIES[name]
    model = seq_model(build, shape=shape)
    x = torch.rand(3, *shape)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=BACKEND)
    np.testing.assert_allclose(compiled(x).detach().numpy(), model(x).detach().numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_inductor_compiles_a_recurrent_model():
    model = seq_model(lambda i: layers.Dense(2)(layers.Bidirectional(layers.LSTM(4))(i)))
    compare(model, torch.rand(4, 7, 3), backend="inductor")


def test_fx_symbolic_trace_gives_the_graph_of_layer_calls():
    a = keras.Input((6,), name="a")
    b = keras.Input((5, 3), name="b")
    shared = layers.Dense(4, name="shared")
    h = layers.concatenate([shared(a), layers.LSTM(4, name="lstm")(b)], name="cat")
    model = keras.Model([a, b], [layers.Dense(1, name="head")(h),
                                 shared(layers.Dense(6, name="back")(shared(a)))])
    gm = torch.fx.symbolic_trace(model)
    assert isinstance(gm, torch.fx.GraphModule)
    calls = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert sorted(calls) == sorted(["shared", "lstm", "cat", "head", "shared", "back", "shared"])
    assert calls.index("cat") < calls.index("head") and calls.index("back") < calls.index(
        "shared", calls.index("back"))
    xs = [torch.rand(3, 6), torch.rand(3, 5, 3)]
    for got, want in zip(gm(xs), model(xs)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)
    assert gm.get_submodule("shared") is shared  # the model's own layers, not copies


@pytest.mark.slow
def test_jit_compile_races_the_eager_step_and_keeps_the_faster():
    """`jit_compile=True`: after a warm-up, compiled and eager steps alternate, and the faster
    path (by median step time) trains the rest; both give the same weights."""
    from plexus.training import jit_race
    rng = np.random.default_rng(0)
    x = rng.random((40, 5)).astype("float32")
    y = x[:, :2] * 2
    weights = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        inp = keras.Input((5,))
        model = keras.Model(inp, layers.Dense(2)(layers.Dense(4, activation="relu")(inp)))
        model.compile("adam", "mse", jit_compile=jit)
        model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)  # 20 steps
        weights.append(model.get_weights())
    race = model._compile_state.cache["jit"]
    assert race.winner in ("compiled", "eager")
    assert len(race.times["compiled"]) >= jit_race.TRIALS
    assert len(race.times["eager"]) >= jit_race.TRIALS
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_packed_masked_lstm_compiles_with_a_graph_break():
    """A masked LSTM returning its cell state runs as a packed batch (host-side lengths):
    outside the graph, with the eager numbers."""
    inp = keras.Input((6,), dtype="int32")
    model = keras.Model(inp, layers.LSTM(4, return_state=True)(
        layers.Embedding(30, 3, mask_zero=True)(inp)))
    x = torch.randint(1, 30, (4, 6))
    x[0, 3:] = 0
    torch._dynamo.reset()
    for got, want in zip(torch.compile(model, backend=BACKEND)(x), model(x)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_a_failing_compiled_step_falls_back_to_eager_with_a_warning():
    from plexus.training.jit_race import JitRace

    def broken(xs, ys, sw):
        raise RuntimeError("inductor could not lower this graph\nmore detail")

    race = JitRace(broken, eager=lambda xs, ys, sw: ("eager step", xs))
    step = race.begin()
    with pytest.warns(UserWarning, match="torch.compile failed on model 'model' \\(RuntimeError: "
                                         "inductor could not lower this graph\\)"):
        assert step(1, 2, 3) == ("eager step", 1)
    assert race.winner == "eager" and race.begin() is None


def test_fit_goes_on_eagerly_when_the_compiler_fails(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.random((12, 5)).astype("float32")
    y = x[:, :1]
    weights = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        inp = keras.Input((5,))
        model = keras.Model(inp, layers.Dense(1)(layers.Dense(3, activation="relu")(inp)))
        model.compile("sgd", "mse", jit_compile=jit)
        if jit:
            def fails_to_compile(fn, **kwargs):
                def run(*args):
                    raise RuntimeError("InductorError: cannot lower this graph")
                return run
            monkeypatch.setattr(torch, "compile", fails_to_compile)
            with pytest.warns(UserWarning, match="torch.compile failed.*trains eagerly"):
                model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        else:
            model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_fx_symbolic_trace_of_sequential_and_dict_models():
    seq = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="d1"), layers.Dense(2)])
    x = torch.rand(5, 4)
    np.testing.assert_allclose(torch.fx.symbolic_trace(seq)(x).detach().numpy(),
                               seq(x).detach().numpy(), rtol=1e-6)
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    model = keras.Model({"a": a, "b": b},
                        {"sum": layers.add([a, b]), "prod": layers.multiply([a, b])})
    xs = {"a": torch.rand(2, 3), "b": torch.rand(2, 3)}
    got, want = torch.fx.symbolic_trace(model)(xs), model(xs)
    assert sorted(got) == ["prod", "sum"]
    for k in got:
        np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-6)


def _rnn_op_args(mode, bidirectional=False):
    from plexus.layers import rnn_ops  # noqa: F401 (registers the ops)
    gates = {"lstm": 4, "gru": 3, "rnn_tanh": 1}[mode]
    dirs = 2 if bidirectional else 1
    torch.manual_seed(0)
    x = torch.rand(2, 5, 3, dtype=torch.float64, requires_grad=True)
    hx = [torch.rand(dirs, 2, 4, dtype=torch.float64, requires_grad=True)
          for _ in range(2 if mode == "lstm" else 1)]
    params = [torch.rand(s, dtype=torch.float64, requires_grad=True) for _ in range(dirs)
              for s in ((gates * 4, 3), (gates * 4, 4), (gates * 4,), (gates * 4,))]
    return x, hx, params


@pytest.mark.parametrize("mode,bidirectional", [("lstm", False), ("gru", True),
                                                ("rnn_tanh", False)])
def test_fused_rnn_op_gradients_are_exact(mode, bidirectional):
    from plexus.layers.rnn_ops import fused_rnn
    x, hx, params = _rnn_op_args(mode, bidirectional)
    n = len(hx)

    def f(x, *rest):
        outs = fused_rnn(mode, x, list(rest[:n]), list(rest[n:]), True, True, bidirectional)
        return tuple(outs)
    assert torch.autograd.gradcheck(f, (x, *hx, *params))


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_packed_fused_rnn_op_gradients_are_exact(mode):
    """The packed op (masked sequences of different lengths) differentiates exactly too."""
    from plexus.layers.rnn_ops import fused_rnn_packed
    x, hx, params = _rnn_op_args(mode)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([5, 3]), batch_first=True)
    n = len(hx)

    def f(data, *rest):
        return tuple(fused_rnn_packed(mode, data, packed.batch_sizes, list(rest[:n]),
                                      list(rest[n:]), True, True))
    assert torch.autograd.gradcheck(f, (packed.data.detach().requires_grad_(True), *hx,
                                        *params))


@pytest.mark.slow
def test_fused_rnn_op_passes_torch_opcheck():
    from plexus.layers.rnn_ops import fused_rnn
    x, hx, params = _rnn_op_args("lstm")
    result = torch.library.opcheck(fused_rnn, ("lstm", x, hx, params, True, True, False))
    assert set(result.values()) == {"SUCCESS"}
