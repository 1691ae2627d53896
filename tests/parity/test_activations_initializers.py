"""Activations, initializers, regularizers and constraints give Keras's numbers and configs."""
import keras
import numpy as np
import pytest
import torch

import plexus
from tests.parity.oracle import assert_close

X = torch.linspace(-3.0, 3.0, 25).reshape(5, 5)

ACTIVATIONS = [
    ("relu", {}), ("relu", {"negative_slope": 0.1}), ("relu", {"max_value": 1.5}),
    ("relu", {"threshold": 0.5}), ("relu", {"negative_slope": 0.2, "threshold": -1.0,
                                            "max_value": 2.0}),
    ("relu", {"threshold": -1.0, "max_value": 6}), ("celu", {"alpha": 0.7}), ("glu", {}),
    ("hard_tanh", {}), ("hard_shrink", {"threshold": 0.7}), ("soft_shrink", {}),
    ("tanh_shrink", {}), ("threshold", {"threshold": 0.3, "default_value": -2.0}),
    ("log_sigmoid", {}), ("sparse_plus", {}), ("sparse_sigmoid", {}), ("squareplus", {"b": 2}),
    ("sparsemax", {}), ("sparsemax", {"axis": 0}), ("hard_sigmoid", {}), ("mish", {}),
    ("hard_silu", {}), ("elu", {}), ("selu", {}), ("gelu", {"approximate": True}),
]


@pytest.mark.parametrize("name,kwargs", ACTIVATIONS,
                         ids=[f"{n}-{'-'.join(k)}" for n, k in ACTIVATIONS])
def test_activation_matches_keras(name, kwargs):
    x = X[:, :4] if name == "glu" else X
    assert_close(getattr(plexus.activations, name)(x, **kwargs),
                 getattr(keras.activations, name)(x, **kwargs), atol=1e-6)
    assert plexus.activations.get(name) is getattr(plexus.activations, name)
    assert plexus.activations.serialize(plexus.activations.get(name)) == \
        keras.activations.serialize(keras.activations.get(name))


def test_activation_lookup_and_errors():
    A = plexus.activations
    assert A.get({"class_name": "function", "config": "celu", "module": "keras.activations",
                  "registered_name": None}) is A.celu
    assert A.deserialize("swish") is A.silu
    with pytest.raises(ValueError, match="even"):
        A.glu(torch.ones(2, 3))
    with pytest.raises(ValueError, match="Did you mean 'celu'"):
        A.get("cellu")


SEEDED = [
    ("RandomNormal", {"mean": 0.5, "stddev": 2.0}), ("RandomUniform", {"minval": -1.0}),
    ("TruncatedNormal", {"stddev": 0.3}), ("VarianceScaling", {"mode": "fan_avg"}),
    ("VarianceScaling", {"distribution": "uniform", "scale": 2.0}),
    ("VarianceScaling", {"distribution": "untruncated_normal", "mode": "fan_out"}),
    ("VarianceScaling", {"input_axes": [0], "output_axes": [1, 2]}),
    ("GlorotUniform", {}), ("GlorotNormal", {}), ("HeNormal", {}), ("HeUniform", {}),
    ("LecunNormal", {}), ("LecunUniform", {}), ("Orthogonal", {"gain": 2.0}),
]


@pytest.mark.parametrize("name,kwargs", SEEDED, ids=[s[0] for s in SEEDED])
def test_seeded_initializer_draws_keras_numbers(name, kwargs):
    shape = (3, 4, 5)
    p = getattr(plexus.initializers, name)(seed=1234, **kwargs)
    k = getattr(keras.initializers, name)(seed=1234, **kwargs)
    assert_close(p(shape), k(shape), rtol=1e-5, atol=1e-6)
    assert_close(p(shape), p(shape), rtol=0, atol=0)  # a seed gives the same values each call
    assert p.get_config() == k.get_config()
    again = plexus.initializers.get(keras.initializers.serialize(k))
    assert type(again) is type(p) and again.get_config() == p.get_config()


def test_initializer_names_and_fixed_values():
    I = plexus.initializers
    for name in ("identity", "IdentityInitializer", "OrthogonalInitializer",
                 "variance_scaling", "one", "zero"):
        assert type(I.get(name)).__name__ == type(keras.initializers.get(name)).__name__
    assert type(I.get("stft")) is type(I.get("STFTInitializer")) is I.STFT  # (Keras needs scipy)
    values = np.arange(6, dtype="float32").reshape(2, 3)
    init = I.get(values)
    assert_close(init((2, 3)), values)
    with pytest.raises(ValueError, match=r"fixed values of shape \(2, 3\)"):
        init((3, 2))
    with pytest.raises(ValueError, match="seed"):
        I.RandomNormal(seed="7")


@pytest.mark.parametrize("side", ["real", "imag"])
@pytest.mark.parametrize("window,scaling,periodic", [
    (None, None, False), ("hann", "density", True), ("hamming", "spectrum", False)])
def test_stft_kernels_compute_the_windowed_dft(side, window, scaling, periodic):
    frame, n_fft = 16, 16
    kernel = plexus.initializers.STFT(side, window, scaling, periodic)((frame, 1, n_fft // 2 + 1))
    x = torch.randn(frame, dtype=torch.float64)
    win = torch.ones(frame, dtype=torch.float64) if window is None else getattr(
        torch, f"{window}_window")(frame, periodic=periodic, dtype=torch.float64)
    spectrum = torch.fft.rfft(x * win)
    scale = {None: 1.0, "density": torch.sqrt((win * win).sum()), "spectrum": win.abs().sum()}
    expected = (spectrum.real if side == "real" else spectrum.imag) / scale[scaling]
    got = (x.reshape(-1, 1) * kernel[:, 0, :].double()).sum(0)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_stft_errors():
    with pytest.raises(ValueError, match="unknown window 'tukey'"):
        plexus.initializers.STFT(window="tukey")
    with pytest.raises(ValueError, match="one value per frame"):
        plexus.initializers.STFT(window=[1.0, 2.0])((4, 1, 3))


@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer_matches_keras(mode):
    w = torch.randn(4, 6)
    p = plexus.regularizers.OrthogonalRegularizer(factor=0.1, mode=mode)
    k = keras.regularizers.OrthogonalRegularizer(factor=0.1, mode=mode)
    assert_close(p(w), k(w), rtol=1e-5)
    again = plexus.regularizers.deserialize(keras.regularizers.serialize(k))
    assert again.mode == mode and again.factor == pytest.approx(0.1)
    with pytest.raises(ValueError, match="2-D"):
        p(torch.ones(2, 2, 2))


def test_regularizer_and_constraint_serialization_matches_keras():
    R, C = plexus.regularizers, plexus.constraints
    for mod, kmod, p, k in [
            (R, keras.regularizers, R.L1L2(0.1, 0.2), keras.regularizers.L1L2(0.1, 0.2)),
            (R, keras.regularizers, R.l2(0.3), keras.regularizers.l2(0.3)),
            (C, keras.constraints, C.MinMaxNorm(0.5, 2.0), keras.constraints.MinMaxNorm(0.5, 2.0)),
            (C, keras.constraints, C.NonNeg(), keras.constraints.NonNeg())]:
        ser = mod.serialize(p)
        assert ser == kmod.serialize(k)
        assert mod.deserialize(ser).get_config() == p.get_config()
    assert plexus.regularizers.l1_l2 is plexus.regularizers.L1L2
    with pytest.raises(ValueError, match="non-negative"):
        plexus.regularizers.L2(-1.0)
    with pytest.raises(ValueError, match="Unknown constraint class"):
        plexus.constraints.deserialize({"class_name": "Nope", "config": {}})
