"""Helpers to compare plexus with Keras (torch backend): same weights in, same numbers out."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def to_numpy(x):
    if isinstance(x, (list, tuple)):
        return [to_numpy(v) for v in x]
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def assert_close(a, b, rtol=1e-5, atol=1e-5):
    a, b = to_numpy(a), to_numpy(b)
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"structure differs: {len(a)} vs {len(b)}"
        for x, y in zip(a, b):
            assert_close(x, y, rtol, atol)
        return
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def layer_parity(plexus_layer, keras_layer, x, rtol=1e-5, atol=1e-5, call_kwargs=None):
    """Build both layers on `x`, copy plexus's weights into Keras, compare outputs.

    Returns the two outputs. Weight shapes and order must already agree (Keras layout).
    """
    call_kwargs = call_kwargs or {}
    out_k = keras_layer(x, **call_kwargs)  # builds the Keras layer
    out_p = plexus_layer(x, **call_kwargs)  # builds the plexus layer
    wp = plexus_layer.get_weights()
    wk = keras_layer.get_weights()
    assert [w.shape for w in wp] == [w.shape for w in wk], (
        f"weight shapes differ: {[w.shape for w in wp]} vs {[w.shape for w in wk]}")
    keras_layer.set_weights(wp)
    out_k = keras_layer(x, **call_kwargs)
    assert_close(out_p, out_k, rtol, atol)
    return out_p, out_k
