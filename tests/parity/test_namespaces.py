"""Every public Keras name exists in plexus, namespace by namespace, except the names listed
here with the reason they are left out."""
import keras
import pytest

import plexus

NAMESPACES = {
    "layers": (keras.layers, plexus.layers),
}

# Names left out on purpose: they exist to bridge to TensorFlow or JAX.
OMITTED = {
    "layers.FlaxLayer": "wraps a Flax module; needs JAX",
    "layers.JaxLayer": "wraps a JAX function; needs JAX",
    "layers.TFSMLayer": "loads a TensorFlow SavedModel; needs TensorFlow",
}

# Names plexus does not have yet. An entry that exists in plexus fails the test below, so this
# list only shrinks.
NOT_YET = {f"layers.{n}" for n in (
    "AugMix", "AutoContrast", "CategoryEncoding", "CenterCrop",
    "ContrastLimitedAdaptiveHistogramEqualization", "CutMix", "Discretization", "Equalization",
    "HashedCrossing", "Hashing", "InputSpec", "IntegerLookup", "MaxNumBoundingBoxes",
    "MelSpectrogram", "MixUp", "Normalization", "RandAugment", "RandomBrightness",
    "RandomColorDegeneration", "RandomColorJitter", "RandomContrast", "RandomCrop",
    "RandomElasticTransform", "RandomErasing", "RandomFlip", "RandomGaussianBlur",
    "RandomGrayscale", "RandomHue", "RandomInvert", "RandomPerspective", "RandomPosterization",
    "RandomRotation", "RandomSaturation", "RandomSharpness", "RandomShear", "RandomTranslation",
    "RandomZoom", "Resizing", "STFTSpectrogram", "Solarization", "StringLookup",
    "TextVectorization")}


def _public(module):
    return {n for n in dir(module) if not n.startswith("_")}


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_every_keras_name_is_in_plexus(namespace):
    k_mod, p_mod = NAMESPACES[namespace]
    missing = {f"{namespace}.{n}" for n in _public(k_mod) - _public(p_mod)}
    assert sorted(missing - set(OMITTED) - NOT_YET) == []


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_left_out_names_are_really_missing(namespace):
    k_mod, p_mod = NAMESPACES[namespace]
    listed = {n.split(".", 1)[1] for n in set(OMITTED) | NOT_YET
              if n.split(".", 1)[0] == namespace}
    assert sorted(listed - _public(k_mod)) == []  # still Keras names
    assert sorted(listed & _public(p_mod)) == []  # present now: remove the entry


def test_new_layers_load_by_name():
    from plexus.saving.registry import builtin_table
    table = builtin_table("layers")
    for name in ("ConvLSTM2D", "EinsumDense", "GroupQueryAttention", "GroupedQueryAttention",
                 "RMSNormalization", "SpectralNormalization", "AdaptiveMaxPooling3D",
                 "Pipeline", "ReversibleEmbedding", "TorchModuleWrapper", "Wrapper"):
        assert table[name] is getattr(plexus.layers, name)
