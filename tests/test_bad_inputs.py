"""Bad arguments to fit/evaluate/predict and the *_on_batch methods: a clear TypeError or
ValueError naming the method, the argument, the output and the shapes, before any step runs.

(Keras 3.15 answers most of these with a ZeroDivisionError, a silent run over nothing, an
UnboundLocalError or torch's size-mismatch RuntimeError.)
"""
import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L

X = np.ones((10, 3), "float32")
Y = np.ones((10, 2), "float32")


def _model(loss="mse", outputs=1):
    inp = plexus.Input((3,), name="inp")
    outs = [L.Dense(2, name=f"out{i}")(inp) for i in range(outputs)]
    model = plexus.Model(inp, outs if outputs > 1 else outs[0])
    model.compile("sgd", loss)
    return model


def _gen():
    while True:
        yield X[:4], Y[:4]


@pytest.mark.parametrize("call,error,message", [
    (lambda m: m.fit(X, Y, batch_size=0), ValueError, r"fit: batch_size must be a positive "
     r"integer \(samples per batch\); received 0"),
    (lambda m: m.fit(X, Y, batch_size=-5), ValueError, "fit: batch_size .* received -5"),
    (lambda m: m.fit(X, Y, batch_size=2.5), ValueError, r"fit: batch_size .* received 2.5\.$"),
    (lambda m: m.fit(X, Y, batch_size=4.0), ValueError, "Pass batch_size=4"),
    (lambda m: m.fit(X, Y, batch_size=True), TypeError, "batch_size .* of type bool"),
    (lambda m: m.fit(X, Y, batch_size="4"), TypeError, "batch_size .* of type str"),
    (lambda m: m.evaluate(X, Y, batch_size=0), ValueError, "evaluate: batch_size"),
    (lambda m: m.predict(X, batch_size=-1), ValueError, "predict: batch_size .* received -1"),
    (lambda m: m.fit(X, Y, epochs=-1), ValueError, "fit: epochs must be a non-negative"),
    (lambda m: m.fit(X, Y, epochs=2.5), ValueError, "fit: epochs"),
    (lambda m: m.fit(X, Y, epochs=None), TypeError, "fit: epochs .* received None"),
    (lambda m: m.fit(X, Y, initial_epoch=-1), ValueError, "fit: initial_epoch"),
    (lambda m: m.fit(_gen(), steps_per_epoch=0), ValueError, "fit: steps_per_epoch must be a "
     "positive integer"),
    (lambda m: m.fit(X, Y, steps_per_epoch=-2), ValueError, "steps_per_epoch .* received -2"),
    (lambda m: m.fit(_gen(), steps_per_epoch=1.5), ValueError, "steps_per_epoch"),
    (lambda m: m.fit(X, Y, validation_data=(X, Y), validation_freq=[1, 0]), ValueError,
     "fit: validation_freq"),
    (lambda m: m.fit(X, Y, validation_split=1.5), ValueError, r"fit: validation_split .* \[0, 1\)"),
    (lambda m: m.fit(X, Y, verbose=3), ValueError, "fit: verbose"),
    (lambda m: m.fit(X, Y, validation_data=(X, Y), validation_steps=0), ValueError,
     "fit: validation_steps"),
    (lambda m: m.fit(X, Y, validation_data=(X, Y), validation_freq=0), ValueError,
     "fit: validation_freq"),
    (lambda m: m.fit(X, Y, validation_data=(X, Y), validation_batch_size=0), ValueError,
     "fit: validation_batch_size"),
    (lambda m: m.evaluate(X, Y, steps=0), ValueError, "evaluate: steps"),
    (lambda m: m.predict(X, steps=0), ValueError, "predict: steps"),
])
def test_counting_arguments_are_positive_integers(call, error, message):
    model = _model()
    before = model.get_weights()
    with pytest.raises(error, match=message):
        call(model)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_epochs_zero_trains_nothing_as_in_keras():
    assert _model().fit(X, Y, epochs=0, verbose=0).history == {}


@pytest.mark.parametrize("call,method", [
    (lambda m: m.fit(X[:0], Y[:0], verbose=0), "fit"),
    (lambda m: m.evaluate(X[:0], Y[:0], verbose=0), "evaluate"),
    (lambda m: m.predict(X[:0], verbose=0), "predict"),
    (lambda m: m.predict(X[:0], verbose=0, batch_size=4, steps=2), "predict"),
    (lambda m: m.train_on_batch(X[:0], Y[:0]), "train_on_batch"),
    (lambda m: m.test_on_batch(X[:0], Y[:0]), "test_on_batch"),
    (lambda m: m.predict_on_batch(X[:0]), "predict_on_batch"),
    (lambda m: m.fit(X, Y, validation_data=(X[:0], Y[:0]), verbose=0),
     r"fit \(validation_data\)"),
])
def test_no_samples_is_an_error(call, method):
    with pytest.raises(ValueError, match=f"{method} received no samples"):
        call(_model())


@pytest.mark.parametrize("call,method", [
    (lambda m: m.predict(None), "predict"), (lambda m: m.predict_on_batch(None), "predict_on_batch"),
    (lambda m: m.fit(None, Y), "fit"), (lambda m: m.evaluate(None, Y), "evaluate"),
    (lambda m: m.train_on_batch(None, Y), "train_on_batch"),
    (lambda m: m.test_on_batch(None, Y), "test_on_batch"),
])
def test_missing_inputs_are_named(call, method):
    with pytest.raises(ValueError, match=f"{method} needs input data, but x is None"):
        call(_model())


def _returns(value):
    def bad_loss(y_true, y_pred):
        return value(y_true, y_pred)
    return bad_loss


@pytest.mark.parametrize("result,error,message", [
    (lambda t, p: None, TypeError, "returned None"),
    (lambda t, p: "loss", TypeError, r"returned a str \('loss'\)"),
    (lambda t, p: (p.sum(), p.sum()), TypeError, "returned a tuple of 2 elements"),
    (lambda t, p: 0.5, TypeError, r"returned a float \('0.5'\)"),
    (lambda t, p: (p - t).sum().long(), TypeError, "returned a tensor of dtype torch.int64"),
    (lambda t, p: ((p - t) ** 2)[:2, 0], ValueError, r"returned shape \(2,\) for a batch of "
     "10 samples"),
])
def test_loss_results_name_the_loss_and_the_output(result, error, message):
    model = _model(loss=_returns(result), outputs=2)
    before = model.get_weights()
    with pytest.raises(error, match=f"Output 'out0': the loss 'bad_loss' {message}"):
        model.fit(X, [Y, Y], epochs=1, verbose=0, batch_size=10)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("result", [
    lambda t, p: ((p - t) ** 2).mean(),  # one number
    lambda t, p: ((p - t) ** 2).mean().reshape(1),  # one number, kept in an axis
    lambda t, p: (p - t) ** 2,  # one value per sample and column
])
def test_legitimate_loss_results_train(result):
    history = _model(loss=_returns(result)).fit(X, Y, verbose=0, batch_size=10)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("loss,target,message", [
    ("mse", np.ones((10, 3)), r"\(10, 3\), but the output has shape \(None, 2\) and its "
     r"loss 'mse' expects targets of shape \(None, 2\)\.$"),
    ("mse", np.ones((10, 1)), r"\(10, 1\)"),  # would broadcast silently
    ("mse", np.ones((10,)), r"\(10,\)"),
    ("categorical_crossentropy", np.ones((10,)), ".* for class ids use "
     "sparse_categorical_crossentropy"),
    ("sparse_categorical_crossentropy", np.ones((10, 2)), r".* expects targets of shape "
     r"\(None,\) \(one class id per sample\)"),
])
def test_targets_that_do_not_fit_the_output_name_it_and_the_shapes(loss, target, message):
    for call in (lambda m: m.fit(X, target, verbose=0), lambda m: m.evaluate(X, target, verbose=0),
                 lambda m: m.train_on_batch(X, target), lambda m: m.test_on_batch(X, target)):
        model = _model(loss=loss)
        before = model.get_weights()
        with pytest.raises(ValueError, match=f"Target for output 'out0' has shape {message}"):
            call(model)
        for a, b in zip(before, model.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_generator_targets_are_checked_before_their_step():
    def gen():
        while True:
            yield X[:4], np.ones((4, 5), "float32")
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"Target for output 'out0' has shape \(4, 5\)"):
        model.fit(gen(), steps_per_epoch=2, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_targets_keras_accepts_still_train():
    inp = plexus.Input((3,))
    model = plexus.Model(inp, L.Dense(1)(inp))
    model.compile("sgd", "mse")
    model.fit(X, np.ones(10), verbose=0)  # (batch,) targets for a (batch, 1) output
    clf = _model("sparse_categorical_crossentropy")
    clf.fit(X, np.zeros(10), verbose=0)
    clf.fit(X, np.zeros((10, 1)), verbose=0)

    def custom(y_true, y_pred):  # a loss of the user's: its conventions are its own
        return torch.mean((y_pred - y_true.mean()) ** 2, dim=-1)
    own = _model(custom)
    own.fit(X, np.ones((10, 7), "float32"), verbose=0)


@pytest.mark.parametrize("make,error,message", [
    (lambda: plexus.optimizers.Adam(beta_1="0.9"), TypeError, r"Adam: beta_1 must be a number "
     r"in \[0, 1\); received '0.9' of type str"),
    (lambda: plexus.optimizers.Adam(beta_2=1.0), ValueError, r"Adam: beta_2 must be in \[0, 1\)"),
    (lambda: plexus.optimizers.Nadam(beta_1=-1), ValueError, "Nadam: beta_1"),
    (lambda: plexus.optimizers.RMSprop(rho=[0.9]), TypeError, "RMSprop: rho"),
    (lambda: plexus.optimizers.SGD(momentum=2), ValueError, r"SGD: momentum must be in \[0, 1\]"),
    (lambda: plexus.optimizers.Adagrad(epsilon=-1e-7), ValueError, "Adagrad: epsilon"),
    (lambda: plexus.optimizers.Adadelta(clipnorm="x"), TypeError, "Adadelta: clipnorm"),
    (lambda: plexus.optimizers.Adamax(weight_decay={}), TypeError, "Adamax: weight_decay"),
])
def test_optimizer_hyperparameters_are_checked_when_made(make, error, message):
    with pytest.raises(error, match=message):  # (were errors from inside the first step)
        make()


def test_what_cannot_be_a_metric_fails_at_compile():
    with pytest.raises(TypeError, match="Cannot interpret 5 as a metric"):
        _model().compile("sgd", "mse", metrics=[5])
