"""Helpers of the application parity tests: building the same application in Keras and
plexus, comparing architectures, giving random networks a signal, comparing predictions."""
import hashlib
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import plexus  # noqa: E402
from plexus import applications  # noqa: E402
from tests.parity.oracle import assert_close  # noqa: E402

# Applications that take pixels in 0..255 and scale or normalize them themselves.
SELF_PREPROCESSING = ("EfficientNet", "ConvNeXt", "MobileNetV3")


def fresh():
    keras.backend.clear_session()
    plexus.clear_session()


def _keras_nasnet_mobile(input_shape=None, include_top=True, weights=None, **kwargs):
    """Keras's NASNetMobile architecture. `keras.applications.NASNetMobile` refuses the torch
    backend (its published weights give wrong ImageNet predictions there), so the tests build
    the same network through Keras's own NASNet builder with NASNetMobile's arguments."""
    from keras.src.applications import nasnet
    if not include_top and input_shape is None:
        input_shape = (224, 224, 3)
    return nasnet.NASNet(input_shape, penultimate_filters=1056, num_blocks=4,
                         stem_block_filters=32, skip_reduction=False, filter_multiplier=2,
                         include_top=include_top, weights=weights, default_size=224,
                         name=kwargs.pop("name", "nasnet_mobile"), **kwargs)


def keras_application(name):
    if name == "NASNetMobile":
        return _keras_nasnet_mobile
    return getattr(keras.applications, name)


def pair(name, **kwargs):
    """The same application built by Keras and by plexus, from fresh name counters (and
    seeded: Keras's random weights, which the predictions are compared on, do not depend on
    what ran before)."""
    fresh()
    keras.utils.set_random_seed(0)
    km = keras_application(name)(weights=None, **kwargs)
    fresh()
    pm = getattr(applications, name)(weights=None, **kwargs)
    return km, pm


def assert_same_architecture(km, pm):
    assert pm.name == km.name
    assert [l.name for l in pm.layers] == [l.name for l in km.layers]
    assert [type(l).__name__ for l in pm.layers] == [type(l).__name__ for l in km.layers]
    assert pm.count_params() == km.count_params()
    assert [w.shape for w in pm.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    assert tuple(pm.output_shape) == tuple(km.output_shape)


def _plexus_shapes(layer):
    return [tuple(w.keras_shape) for _, w in layer._weight_entries()]


def _keras_shapes(layer):
    return [tuple(v.shape) for v in layer.weights]


def architecture_summary(model):
    """`(parameter count, number of layers, digest)` of a Keras or plexus model; the digest
    covers every layer's name, type and weight shapes (in Keras's layout) and the output shape.
    Works on plexus models built on the meta device (no weight values are read)."""
    shapes = _plexus_shapes if isinstance(model, plexus.Model) else _keras_shapes
    rows = [(l.name, type(l).__name__, shapes(l)) for l in model.layers]
    rows.append(tuple(model.output_shape))
    count = sum(int(np.prod(s)) for _, _, layer_shapes in rows[:-1] for s in layer_shapes)
    return count, len(model.layers), hashlib.sha1(repr(rows).encode()).hexdigest()[:16]


def calibrate(model, rng, input_shape, scale=1.0):
    """Give a random network a signal that depends on its input: random BatchNormalization
    scales and offsets with moving statistics taken from one batch of random images (with
    freshly initialized statistics, deep random networks give nearly the same output for any
    input), random ConvNeXt layer scales (initially 1e-6, which hides the residual branches),
    and Normalization statistics adapted to the images (EfficientNet's stem)."""
    images = rng.uniform(0, scale, (4,) + tuple(input_shape)).astype("float32")
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "LayerScale":
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32")
                               for w in layer.get_weights()])
        elif kind == "Normalization" and layer.weights:
            layer.adapt(rng.uniform(0, scale / 255, (8,) + tuple(input_shape)).astype(
                "float32"))
    bns = [l for l in model.layers if type(l).__name__ == "BatchNormalization"]
    for layer in bns:
        ws = layer.get_weights()
        shape = ws[0].shape
        if layer.scale:
            ws[0] = rng.uniform(0.5, 1.5, shape).astype("float32")
        if layer.center:
            ws[1 if layer.scale else 0] = rng.normal(0.0, 0.1, shape).astype("float32")
        layer.set_weights(ws)
        layer.momentum = 0.0  # the next training-mode call sets the moving statistics
    if not bns:
        return
    model(images, training=True)
    for layer in bns:
        # Channels that hardly vary over the batch would divide by ~sqrt(epsilon) and amplify
        # rounding differences; floor their variance at the layer's median.
        ws = layer.get_weights()
        floor = float(np.median(ws[-1])) or 1.0
        ws[-1] = np.maximum(ws[-1], floor)
        layer.set_weights(ws)


def assert_same_predictions(km, pm, input_shape, rng, copy=True, scale=1.0):
    """Keras's weights copied into plexus give Keras's predictions (and before the copy,
    plexus's own random weights do not: the comparison can fail)."""
    x = rng.uniform(0, scale, (2,) + tuple(input_shape)).astype("float32")
    expected = km.predict(x, verbose=0)
    spread = float(np.abs(expected).max())
    # The outputs must depend on the input, or the comparison would prove little.
    assert float(np.abs(expected[0] - expected[1]).max()) > 1e-2 * spread > 0
    if copy:
        assert not np.allclose(pm(x).detach().numpy(), expected, rtol=1e-2, atol=1e-2 * spread)
        pm.set_weights(km.get_weights())
    assert_close(pm(x), expected, rtol=1e-4, atol=1e-4 * spread)


def pixel_scale(name):
    """The input range the tests feed: 0..255 where the model scales pixels itself."""
    return 255.0 if name.startswith(SELF_PREPROCESSING) else 1.0


def write_legacy_h5(keras_model, path):
    """A Keras 2 style `.h5` weights file, the format of the published ImageNet weights."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_model)
