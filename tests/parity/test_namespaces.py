"""Every public name of Keras's namespaces exists in plexus, namespace by namespace, except the
names listed here with the reason they are left out.

To cover another namespace, add its dotted path (relative to `keras` / `plexus`; "" is the
top level, whose names are written ".Name") to NAMESPACES; names plexus leaves out on purpose
go in LEFT_OUT as "namespace.Name": reason (only names that need TensorFlow or JAX); names not
built yet go in NOT_YET, which only shrinks; NOT_COMPARED names the few that are not API.
"""
import importlib

import keras  # noqa: F401  (Keras's namespaces are imported by path below)
import pytest

import plexus

NAMESPACES = [
    "",  # the top level: keras.Model, keras.Input, keras.remat, ...
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
    *(f"datasets.{m}" for m in (
        "boston_housing", "california_housing", "cifar10", "cifar100", "fashion_mnist", "imdb",
        "mnist", "reuters")),
    "distillation",
    "distribution",
    "dtype_policies",
    "export",
    "initializers",
    "layers",
    "legacy",
    "legacy.saving",
    "losses",
    "metrics",
    "mixed_precision",
    "models",
    "ops",
    "ops.image",
    "ops.linalg",
    "ops.nn",
    "ops.numpy",
    "optimizers",
    "optimizers.legacy",
    "optimizers.schedules",
    "preprocessing",
    "preprocessing.image",
    "preprocessing.sequence",
    "quantizers",
    "random",
    "regularizers",
    "saving",
    "tree",
    "utils",
    "utils.bounding_boxes",
    "utils.legacy",
    "visualization",
    "wrappers",
]

# Top-level names that are not API: left out of the comparison in both directions.
NOT_COMPARED = {
    ".src": "keras.src is Keras's implementation package (dir(keras) lists it because it is "
            "imported), not a name of the API",
}

# Names left out on purpose: they exist to bridge to TensorFlow or JAX.
LEFT_OUT = {
    ".export": "keras.export holds only ExportArchive (below)",
    "callbacks.OrbaxCheckpoint": "saves through Orbax, a JAX library",
    "export.ExportArchive": "writes a TensorFlow SavedModel; needs TensorFlow",
    "layers.FlaxLayer": "wraps a Flax module; needs JAX",
    "layers.JaxLayer": "wraps a JAX function; needs JAX",
    "layers.TFSMLayer": "loads a TensorFlow SavedModel; needs TensorFlow",
}

# Names plexus does not have yet. An entry that exists in plexus fails the test below, so this
# list only shrinks. A namespace whose every name is listed here need not exist in plexus.
NOT_YET = {
    # top level: graph functions and operations as user classes, device and name scopes,
    # remat scopes (remat itself exists), stateless and symbolic scopes
    *(f".{n}" for n in ("Function", "Operation", "RematScope", "StatelessScope",
                        "SymbolicScope", "device", "name_scope", "wrappers")),
    # quantizing a model: the quantized dtype policies and the quantization configs
    *(f"dtype_policies.{n}" for n in (
        "AWQDTypePolicy", "DTypePolicyMap", "GPTQDTypePolicy", "Int4DTypePolicy",
        "QuantizedDTypePolicy", "QuantizedFloat8DTypePolicy")),
    *(f"quantizers.{n}" for n in (
        "AWQConfig", "Float8QuantizationConfig", "GPTQConfig", "Int4QuantizationConfig",
        "Int8QuantizationConfig", "QuantizationConfig")),
    # scikit-learn estimators wrapping a model (they need scikit-learn)
    *(f"wrappers.{n}" for n in ("SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer")),
}


def _public(root, path):
    try:
        module = importlib.import_module(f"{root}.{path}" if path else root)
    except ModuleNotFoundError as e:
        if root == "plexus" and e.name == f"plexus.{path}":
            return set()  # a namespace plexus lacks: its names must all be listed
        raise
    return {n for n in dir(module) if not n.startswith("_")}


def _listed(path):
    return {n.rsplit(".", 1)[1] for n in set(LEFT_OUT) | NOT_YET if n.rsplit(".", 1)[0] == path}


@pytest.mark.parametrize("path", NAMESPACES)
def test_namespace_has_every_keras_name(path):
    skipped = {n.rsplit(".", 1)[1] for n in NOT_COMPARED if n.rsplit(".", 1)[0] == path}
    missing = sorted(_public("keras", path) - _public("plexus", path) - _listed(path) - skipped)
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
