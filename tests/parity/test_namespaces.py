"""Every public name of Keras's namespaces exists in plexus, or is listed in LEFT_OUT with why.

To cover another namespace, add its dotted path (relative to `keras` / `plexus`) to
NAMESPACES; names plexus leaves out on purpose go in LEFT_OUT as "namespace.Name": reason.
Only names that need TensorFlow or JAX may be left out.
"""
import importlib

import keras
import pytest

NAMESPACES = [
    "metrics",
    "losses",
    "optimizers",
    "optimizers.schedules",
    "callbacks",
    "activations",
    "initializers",
    "regularizers",
    "constraints",
]

LEFT_OUT = {
    "callbacks.OrbaxCheckpoint": "saves through Orbax, a JAX library",
}


def _public(module):
    return {n for n in dir(module) if not n.startswith("_")}


def _module(root, path):
    return importlib.import_module(f"{root}.{path}")


@pytest.mark.parametrize("path", NAMESPACES)
def test_namespace_has_every_keras_name(path):
    keras_names = _public(_module("keras", path))
    plexus_names = _public(_module("plexus", path))
    left_out = {k.rsplit(".", 1)[1] for k in LEFT_OUT if k.rsplit(".", 1)[0] == path}
    missing = sorted(keras_names - plexus_names - left_out)
    assert not missing, f"plexus.{path} lacks Keras's {missing}"
    stale = sorted(left_out & plexus_names)
    assert not stale, f"LEFT_OUT lists {stale}, which plexus.{path} now has"
    unknown = sorted(left_out - keras_names)
    assert not unknown, f"LEFT_OUT lists {unknown}, which keras.{path} does not have"


def test_left_out_names_a_known_namespace():
    for key in LEFT_OUT:
        assert key.rsplit(".", 1)[0] in NAMESPACES, f"{key}: add its namespace to NAMESPACES"
