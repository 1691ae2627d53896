"""`plexus.distillation` against `keras.distillation`: the same teacher and student weights
give the same losses and, after training with SGD, the same student weights."""
import keras
import numpy as np
import pytest
import torch

import plexus
from tests.parity.oracle import assert_close

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 5)).astype("float32")
Y = RNG.integers(0, 3, 16)


def _pair():
    """(plexus teacher, plexus student, Keras teacher, Keras student), same weights."""
    def build(m, width):
        i = m.Input((5,))
        h = m.layers.Dense(width, activation="relu", name="hidden")(i)
        return m.Model(i, m.layers.Dense(3, name="logits")(h))
    models = [build(plexus, 8), build(plexus, 6), build(keras, 8), build(keras, 6)]
    rng = np.random.default_rng(1)
    for p, k in ((models[0], models[2]), (models[1], models[3])):
        weights = [rng.normal(size=w.shape).astype("float32") * 0.5 for w in k.get_weights()]
        k.set_weights(weights)
        p.set_weights(weights)
    return models


LOSSES = {
    "logits_default": lambda m: m.distillation.LogitsDistillation(temperature=2.0),
    "logits_kl_object": lambda m: m.distillation.LogitsDistillation(
        temperature=2.0, loss=m.losses.KLDivergence()),
    "logits_and_outputs": lambda m: [
        m.distillation.LogitsDistillation(loss="categorical_crossentropy"),
        m.distillation.FeatureDistillation(loss="mae")],
}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("student_loss_weight", [0.3, 1.0, 0.0])
def test_losses_match_keras(name, student_loss_weight):
    pt, ps, kt, ks = _pair()
    weights = [0.7, 2.0] if name == "logits_and_outputs" else None
    pd = plexus.distillation.Distiller(pt, ps, LOSSES[name](plexus), weights,
                                       student_loss_weight=student_loss_weight)
    kd = keras.distillation.Distiller(kt, ks, LOSSES[name](keras), weights,
                                      student_loss_weight=student_loss_weight)
    pd.compile(loss="sparse_categorical_crossentropy")
    kd.compile(loss="sparse_categorical_crossentropy")
    x, y = torch.tensor(X), torch.tensor(Y)
    assert_close(pd.compute_loss(x, y).detach(), kd.compute_loss(x, y).detach(), atol=1e-5)
    assert_close(pd(x), kd(x))  # calling the distiller calls the student


def test_feature_distillation_on_named_layers_trains_like_keras():
    pt, ps, kt, ks = _pair()
    ps_hidden = plexus.Model(ps.inputs, plexus.layers.Dense(
        8, name="project")(ps.get_layer("hidden").output))
    ks_hidden = keras.Model(ks.inputs, keras.layers.Dense(
        8, name="project")(ks.get_layer("hidden").output))
    ks_hidden.set_weights(ks.get_weights()[:2] + [np.eye(6, 8, dtype="float32"),
                                                  np.zeros(8, "float32")])
    ps_hidden.set_weights(ks_hidden.get_weights())
    # a student whose 'project' layer should match the teacher's 'hidden' features
    p_student = plexus.Model(ps_hidden.inputs, plexus.layers.Dense(3, name="out")(
        ps_hidden.output))
    k_student = keras.Model(ks_hidden.inputs, keras.layers.Dense(3, name="out")(
        ks_hidden.output))
    k_student.set_weights(ks_hidden.get_weights() + [np.full((8, 3), 0.1, "float32"),
                                                     np.zeros(3, "float32")])
    p_student.set_weights(k_student.get_weights())

    def losses(m):
        return [m.distillation.LogitsDistillation(),
                m.distillation.FeatureDistillation(teacher_layer_name="hidden",
                                                   student_layer_name="project")]
    pd = plexus.distillation.Distiller(pt, p_student, losses(plexus), [1.0, 0.5])
    kd = keras.distillation.Distiller(kt, k_student, losses(keras), [1.0, 0.5])
    pd.compile(optimizer=plexus.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    kd.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    teacher_before = [w.copy() for w in pt.get_weights()]
    p_hist = pd.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    k_hist = kd.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    for p_w, k_w in zip(p_student.get_weights(), k_student.get_weights()):
        assert_close(p_w, k_w, atol=1e-5)
    for key in ("loss", "student_loss", "distillation_loss", "total_loss"):
        assert_close(np.array(p_hist[key]), np.array(k_hist[key]), atol=1e-5)
    for before, after in zip(teacher_before, pt.get_weights()):
        np.testing.assert_array_equal(before, after)  # the teacher stays frozen


def test_configs_and_errors():
    config = plexus.distillation.LogitsDistillation(4.0, "kl_divergence").get_config()
    again = plexus.distillation.LogitsDistillation.from_config(config)
    assert again.temperature == 4.0 and again.loss is plexus.losses.kl_divergence
    f = plexus.distillation.FeatureDistillation("mse", "a", "b")
    assert plexus.distillation.FeatureDistillation.from_config(
        f.get_config()).teacher_layer_name == "a"
    pt, ps, _, _ = _pair()
    with pytest.raises(ValueError, match="temperature must be positive"):
        plexus.distillation.LogitsDistillation(temperature=0)
    with pytest.raises(ValueError, match="not None"):
        plexus.distillation.FeatureDistillation(loss=[None, None])
    with pytest.raises(ValueError, match="student_loss_weight"):
        plexus.distillation.Distiller(pt, ps, f, student_loss_weight=2.0)
    with pytest.raises(ValueError, match="In teacher model"):
        plexus.distillation.Distiller(pt, ps, plexus.distillation.FeatureDistillation(
            teacher_layer_name="nope"))
    with pytest.raises(ValueError, match="one weight per loss"):
        plexus.distillation.Distiller(pt, ps, [f, f], [1.0])
    other = plexus.Sequential([plexus.Input((4,)), plexus.layers.Dense(3)])
    with pytest.raises(ValueError, match="input shapes differ"):
        plexus.distillation.Distiller(pt, other, plexus.distillation.LogitsDistillation())
    d = plexus.distillation.Distiller(pt, ps, plexus.distillation.LogitsDistillation(), None,
                                      0.2)
    again = plexus.distillation.Distiller.from_config(d.get_config())
    assert again.student_loss_weight == 0.2 and again.distillation_losses[0].temperature == 3.0
    assert again.student(X).shape == (16, 3) and not again.teacher.trainable  # (new weights)
    assert [w.shape for w in again.student.weights] == [w.shape for w in ps.weights]
    with pytest.raises(ValueError, match="cannot be None"):
        d.compile(loss=None)
    with pytest.raises(NotImplementedError):
        plexus.distillation.DistillationLoss().compute_loss(X, X)


def test_a_saved_distiller_loads_in_plexus_and_in_keras(tmp_path):
    """`model.save` of a Distiller: plexus's loader finds the class, and Keras's loads the file
    (both name it `keras.distillation`)."""
    pt, ps, _, _ = _pair()
    d = plexus.distillation.Distiller(pt, ps, plexus.distillation.LogitsDistillation(),
                                      student_loss_weight=0.3)
    d.save(tmp_path / "d.keras")
    back = plexus.models.load_model(tmp_path / "d.keras")
    assert type(back) is plexus.distillation.Distiller and back.student_loss_weight == 0.3
    for a, b in zip(back.student.get_weights(), ps.get_weights()):
        np.testing.assert_array_equal(a, b)
    theirs = keras.saving.load_model(tmp_path / "d.keras")
    assert type(theirs).__name__ == "Distiller"
    assert_close(keras.ops.convert_to_numpy(theirs.student(X)),
                 plexus.ops.convert_to_numpy(ps(X)))
