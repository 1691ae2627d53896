"""Compile config and optimizer state travel with the model: training resumes exactly."""
import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L


def _model():
    torch.manual_seed(0)
    inp = plexus.Input((4,))
    return plexus.Model(inp, L.Dense(1)(L.Dense(8, activation="relu")(inp)))


def _data():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    return x, x.sum(1, keepdims=True)


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "rmsprop", "nadam", "adamax", "adadelta", "adagrad"])
def test_checkpoint_resume_equals_uninterrupted_run(tmp_path, optimizer):
    def opt():
        if optimizer == "sgd_momentum":
            return plexus.optimizers.SGD(0.01, momentum=0.9)
        return optimizer
    x, y = _data()
    plexus.clear_session()
    straight = _model()
    straight.compile(optimizer=opt(), loss="mse")
    straight.fit(x, y, epochs=4, batch_size=8, shuffle=False, verbose=0)
    plexus.clear_session()
    first = _model()
    first.compile(optimizer=opt(), loss="mse")
    first.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    first.save(tmp_path / "ckpt.keras")
    resumed = plexus.models.load_model(tmp_path / "ckpt.keras")
    assert resumed.compiled and resumed.optimizer.iterations == 8
    resumed.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_callback_writes_loadable_files(tmp_path):
    x, y = _data()
    model = _model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    ckpt = plexus.callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch}.keras"))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ckpt])
    loaded = plexus.models.load_model(tmp_path / "m-2.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


def test_compile_false_and_uncompiled_models(tmp_path):
    model = _model()
    model.save(tmp_path / "plain.keras")
    assert not plexus.models.load_model(tmp_path / "plain.keras").compiled
    model.compile(optimizer="sgd", loss="mae")
    model.save(tmp_path / "compiled.keras")
    assert not plexus.models.load_model(tmp_path / "compiled.keras", compile=False).compiled
