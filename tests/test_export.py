"""`model.export(path, format="onnx" | "torch")`: the artefact runs without plexus (ONNX Runtime,
`torch.export.load`), matches `predict` with a dynamic batch, and names its inputs and outputs
after the model's."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import plexus as keras
from bench.workloads import WORKLOADS
from plexus import layers

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def two_in_two_out():
    a = keras.Input((6,), name="numbers")
    b = keras.Input((4, 4, 2), name="image")
    h = layers.concatenate([layers.Dense(5, activation="relu")(a),
                            layers.Flatten()(layers.Conv2D(3, 3, padding="same")(b))])
    h = layers.BatchNormalization()(layers.Dropout(0.3)(h))
    return keras.Model([a, b], [layers.Dense(2, name="score")(h),
                                layers.Dense(3, activation="softmax", name="kind")(h)])


def inputs_for(model, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((n,) + tuple(t.shape[1:])).astype("float32") for t in model.inputs]


def run_onnx(path, xs):
    sess = ort.InferenceSession(str(path))
    return sess, sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})


def test_onnx_and_pt2_match_predict_with_a_dynamic_batch(tmp_path):
    model = two_in_two_out()
    onnx_path = model.export(tmp_path / "m.onnx", format="onnx")
    pt2_path = tmp_path / "m.pt2"
    model.export(pt2_path, format="torch")
    assert os.fspath(onnx_path).endswith("m.onnx") and pt2_path.exists()
    program = torch.export.load(pt2_path)
    for n in (1, 5):
        xs = inputs_for(model, n, seed=n)
        expected = model.predict(xs, verbose=0)
        sess, got = run_onnx(onnx_path, xs)
        assert [i.name for i in sess.get_inputs()] == ["numbers", "image"]
        assert [o.name for o in sess.get_outputs()] == ["score", "kind"]
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        out = program.module()([torch.as_tensor(x) for x in xs])
        for a, b in zip(out, expected):
            np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-5, atol=1e-6)
    assert not model.training  # exported in inference mode, the mode left as it was


def test_exported_files_run_without_plexus(tmp_path):
    model = WORKLOADS["residual_cnn"].build(keras)
    model.export(tmp_path / "m.onnx")  # format="onnx" by default
    model.export(tmp_path / "m.pt2", format="torch")
    x = inputs_for(model, 3)[0]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    script = textwrap.dedent(f"""
        import sys
        sys.modules["plexus"] = None  # any import of plexus fails
        import numpy as np, onnxruntime, torch
        d = {str(tmp_path)!r}
        x, y = np.load(d + "/x.npy"), np.load(d + "/y.npy")
        sess = onnxruntime.InferenceSession(d + "/m.onnx")
        a = sess.run(None, {{sess.get_inputs()[0].name: x}})[0]
        b = torch.export.load(d + "/m.pt2").module()(torch.as_tensor(x)).detach().numpy()
        assert np.abs(a - y).max() < 1e-5 and np.abs(b - y).max() < 1e-5, (a, b, y)
        assert not any(m.startswith("plexus") for m in sys.modules if sys.modules[m])
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]


def test_torch_export_takes_the_natural_dynamic_shapes_spec():
    model = WORKLOADS["mlp"].build(keras)
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.rand(3, 64),), dynamic_shapes=({0: batch},))
    x = np.random.rand(7, 64).astype("float32")
    np.testing.assert_allclose(program.module()(torch.as_tensor(x)).detach().numpy(),
                               model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_input_signature_fixes_or_keeps_axes(tmp_path):
    model = WORKLOADS["mlp"].build(keras)
    path = model.export(tmp_path / "m.onnx", input_signature=[keras.InputSpec(shape=(4, 64))])
    sess = ort.InferenceSession(str(path))
    assert sess.get_inputs()[0].shape == [4, 64]
    path = model.export(tmp_path / "d.onnx", input_signature=[(None, 64)])
    assert isinstance(ort.InferenceSession(str(path)).get_inputs()[0].shape[0], str)


def test_bad_exports_name_the_model(tmp_path):
    unbuilt = keras.Sequential([layers.Dense(2)], name="lazy")
    with pytest.raises(ValueError, match="'lazy' has not been built"):
        unbuilt.export(tmp_path / "m.onnx")
    model = WORKLOADS["mlp"].build(keras)
    model.name  # noqa: B018
    with pytest.raises(ValueError, match=r"Model 'functional'.*unknown export format 'tflite'"):
        model.export(tmp_path / "m.tflite", format="tflite")
    with pytest.raises(ValueError, match=r"input 'input_layer'.*\(None, 32\).*\(None, 64\)"):
        model.export(tmp_path / "m.onnx", input_signature=[(None, 32)])
    with pytest.raises(ValueError, match=r"1 input\(s\).*gives 2 spec"):
        model.export(tmp_path / "m.onnx", input_signature=[(None, 64), (None, 64)])
    with pytest.raises(ValueError, match="input_signature for input 'input_layer' must be"):
        model.export(tmp_path / "m.onnx", input_signature=["wide"])
    from tests.test_torch_pickle import Twice
    sub = Twice()
    sub(torch.ones(2, 3))
    with pytest.raises(ValueError, match="'twice' is a subclassed model.*torch.export.export"):
        sub.export(tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_free_axis_that_the_graph_fixes_is_refused_with_a_fix(tmp_path):
    inp = keras.Input((None,), dtype="int32", name="tokens")
    model = keras.Model(inp, layers.LSTM(3)(layers.Embedding(20, 4)(inp)), name="reader")
    with pytest.raises(ValueError, match=r"Model 'reader'.*input_signature.*\['tokens'\]"):
        model.export(tmp_path / "m.pt2", format="torch")
    path = model.export(tmp_path / "m.pt2", format="torch", input_signature=[(None, 6)])
    x = np.random.randint(0, 20, (5, 6)).astype("int32")
    out = torch.export.load(path).module()(torch.as_tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), model.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_a_graph_that_fixes_the_batch_says_so(tmp_path):
    inp = keras.Input((4,))
    model = keras.Model(inp, layers.Lambda(lambda t: t.reshape(2, -1))(inp), name="pairs")
    with pytest.raises(ValueError, match=r"Model 'pairs'.*fixes the batch size.*\[\(2, 4\)\]"):
        model.export(tmp_path / "m.pt2", format="torch")
    path = model.export(tmp_path / "m.pt2", format="torch", input_signature=[(2, 4)])
    x = np.arange(8, dtype="float32").reshape(2, 4)
    out = torch.export.load(path).module()(torch.as_tensor(x))
    np.testing.assert_allclose(out.numpy(), x.reshape(2, -1))
