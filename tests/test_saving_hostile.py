"""Hostile and broken files: each is refused with a clear LoadError and no side effect."""
import base64
import json
import os
import pickle
import sys
import zipfile

import h5py
import numpy as np
import pytest

import plexus
from plexus import layers as L
from plexus.saving import LoadError


def _model():
    inp = plexus.Input((3,), name="inp")
    return plexus.Model(inp, L.Dense(2, name="out")(L.Dense(4, name="hidden")(inp)), name="m")


def _members(model):
    path = os.path.join(_tmpdir[0], "src.keras")
    model.save(path)
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


_tmpdir = [None]


@pytest.fixture(autouse=True)
def _tmp(tmp_path):
    _tmpdir[0] = str(tmp_path)


def _write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _with_config(tmp_path, edit):
    members = _members(_model())
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    return _write_zip(tmp_path / "evil.keras", members)


def _layer(config, name):
    return [l for l in config["config"]["layers"] if l["name"] == name][0]


def test_zip_slip_member_names_are_never_paths(tmp_path):
    members = _members(_model())
    target = tmp_path / "outside" / "pwned.txt"
    members["../outside/pwned.txt"] = b"owned"
    members[str(target)] = b"owned"
    members["assets/../../outside/pwned.txt"] = b"owned"
    (tmp_path / "inner").mkdir()
    path = _write_zip(tmp_path / "inner" / "slip.keras", members)
    cwd = os.getcwd()
    os.chdir(tmp_path / "inner")
    try:
        model = plexus.models.load_model(path)  # extra members are ignored, never extracted
    finally:
        os.chdir(cwd)
    assert isinstance(model, plexus.Model)
    assert not target.exists() and not (tmp_path / "outside").exists()


def test_absurd_weight_shape_in_config_is_refused_before_allocation(tmp_path):
    def edit(config):
        _layer(config, "hidden")["config"]["units"] = 10 ** 12
    path = _with_config(tmp_path, edit)
    with pytest.raises(LoadError, match="MAX_WEIGHT_ELEMENTS"):
        plexus.models.load_model(path)


def test_absurd_total_size_is_refused(tmp_path, monkeypatch):
    from plexus.saving import limits
    monkeypatch.setattr(limits, "MAX_TOTAL_ELEMENTS", 10)
    path = tmp_path / "m.keras"
    _model().save(path)
    with pytest.raises(LoadError, match="MAX_TOTAL_ELEMENTS"):
        plexus.models.load_model(path)


def test_lambda_bytecode_is_refused_in_both_modes(tmp_path):
    code = base64.b64encode(b"\xe3" + b"\x00" * 40).decode()  # marshalled-code lookalike

    def edit(config):
        layer = _layer(config, "out")
        layer["class_name"], layer["module"] = "Lambda", "keras.layers"
        layer["config"] = {"name": "out", "function": {"class_name": "__lambda__", "config": {
            "code": code, "defaults": None, "closure": None}}, "arguments": {}}
    path = _with_config(tmp_path, edit)
    with pytest.raises(LoadError, match="safe_mode=True refuses"):
        plexus.models.load_model(path)
    with pytest.raises(LoadError, match="never unmarshals"):
        plexus.models.load_model(path, safe_mode=False)


def test_unknown_class_name_is_refused(tmp_path):
    def edit(config):
        _layer(config, "hidden")["class_name"] = "TotallyUnknownLayer"
    with pytest.raises(LoadError, match="Unknown class 'TotallyUnknownLayer'"):
        plexus.models.load_model(_with_config(tmp_path, edit))


@pytest.mark.parametrize("module,class_name", [
    ("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
    ("plexus_evil_payload", "Boom"), ("keras.layers", "os.system"),
])
def test_config_naming_modules_or_callables_imports_nothing(tmp_path, module, class_name):
    payload = tmp_path / "plexus_evil_payload.py"
    marker = tmp_path / "imported.txt"
    payload.write_text(f"open({str(marker)!r}, 'w').write('x')\nclass Boom: pass\n")
    sys.path.insert(0, str(tmp_path))

    def edit(config):
        layer = _layer(config, "hidden")
        layer["module"], layer["class_name"], layer["registered_name"] = module, class_name, None
        _layer(config, "out")["config"]["activation"] = {
            "module": module, "class_name": "function", "config": class_name,
            "registered_name": "function"}
    try:
        with pytest.raises(LoadError):
            plexus.models.load_model(_with_config(tmp_path, edit))
    finally:
        sys.path.remove(str(tmp_path))
    assert "plexus_evil_payload" not in sys.modules and not marker.exists()


def test_function_reference_to_os_system_is_refused(tmp_path):
    def edit(config):
        _layer(config, "out")["config"]["activation"] = {
            "module": "os", "class_name": "function", "config": "system",
            "registered_name": "function"}
    with pytest.raises(LoadError, match="Unknown function 'system'"):
        plexus.models.load_model(_with_config(tmp_path, edit))


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(_tmpdir[0], "pickled.txt"),))


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "weights.weights.h5"])
def test_pickles_are_never_unpickled(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(LoadError):
        if "weights" in name:
            _model().load_weights(path)
        else:
            plexus.models.load_model(path)
    members = _members(_model())
    members["config.json"] = pickle.dumps(_Boom())
    with pytest.raises(LoadError, match="not valid JSON"):
        plexus.models.load_model(_write_zip(tmp_path / "p.keras", members))
    assert not (tmp_path / "pickled.txt").exists()


def test_truncated_zip(tmp_path):
    path = tmp_path / "m.keras"
    _model().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match="m.keras"):
        plexus.models.load_model(path)


def test_corrupt_h5_member_and_missing_members(tmp_path):
    members = _members(_model())
    bad = dict(members, **{"model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\x00" * 100})
    with pytest.raises(LoadError, match="not a readable HDF5"):
        plexus.models.load_model(_write_zip(tmp_path / "c.keras", bad))
    for missing in ("config.json", "model.weights.h5"):
        partial = {k: v for k, v in members.items() if k != missing}
        with pytest.raises(LoadError, match=missing):
            plexus.models.load_model(_write_zip(tmp_path / f"no_{missing}.keras", partial))


def test_wrong_format_and_missing_file(tmp_path):
    (tmp_path / "text.keras").write_text("hello")
    with pytest.raises(LoadError, match="neither a .keras archive"):
        plexus.models.load_model(tmp_path / "text.keras")
    with pytest.raises(LoadError, match="No such file"):
        plexus.models.load_model(tmp_path / "absent.keras")
    with pytest.raises(LoadError, match="No such file"):
        _model().load_weights(tmp_path / "absent.weights.h5")
    (tmp_path / "bad.weights.h5").write_bytes(b"garbage")
    with pytest.raises(LoadError, match="bad.weights.h5.*not a readable HDF5"):
        _model().load_weights(tmp_path / "bad.weights.h5")


def test_wrong_weight_shapes_name_file_layer_and_shapes(tmp_path):
    members = _members(_model())
    inp = plexus.Input((3,), name="inp")
    other = plexus.Model(inp, L.Dense(2, name="out")(L.Dense(5, name="hidden")(inp)))
    members["model.weights.h5"] = _members(other)["model.weights.h5"]
    with pytest.raises(LoadError, match=r"evil.keras.*'hidden'.*\(3, 4\).*\(3, 5\)"):
        plexus.models.load_model(_write_zip(tmp_path / "evil.keras", members))


def _weights_file(tmp_path, edit):
    path = tmp_path / "w.weights.h5"
    _model().save_weights(path)
    with h5py.File(path, "a") as f:
        edit(f)
    return path


def test_h5_links_external_and_strings_are_refused(tmp_path):
    def soft(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = h5py.SoftLink("/layers/dense_1/vars/0")
    with pytest.raises(LoadError, match="soft link at /layers/dense/vars/0"):
        _model().load_weights(_weights_file(tmp_path, soft))

    def external(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(LoadError, match="external link at /layers/dense/vars/0"):
        _model().load_weights(_weights_file(tmp_path, external))

    def strings(f):
        del f["layers/dense/vars/1"]
        f["layers/dense/vars/1"] = np.array([b"a", b"b", b"c", b"d"])
    with pytest.raises(LoadError, match="must be numbers"):
        _model().load_weights(_weights_file(tmp_path, strings))


def test_h5_shape_bomb_is_refused_before_reading(tmp_path):
    def bomb(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(10 ** 6, 10 ** 6), dtype="float32",
                         chunks=(1, 1024), compression="gzip")
    with pytest.raises(LoadError, match=r"vars/0 declares 4000000000000 bytes but occupies 0"):
        _model().load_weights(_weights_file(tmp_path, bomb))


def test_hostile_layer_names_and_graphs(tmp_path):
    def traversal(config):
        _layer(config, "hidden")["name"] = "../../etc/passwd"
    with pytest.raises(LoadError, match="Invalid layer name"):
        plexus.models.load_model(_with_config(tmp_path, traversal))

    def cycle(config):
        node = _layer(config, "hidden")["inbound_nodes"][0]
        node["args"][0]["config"]["keras_history"] = ["out", 0, 0]
    with pytest.raises(LoadError, match="cannot be rebuilt"):
        plexus.models.load_model(_with_config(tmp_path, cycle))

    def dangling(config):
        config["config"]["output_layers"] = ["nowhere", 0, 0]
    with pytest.raises(LoadError, match="nowhere"):
        plexus.models.load_model(_with_config(tmp_path, dangling))


def test_absurd_json_is_refused(monkeypatch):
    from plexus.saving import deserialization
    with pytest.raises(LoadError):
        plexus.models.model_from_json("[" * 100000 + "]" * 100000)
    with pytest.raises(LoadError):
        plexus.models.model_from_json('"just a string"')
    monkeypatch.setattr(deserialization, "MAX_INLINE_ARRAY_ELEMENTS", 10)
    big = {"class_name": "__numpy__", "config": {"value": [[0] * 6, [1] * 6]}}
    with pytest.raises(LoadError, match="inline array"):
        plexus.saving.deserialize_keras_object(big)


def test_legacy_h5_weight_names_cannot_escape_their_group(tmp_path):
    path = tmp_path / "w.h5"
    _model().save_weights(path)
    with h5py.File(path, "a") as f:
        f["hidden"].attrs["weight_names"] = np.array([b"/out/out/kernel", b"hidden/bias"])
    with pytest.raises(LoadError, match="absolute"):
        _model().load_weights(path)


def test_oversized_weights_member_is_refused_before_reading(tmp_path):
    members = _members(_model())
    members["model.weights.h5"] = members["model.weights.h5"] + b"\x00" * (65 << 20)
    path = _write_zip(tmp_path / "bomb.keras", members, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 20  # a zip bomb: tiny on disk, huge once inflated
    with pytest.raises(LoadError, match="model.weights.h5.*declares"):
        plexus.models.load_model(path)


def test_keras2_lambda_bytecode_list_is_refused(tmp_path):
    def edit(config):
        layer = _layer(config, "out")
        layer["class_name"], layer["module"] = "Lambda", "keras.layers"
        layer["config"] = {"name": "out", "function": ["4wEAAAAAAAAA", None, None],
                           "function_type": "lambda", "module": "__main__",
                           "output_shape": None, "output_shape_type": "raw", "arguments": {}}
    path = _with_config(tmp_path, edit)
    with pytest.raises(LoadError, match="bytecode"):
        plexus.models.load_model(path)
    loaded = plexus.models.load_model(path, custom_objects={"out": lambda t: t * 2})
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(loaded(x).detach().numpy(),
                               2 * loaded.get_layer("hidden")(x).detach().numpy())


@pytest.mark.parametrize("value", [
    {"module": "keras.layers", "class_name": "TorchModuleWrapper",
     "config": {"module": "gASVAAAAAAAAAAB9lC4="}, "registered_name": None},
    {"class_name": "__bytes__", "config": {"value": "cGlja2xl"}},
    {"class_name": "__tensor__", "config": {"value": [1], "dtype": "float32"}},
    {"class_name": "__numpy__", "config": {"value": ["a"], "dtype": "object"}},
    {"module": "keras.utils", "class_name": "get_file", "config": {}, "registered_name": None},
])
def test_unsafe_serialized_values_are_refused(tmp_path, value):
    def edit(config):
        _layer(config, "out")["config"]["kernel_initializer"] = value
    with pytest.raises(LoadError):
        plexus.models.load_model(_with_config(tmp_path, edit))


def test_h5_plugin_filters_are_refused(tmp_path):
    path = _weights_file(tmp_path, lambda f: None)
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/0"]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((3, 4))
        dcpl.set_filter(32004, h5py.h5z.FLAG_OPTIONAL, ())  # LZ4: a plugin filter
        space = h5py.h5s.create_simple((3, 4))
        h5py.h5d.create(f["layers/dense/vars"].id, b"0", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
    with pytest.raises(LoadError, match="filter"):
        _model().load_weights(path)


def test_recorded_call_with_unknown_argument_is_refused(tmp_path):
    def edit(config):
        _layer(config, "out")["inbound_nodes"][0]["kwargs"]["cmd"] = "rm -rf /"
    with pytest.raises(LoadError, match="'cmd'"):
        plexus.models.load_model(_with_config(tmp_path, edit))


def test_randomly_mangled_configs_fail_only_with_load_errors(tmp_path):
    """Replace random parts of a valid config with junk: every failure must be a LoadError."""
    import random
    members = _members(_model())
    base = json.loads(members["config.json"])

    def paths(o, p=()):
        yield p
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ()
        for k, v in items:
            yield from paths(v, p + (k,))

    junk = [None, -1, 10 ** 15, "x", "../x", [], {}, [None], {"class_name": "x"}, 1.5, True,
            {"class_name": "__keras_tensor__", "config": {}}, [[[]]]]
    all_paths = list(paths(base))[1:]
    rng = random.Random(0)
    for trial in range(40):
        config = json.loads(json.dumps(base))
        where = rng.choice(all_paths)
        node = config
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = rng.choice(junk)
        path = _write_zip(tmp_path / f"m{trial}.keras",
                          dict(members, **{"config.json": json.dumps(config).encode()}))
        try:
            plexus.models.load_model(path)
        except LoadError:
            pass
