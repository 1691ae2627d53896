"""Every public name of Keras's namespaces exists in plexus, namespace by namespace, except the
names listed here with the reason they are left out.

To cover another namespace, add its dotted path (relative to `keras` / `plexus`) to
NAMESPACES; names plexus leaves out on purpose go in LEFT_OUT as "namespace.Name": reason (only
names that need TensorFlow or JAX); names not built yet go in NOT_YET, which only shrinks.
"""
import importlib

import keras  # noqa: F401  (Keras's namespaces are imported by path below)
import pytest

import plexus

NAMESPACES = [
    "activations",
    "applications",
    *(f"applications.{m}" for m in (
        "convnext", "densenet", "efficientnet", "efficientnet_v2", "imagenet_utils",
        "inception_resnet_v2", "inception_v3", "mobilenet", "mobilenet_v2", "mobilenet_v3",
        "nasnet", "resnet", "resnet50", "resnet_v2", "vgg16", "vgg19", "xception")),
    "backend",
    "callbacks",
    "config",
    "constraints",
    "datasets",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "optimizers",
    "optimizers.schedules",
    "preprocessing",
    "preprocessing.image",
    "preprocessing.sequence",
    "random",
    "regularizers",
    "tree",
]

# Names left out on purpose: they exist to bridge to TensorFlow or JAX.
LEFT_OUT = {
    "callbacks.OrbaxCheckpoint": "saves through Orbax, a JAX library",
    "layers.FlaxLayer": "wraps a Flax module; needs JAX",
    "layers.JaxLayer": "wraps a JAX function; needs JAX",
    "layers.TFSMLayer": "loads a TensorFlow SavedModel; needs TensorFlow",
}

# Names plexus does not have yet. An entry that exists in plexus fails the test below, so this
# list only shrinks.
NOT_YET = set()


def _public(root, path):
    return {n for n in dir(importlib.import_module(f"{root}.{path}")) if not n.startswith("_")}


def _listed(path):
    return {n.rsplit(".", 1)[1] for n in set(LEFT_OUT) | NOT_YET if n.rsplit(".", 1)[0] == path}


@pytest.mark.parametrize("path", NAMESPACES)
def test_namespace_has_every_keras_name(path):
    missing = sorted(_public("keras", path) - _public("plexus", path) - _listed(path))
    assert not missing, f"plexus.{path} lacks Keras's {missing}"


@pytest.mark.parametrize("path", NAMESPACES)
def test_left_out_names_are_really_missing(path):
    listed = _listed(path)
    assert sorted(listed - _public("keras", path)) == []  # still Keras names
    assert sorted(listed & _public("plexus", path)) == []  # present now: remove the entry


def test_left_out_names_a_known_namespace():
    for key in set(LEFT_OUT) | NOT_YET:
        assert key.rsplit(".", 1)[0] in NAMESPACES, f"{key}: add its namespace to NAMESPACES"


def test_new_layers_load_by_name():
    from plexus.saving.registry import builtin_table
    table = builtin_table("layers")
    for name in ("ConvLSTM2D", "EinsumDense", "GroupQueryAttention", "GroupedQueryAttention",
                 "RMSNormalization", "SpectralNormalization", "AdaptiveMaxPooling3D",
                 "Pipeline", "ReversibleEmbedding", "TorchModuleWrapper", "Wrapper", "AugMix",
                 "ContrastLimitedAdaptiveHistogramEqualization", "MaxNumBoundingBoxes",
                 "RandomElasticTransform", "RandomPerspective"):
        assert table[name] is getattr(plexus.layers, name)
