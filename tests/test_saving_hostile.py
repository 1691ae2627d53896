"""Hostile and broken files: each is refused with a clear LoadError and no side effect."""
import base64
import json
import os
import pickle
import re
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


# ------------------------------------------------------------------ links, storage, encodings
def test_external_link_above_the_weights_is_refused_naming_its_path(tmp_path):
    path = tmp_path / "ext.weights.h5"
    with h5py.File(path, "w") as f:
        f["model_weights"] = h5py.ExternalLink(str(tmp_path / "absent.h5"), "/x")
    with pytest.raises(LoadError, match="external link at /model_weights"):
        _model().load_weights(path)


def test_virtual_and_external_storage_are_refused_even_where_nothing_reads(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(4, "float32")
    layout = h5py.VirtualLayout(shape=(4,), dtype="float32")
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(4,))
    with pytest.raises(LoadError, match="/junk/vds stores its data outside the file"):
        _model().load_weights(_weights_file(tmp_path, lambda f: f.create_virtual_dataset(
            "junk/vds", layout)))
    (tmp_path / "raw.bin").write_bytes(b"\x00" * 16)
    with pytest.raises(LoadError, match="/junk/ext stores its data outside the file"):
        _model().load_weights(_weights_file(tmp_path, lambda f: f.create_dataset(
            "junk/ext", shape=(4,), dtype="float32", external=[(str(tmp_path / "raw.bin"), 0, 16)])))


def test_hard_link_loops_are_walked_once(tmp_path):
    def loop(f):
        f["layers/dense/again"] = f["layers"]  # a group hard-linked inside itself
    model = _model()
    model.load_weights(_weights_file(tmp_path, loop))  # loads; the scan terminates


def _rewrite(f, path, convert):
    value = f[path][()]
    del f[path]
    f.create_dataset(path, data=convert(value))


def test_big_endian_weights_load_with_their_values(tmp_path):
    source = _model()
    path = tmp_path / "be.weights.h5"
    source.save_weights(path)
    with h5py.File(path, "a") as f:
        for name in ("layers/dense_1/vars/0", "layers/dense_1/vars/1"):
            _rewrite(f, name, lambda v: v.astype(">f4"))
        _rewrite(f, "layers/dense/vars/0", lambda v: v.astype(">f8"))
    target = _model()
    target.load_weights(path)
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)
    legacy = tmp_path / "be.h5"
    source.save_weights(legacy)
    with h5py.File(legacy, "a") as f:
        _rewrite(f, "out/out/kernel", lambda v: v.astype(">f4"))
    target = _model()
    target.load_weights(legacy)
    np.testing.assert_array_equal(source.get_weights()[2], target.get_weights()[2])


def test_gzip_weights_load_and_bombs_beyond_any_real_ratio_are_refused(tmp_path, monkeypatch):
    source = _model()
    path = tmp_path / "gz.weights.h5"
    source.save_weights(path)
    with h5py.File(path, "a") as f:
        value = f["layers/dense/vars/0"][()]
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", data=value, compression="gzip", chunks=(3, 4))
    target = _model()
    target.load_weights(path)
    np.testing.assert_array_equal(source.get_weights()[0], target.get_weights()[0])
    with h5py.File(path, "a") as f:  # 48 bytes in one compressed chunk of 4 MiB
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", data=value, maxshape=(None, None),
                         chunks=(1024, 1024), compression="gzip")
    with pytest.raises(LoadError, match="vars/0 holds 48 bytes in chunks of 4194304"):
        _model().load_weights(path)
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", data=value, compression="gzip", chunks=(3, 4))
    from plexus.saving import h5 as h5util
    from plexus.saving import limits
    monkeypatch.setattr(limits, "MAX_COMPRESSION_RATIO", 0)
    monkeypatch.setattr(h5util, "_SLACK_BYTES", 0)
    with pytest.raises(LoadError, match="vars/0 declares 48 bytes but occupies"):
        _model().load_weights(path)


# ------------------------------------------------------------------ all or nothing
def _compiled(seed):
    import torch
    torch.manual_seed(seed)
    model = _model()
    model.compile("adam", "mse")
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)
    return model


def test_load_weights_with_bad_optimizer_state_changes_nothing(tmp_path):
    path = tmp_path / "w.weights.h5"
    _compiled(1).save_weights(path)
    with h5py.File(path, "a") as f:
        del f["optimizer/vars/3"]  # a slot of the wrong shape, after the (good) weights
        f["optimizer/vars/3"] = np.zeros((7, 7), "float32")
    target = _compiled(2)
    before = target.get_weights()
    slots = [v.detach().clone() for v in target.optimizer.variables]
    with pytest.raises(LoadError, match=r"optimizer entry 3 has shape \(7, 7\)"):
        target.load_weights(path)
    for a, b in zip(before, target.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(slots, target.optimizer.variables):
        assert torch_equal(a, b)


def torch_equal(a, b):
    import torch
    return bool(torch.equal(a, b))


def test_load_weights_restores_optimizer_state_as_keras_does(tmp_path):
    source = _compiled(1)
    source.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5") as f:
        assert "optimizer/vars/0" in f
    target = _compiled(2)
    target.load_weights(tmp_path / "w.weights.h5")
    assert target.optimizer.iterations == source.optimizer.iterations
    for a, b in zip(source.optimizer.variables, target.optimizer.variables):
        assert torch_equal(a, b)


# ------------------------------------------------------------------ errors of the right kind
def _keras2_lambda(config):
    layer = _layer(config, "out")
    layer["class_name"], layer["module"] = "Lambda", "keras.layers"
    layer["config"] = {"name": "out", "trainable": True, "dtype": "float32",
                       "function": ["4wEAAAAAAAAAAAAAAAEAAAAC", None, None],
                       "function_type": "lambda", "module": "__main__",
                       "output_shape": [4], "output_shape_type": "raw",
                       "output_shape_module": None, "arguments": {"k": 3.0}}


def test_keras2_lambda_config_loads_with_the_function_from_custom_objects(tmp_path):
    path = _with_config(tmp_path, _keras2_lambda)
    loaded = plexus.models.load_model(path, custom_objects={"out": lambda t, k: t * k})
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(loaded(x).detach().numpy(),
                               3 * loaded.get_layer("hidden")(x).detach().numpy())

    def by_name(config):
        _keras2_lambda(config)
        cfg = _layer(config, "out")["config"]
        cfg["function"], cfg["function_type"] = "triple", "function"
    path = _with_config(tmp_path, by_name)
    with pytest.raises(LoadError, match="custom_objects=.*'triple'"):
        plexus.models.load_model(path)
    loaded = plexus.models.load_model(path, custom_objects={"triple": lambda t, k: t * k})
    assert tuple(loaded(x).shape) == (1, 4)


def _deep(n, leaf="leaf"):
    for _ in range(n):
        leaf = {"a": [leaf]}
    return leaf


def test_deep_configs_are_load_errors_naming_the_member(tmp_path):
    source = _compiled(0)
    source.save(tmp_path / "c.keras")
    with zipfile.ZipFile(tmp_path / "c.keras") as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    config["compile_config"]["loss"] = _deep(400)  # fine for json, too deep to deserialize
    members["config.json"] = json.dumps(config).encode()
    with pytest.raises(LoadError, match=r"deep.keras' \(config.json\) is nested more than"):
        plexus.models.load_model(_write_zip(tmp_path / "deep.keras", members))
    legacy = tmp_path / "full.h5"
    source.save(legacy)
    for key in ("training_config", "model_config"):
        with h5py.File(legacy, "a") as f:
            f.attrs[key] = json.dumps(_deep(400))
        with pytest.raises(LoadError, match=rf"\(attribute '{key}'\) is nested more than"):
            plexus.models.load_model(legacy)
        with h5py.File(legacy, "a") as f:
            f.attrs[key] = "[" * 100000 + "]" * 100000
        with pytest.raises(LoadError, match=rf"\(attribute '{key}'\) is nested absurdly deep"):
            plexus.models.load_model(legacy)


def test_malformed_compile_config_is_a_load_error(tmp_path):
    members = _members(_compiled(0))
    config = json.loads(members["config.json"])
    config["compile_config"]["optimizer"]["config"]["learning_rate"] = {}
    members["config.json"] = json.dumps(config).encode()
    with pytest.raises(LoadError, match=r"\(compile_config\) is malformed"):
        plexus.models.load_model(_write_zip(tmp_path / "bad.keras", members))


def _encrypt_flag(path, member):
    """Set the 'encrypted' bit of `member` in both of its zip headers."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while True:
            start = data.find(signature, start)
            if start < 0:
                break
            name_at = start + (30 if offset == 6 else 46)
            if data[name_at:name_at + len(name)] == name:
                data[start + offset] |= 0x1
            start += 4
    path.write_bytes(bytes(data))


def test_encrypted_member_is_a_load_error(tmp_path):
    path = tmp_path / "enc.keras"
    _model().save(path)
    _encrypt_flag(path, "model.weights.h5")
    with pytest.raises(LoadError, match="'model.weights.h5' is encrypted"):
        plexus.models.load_model(path)


@pytest.mark.parametrize("bad", [["Scale"], "Scale", {1: "x"}])
def test_custom_objects_of_the_wrong_type_name_custom_objects(tmp_path, bad):
    path = tmp_path / "m.keras"
    _model().save(path)
    with pytest.raises(TypeError, match="custom_objects"):
        plexus.models.load_model(path, custom_objects=bad)
    with pytest.raises(TypeError, match="custom_objects"):
        plexus.models.model_from_json(_model().to_json(), custom_objects=bad)


# ------------------------------------------------------------------ memory, hangs, unbounded work
# Loads that could exhaust memory, hang or run for minutes run in a child process under an
# address-space limit, each announced before it starts so that a hang names its case.
_ISOLATED = r'''
import json, os, resource, sys, zipfile
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import h5py, numpy as np
import plexus
from plexus import layers as L
from plexus.saving import LoadError

tmp = sys.argv[1]


def case(name, fn):
    print(json.dumps({"start": name}), flush=True)
    try:
        fn()
        out = {"case": name, "result": "loaded"}
    except LoadError as e:
        out = {"case": name, "result": "LoadError", "message": str(e)}
    except BaseException as e:
        out = {"case": name, "result": type(e).__name__, "message": str(e)[:300]}
    print(json.dumps(out), flush=True)


def model():
    inp = plexus.Input((3,), name="inp")
    return plexus.Model(inp, L.Dense(2, name="out")(L.Dense(4, name="hidden")(inp)), name="m")


def members(m):
    path = os.path.join(tmp, "src.keras")
    m.save(path)
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_zip(name, content):
    path = os.path.join(tmp, name)
    with zipfile.ZipFile(path, "w") as z:
        for n, data in content.items():
            z.writestr(n, data)
    return path


def optimizer_slot_of_2_to_the_30():
    m = model()
    m.compile("adam", "mse")
    m.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)
    content = members(m)
    h5 = os.path.join(tmp, "w.h5")
    with open(h5, "wb") as fh:
        fh.write(content["model.weights.h5"])
    with h5py.File(h5, "a") as f:
        del f["optimizer/vars/2"]
        f.create_dataset("optimizer/vars/2", shape=(1 << 30,), dtype="float32")
    with open(h5, "rb") as fh:
        content["model.weights.h5"] = fh.read()
    plexus.models.load_model(write_zip("slot.keras", content))


def huge_layer_next_to_tiny_weights():
    content = members(model())
    config = json.loads(content["config.json"])
    [l for l in config["config"]["layers"] if l["name"] == "hidden"][0]["config"]["units"] = 1 << 28
    content["config.json"] = json.dumps(config).encode()
    plexus.models.load_model(write_zip("huge.keras", content))


def fifo_behind_an_external_link():
    fifo = os.path.join(tmp, "fifo.h5")
    os.mkfifo(fifo)
    path = os.path.join(tmp, "link.weights.h5")
    with h5py.File(path, "w") as f:
        f["model_weights"] = h5py.ExternalLink(fifo, "/model_weights")
    model().load_weights(path)


def fifo_as_the_file():
    model().load_weights(os.path.join(tmp, "fifo.h5"))


def activation(name, prev):
    nodes = [] if prev is None else [{"args": [{"class_name": "__keras_tensor__", "config": {
        "shape": [None, 2], "dtype": "float32", "keras_history": [prev, 0, 0]}}], "kwargs": {}}]
    return {"module": "keras.layers", "class_name": "Activation", "name": name,
            "config": {"name": name, "activation": "relu"}, "inbound_nodes": nodes}


def functional(n, reverse):
    layers = [{"module": "keras.layers", "class_name": "InputLayer", "name": "inp",
               "config": {"batch_shape": [None, 2], "dtype": "float32", "name": "inp"},
               "inbound_nodes": []}]
    layers += [activation(f"a{i}", f"a{i - 1}" if i else "inp") for i in range(n)]
    if reverse:
        layers = layers[:1] + layers[:0:-1]
    return {"class_name": "Functional", "config": {"name": "f", "layers": layers,
            "input_layers": [["inp", 0, 0]], "output_layers": [[f"a{n - 1}", 0, 0]]}}


def sequential(n):
    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, 2], "dtype": "float32", "name": "inp"}}]
    layers += [activation(f"a{i}", None) for i in range(n)]
    return {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}


case("optimizer slot of 2**30 elements", optimizer_slot_of_2_to_the_30)
case("huge layer next to tiny weights", huge_layer_next_to_tiny_weights)
case("FIFO behind an external link", fifo_behind_an_external_link)
case("FIFO as the file", fifo_as_the_file)
case("Sequential of 1,500 layers", lambda: plexus.models.model_from_json(
    json.dumps(sequential(1500))))
case("1,500 layers listed outputs first", lambda: plexus.models.model_from_json(
    json.dumps(functional(1500, reverse=True))))
'''


def test_bombs_hangs_and_unbounded_work_in_a_child_process(tmp_path):
    import subprocess
    script = tmp_path / "isolated.py"
    script.write_text(_ISOLATED)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, str(script), str(tmp_path), str(3 << 30)],
                              capture_output=True, text=True, timeout=150, env=env)
        out = proc.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    results = {r["case"]: r for r in lines if "case" in r}
    started = [r["start"] for r in lines if "start" in r]
    assert started and started[-1] in results, f"hung or died in {started[-1:]}: {out[-2000:]}"
    expected = {
        "optimizer slot of 2**30 elements": "optimizer/vars/2 declares 4294967296 bytes but "
                                            "occupies 0",
        "huge layer next to tiny weights": "Refusing to allocate .* for weight 'kernel' of layer "
                                           r"'hidden' with shape \(3, 268435456\)",
        "FIFO behind an external link": "an external link at /model_weights",
        "FIFO as the file": "fifo.h5' is not a regular file",
    }
    for name, message in expected.items():
        assert results[name]["result"] == "LoadError", results[name]
        assert re.search(message, results[name]["message"]), results[name]
    for name in ("Sequential of 1,500 layers", "1,500 layers listed outputs first"):
        assert results[name]["result"] == "loaded", results[name]


def _chain_config(n):
    inp = plexus.Input((2,), name="inp")
    x = inp
    for i in range(n):
        x = L.Activation("relu", name=f"a{i}")(x)
    return json.loads(plexus.Model(inp, x).to_json())


def test_layer_and_call_counts_are_capped(monkeypatch):
    from plexus.saving import limits
    config = _chain_config(30)
    monkeypatch.setattr(limits, "MAX_LAYERS", 30)
    with pytest.raises(LoadError, match="more than 30 layers"):
        plexus.models.model_from_config(config)
    monkeypatch.setattr(limits, "MAX_LAYERS", 100)
    monkeypatch.setattr(limits, "MAX_NODES", 29)
    with pytest.raises(LoadError, match="more than 29 layer calls"):
        plexus.models.model_from_config(config)
    monkeypatch.setattr(limits, "MAX_NODES", 30)
    assert len(plexus.models.model_from_config(config).layers) == 31


def test_a_chain_deeper_than_the_recursion_limit_builds_and_loads():
    config = _chain_config(1100)  # deeper than Python's recursion limit
    model = plexus.models.model_from_config(config)
    x = np.full((2, 2), -1.0, "float32")
    assert model(x).detach().numpy().max() == 0.0
