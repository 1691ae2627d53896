"""Graph structure against Keras: the same code gives the same layer order, names, shapes,
parameter counts and outputs (on copied weights)."""
import keras
import numpy as np
import pytest

import plexus
from tests.parity.oracle import assert_close


def ticket_like(lib):
    title = lib.Input(shape=(None,), name="title")
    body = lib.Input(shape=(None,), name="body")
    tags = lib.Input(shape=(12,), name="tags")
    t = lib.layers.Embedding(50, 8)(title)
    b = lib.layers.Embedding(50, 8)(body)
    t = lib.layers.GlobalAveragePooling1D()(t) if hasattr(lib.layers, "GlobalAveragePooling1D") else t
    b = lib.layers.GlobalAveragePooling1D()(b)
    x = lib.layers.concatenate([t, b, tags])
    p = lib.layers.Dense(1, activation="sigmoid", name="priority")(x)
    d = lib.layers.Dense(4, activation="softmax", name="department")(x)
    return lib.Model(inputs=[title, body, tags], outputs=[p, d])


def diamond(lib):
    inp = lib.Input(shape=(6,), name="x")
    a = lib.layers.Dense(5, activation="relu", name="a")(inp)
    b = lib.layers.Dense(5, activation="tanh", name="b")(inp)
    c = lib.layers.Dense(5, name="c")(a)
    s = lib.layers.add([c, b])
    m = lib.layers.multiply([s, a])
    out = lib.layers.Dense(2, name="out")(lib.layers.concatenate([m, inp]))
    return lib.Model(inp, out)


def shared(lib):
    d = lib.layers.Dense(3, name="shared")
    a = lib.Input(shape=(4,), name="left")
    b = lib.Input(shape=(4,), name="right")
    x = lib.layers.subtract([d(a), d(b)])
    y = lib.layers.maximum([d(a), x])
    return lib.Model([a, b], lib.layers.Dense(1, name="head")(y))


def nested(lib):
    inner_in = lib.Input(shape=(4,), name="inner_in")
    inner = lib.Model(inner_in, lib.layers.Dense(3, name="inner_dense")(inner_in), name="inner")
    a = lib.Input(shape=(4,), name="a")
    b = lib.Input(shape=(4,), name="b")
    merged = lib.layers.average([inner(a), inner(b)])
    return lib.Model([a, b], lib.layers.Dense(2, name="top")(merged))


def with_tensor_ops(lib):
    """Python operators on symbolic tensors (MobileNetV3's hard sigmoid, a residual `+`):
    graph operations, not layers, so `model.layers` leaves them out."""
    inp = lib.Input(shape=(6,), name="x")
    h = lib.layers.Dense(6, name="h")(inp)
    gate = lib.layers.ReLU(6.0)(h + 3.0) * (1.0 / 6.0)
    y = lib.layers.Multiply(name="gated")([h, gate])
    return lib.Model(inp, lib.layers.Dense(2, name="out")(y + inp))


BUILDERS = [ticket_like, diamond, shared, nested, with_tensor_ops]


def sample_inputs(model):
    out = []
    for t in model.inputs:
        shape = tuple(3 if d is None else d for d in t.shape)
        if len(shape) == 2 and t.shape[1] is None:
            out.append(np.random.randint(1, 50, size=shape))
        else:
            out.append(np.random.rand(*shape).astype("float32"))
    return out


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_structure_and_outputs_match_keras(builder):
    keras.backend.clear_session()
    plexus.clear_session()
    km = builder(keras)
    pm = builder(plexus)
    assert [l.name for l in pm.layers] == [l.name for l in km.layers]
    assert [type(l).__name__ for l in pm.layers] == [type(l).__name__ for l in km.layers]
    assert type(pm).__name__ == type(km).__name__
    assert pm.count_params() == km.count_params()
    assert [t.shape for t in pm.outputs] == [tuple(t.shape) for t in km.outputs]
    assert pm.output_names == km.output_names
    assert [w.shape for w in pm.get_weights()] == [w.shape for w in km.get_weights()]
    km.set_weights(pm.get_weights())
    x = sample_inputs(pm)
    x = x[0] if len(x) == 1 else x
    assert_close(pm.predict(x, verbose=0), km.predict(x, verbose=0))
