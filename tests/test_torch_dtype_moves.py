"""dtype moves (`half`, `bfloat16`, `double`, `to(dtype)`, back with `float`) give a model that
predicts and trains in that dtype, with every layer computing in it; integer ids stay
integers."""
import numpy as np
import pytest
import torch

import plexus as keras
from plexus import layers

MOVES = {"half": lambda m: m.half(), "bfloat16": lambda m: m.bfloat16(),
         "double": lambda m: m.double(), "to_float64": lambda m: m.to(torch.float64),
         "double_then_float": lambda m: m.double().float()}
EXPECTED = {"half": torch.float16, "bfloat16": torch.bfloat16, "double": torch.float64,
            "to_float64": torch.float64, "double_then_float": torch.float32}


@pytest.mark.parametrize("move", sorted(MOVES))
def test_moved_model_predicts_and_trains_in_its_dtype(move):
    img = keras.Input((8, 8, 3))
    ids = keras.Input((5,), dtype="int32")
    h = layers.BatchNormalization()(layers.Conv2D(4, 3)(img))
    h = layers.GlobalAveragePooling2D()(h)
    e = layers.GlobalAveragePooling1D()(layers.Embedding(20, 3)(ids))
    out = layers.Dense(2)(layers.Dropout(0.1)(layers.concatenate([h, e])))
    model = keras.Model([img, ids], out)
    model.compile("adam", "mse")
    MOVES[move](model)
    dtype = EXPECTED[move]
    assert {p.dtype for p in model.parameters()} == {dtype}
    assert {b.dtype for b in model.buffers()} == {dtype}
    rng = np.random.default_rng(0)
    x = [rng.random((8, 8, 8, 3)).astype("float32"), rng.integers(0, 20, (8, 5)).astype("int32")]
    y = rng.random((8, 2)).astype("float32")
    pred = model.predict(x, verbose=0)
    if dtype is not torch.bfloat16:  # (NumPy has no bfloat16)
        assert pred.dtype == torch.empty(0, dtype=dtype).numpy().dtype
    assert np.isfinite(np.asarray(pred, dtype="float32")).all()
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights())]
    assert sum(changed) >= 6  # kernels, biases, BN's gamma/beta and statistics, embeddings
    assert {p.dtype for p in model.parameters()} == {dtype}
