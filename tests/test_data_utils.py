"""plexus.utils data utilities and plexus.datasets on small files the tests write: directory
loaders, image helpers, pad_sequences and timeseries windows (against Keras where it runs
without TensorFlow), get_file's cache, hashes and safe extraction, dataset file formats."""
import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
import wave
import zipfile

import keras
import numpy as np
import pytest
import torch
from PIL import Image

import plexus
from plexus import utils


def _write_images(root, classes=("cat", "dog"), per_class=5, size=(12, 10), fmt="png"):
    rng = np.random.default_rng(0)
    for c in classes:
        os.makedirs(root / c, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (size[1] + i, size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.{fmt}")


def test_image_dataset_from_directory(tmp_path):
    _write_images(tmp_path)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = utils.image_dataset_from_directory(tmp_path, image_size=(8, 6), batch_size=4,
                                            seed=1, verbose=False)
    assert ds.class_names == ["cat", "dog"] and len(ds) == 3
    batches = list(ds)
    assert batches[0][0].shape == (4, 8, 6, 3) and batches[0][0].dtype == torch.float32
    assert batches[0][1].dtype == torch.int32
    labels = torch.cat([b[1] for b in batches]).tolist()
    assert sorted(labels) == [0] * 5 + [1] * 5
    ordered = utils.image_dataset_from_directory(tmp_path, image_size=(8, 6), shuffle=False,
                                                 verbose=False)
    labels = torch.cat([b[1] for b in ordered]).tolist()
    assert [os.path.basename(os.path.dirname(p)) for p in ordered.file_paths] == \
        [ordered.class_names[i] for i in labels]  # each file is labelled by its folder
    train, val = utils.image_dataset_from_directory(
        tmp_path, image_size=(8, 6), batch_size=4, seed=1, validation_split=0.3,
        subset="both", label_mode="categorical", verbose=False)
    assert set(train.file_paths).isdisjoint(val.file_paths)
    assert len(train.file_paths) == 7 and len(val.file_paths) == 3
    assert next(iter(val))[1].shape == (3, 2)
    binary = utils.image_dataset_from_directory(tmp_path, image_size=(8, 6), label_mode="binary",
                                                shuffle=False, color_mode="grayscale",
                                                verbose=False)
    x, y = next(iter(binary))
    assert x.shape == (10, 8, 6, 1) and y.shape == (10, 1)
    # the same decode and resize as Keras's smart pipeline: Pillow, then bilinear resize
    img = np.asarray(Image.open(binary.file_paths[0]).convert("L"), "float32")[None, ..., None]
    expected = keras.layers.Resizing(8, 6)(img)
    np.testing.assert_allclose(x[0:1].numpy(), keras.ops.convert_to_numpy(expected), atol=1e-3)


def test_directory_loader_trains_a_model(tmp_path):
    _write_images(tmp_path, per_class=3)
    ds = utils.image_dataset_from_directory(tmp_path, image_size=(8, 8), batch_size=2,
                                            seed=2, verbose=False)
    inputs = plexus.Input(shape=(8, 8, 3))
    x = plexus.layers.RandomFlip("horizontal")(inputs)
    x = plexus.layers.Rescaling(1 / 255)(x)
    outputs = plexus.layers.Dense(2)(plexus.layers.GlobalAveragePooling2D()(x))
    model = plexus.Model(inputs, outputs)
    model.compile("adam", plexus.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds.map(lambda a, b: (a, b)), epochs=2, validation_data=ds, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert model.predict(ds.map(lambda a, b: a), verbose=0).shape == (6, 2)


def test_directory_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        utils.image_dataset_from_directory(tmp_path / "missing", verbose=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No class folders"):
        utils.image_dataset_from_directory(tmp_path / "empty", verbose=False)
    with pytest.raises(ValueError, match="seed"):
        utils.image_dataset_from_directory(tmp_path, validation_split=0.2, subset="training")
    bad = tmp_path / "bad" / "a"
    bad.mkdir(parents=True)
    (bad / "broken.png").write_bytes(b"not a png")
    ds = utils.image_dataset_from_directory(tmp_path / "bad", image_size=(4, 4), verbose=False)
    with pytest.raises(ValueError, match="broken.png"):
        next(iter(ds))


def test_text_and_audio_from_directory(tmp_path):
    for c, words in (("neg", "bad awful"), ("pos", "good great")):
        (tmp_path / "text" / c).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "text" / c / f"{i}.txt").write_text(f"{words} {i}", encoding="utf-8")
    ds = utils.text_dataset_from_directory(tmp_path / "text", batch_size=4, seed=0,
                                           max_length=6, verbose=False)
    texts, labels = next(iter(ds))
    assert texts.shape == (4,) and isinstance(texts.numpy()[0], str) and len(texts[0]) <= 6
    assert ds.class_names == ["neg", "pos"]
    for c in ("no", "yes"):
        (tmp_path / "audio" / c).mkdir(parents=True)
        for i, n in enumerate((100, 160)):
            with wave.open(str(tmp_path / "audio" / c / f"{i}.wav"), "wb") as w:
                w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
                w.writeframes((np.arange(n) % 100 * 300).astype("<i2").tobytes())
    audio, labels = next(iter(utils.audio_dataset_from_directory(
        tmp_path / "audio", batch_size=4, shuffle=False, verbose=False)))
    assert audio.shape == (4, 160, 1) and audio.dtype == torch.float32
    np.testing.assert_allclose(audio[0, :3, 0].numpy(), np.array([0, 300, 600]) / 32768.0)
    assert float(audio[0, 100:].abs().sum()) == 0.0  # padded to the longest clip
    fixed = next(iter(utils.audio_dataset_from_directory(
        tmp_path / "audio", output_sequence_length=50, verbose=False)))[0]
    assert fixed.shape[1] == 50


def test_image_helpers_match_keras(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 255, (9, 7, 3)).astype("float32")
    for data_format in ("channels_last", "channels_first"):
        arr = pixels if data_format == "channels_last" else pixels.transpose(2, 0, 1)
        np.testing.assert_array_equal(
            np.asarray(utils.array_to_img(arr, data_format=data_format)),
            np.asarray(keras.utils.array_to_img(arr, data_format=data_format)))
    utils.save_img(tmp_path / "a.png", pixels, scale=False)
    keras.utils.save_img(tmp_path / "b.png", pixels, scale=False)
    ours = utils.img_to_array(utils.load_img(tmp_path / "a.png", target_size=(5, 4)))
    theirs = keras.utils.img_to_array(keras.utils.load_img(tmp_path / "b.png",
                                                           target_size=(5, 4)))
    np.testing.assert_array_equal(ours, theirs)
    gray = utils.img_to_array(utils.load_img(tmp_path / "a.png", color_mode="grayscale"))
    assert gray.shape == (9, 7, 1)
    np.testing.assert_allclose(plexus.preprocessing.image.smart_resize(pixels, (4, 4)),
                               keras.preprocessing.image.smart_resize(pixels, (4, 4)),
                               atol=1e-3)


@pytest.mark.parametrize("kwargs", [{}, {"maxlen": 2}, {"padding": "post", "value": -1},
                                    {"truncating": "post", "maxlen": 2},
                                    {"dtype": "float32", "maxlen": 4}])
def test_pad_sequences_matches_keras(kwargs):
    seqs = [[1], [2, 3], [4, 5, 6], []]
    np.testing.assert_array_equal(plexus.preprocessing.sequence.pad_sequences(seqs, **kwargs),
                                  keras.utils.pad_sequences(seqs, **kwargs))
    with pytest.raises(ValueError, match="padding"):
        utils.pad_sequences(seqs, padding="middle")


def test_timeseries_windows_and_split():
    data = np.arange(30, dtype="float32").reshape(15, 2)
    ds = utils.timeseries_dataset_from_array(data, np.arange(15), sequence_length=4,
                                             sequence_stride=2, sampling_rate=2, batch_size=3)
    windows = torch.cat([b[0] for b in ds]).numpy()
    targets = torch.cat([b[1] for b in ds]).numpy()
    np.testing.assert_array_equal(targets, [0, 2, 4, 6, 8])  # the last window ends at 14
    np.testing.assert_array_equal(windows[1], data[[2, 4, 6, 8]])
    left, right = utils.split_dataset((data, np.arange(15)), left_size=0.8)
    assert len(left) == 12 and len(right) == 3
    x, y = next(iter(left.batch(5)))
    assert x.shape == (5, 2) and y.tolist() == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------- get_file
def test_get_file_caches_checks_hashes_and_extracts(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    src = tmp_path / "payload.bin"
    src.write_bytes(b"plexus data")
    digest = hashlib.sha256(b"plexus data").hexdigest()
    path = utils.get_file("payload.bin", origin=src.as_uri(), file_hash=digest)
    assert path == str(tmp_path / "home" / "datasets" / "payload.bin")
    src.write_bytes(b"changed upstream")  # cached: not downloaded again
    assert open(utils.get_file("payload.bin", origin=src.as_uri()), "rb").read() == \
        b"plexus data"
    with pytest.raises(ValueError, match="hash"):
        utils.get_file("other.bin", origin=src.as_uri(), file_hash=digest)
    with pytest.raises(OSError, match="put it at .*missing.bin"):
        utils.get_file("missing.bin", origin=(tmp_path / "nowhere.bin").as_uri())
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("pack/a.txt", "A")
    out = utils.get_file("pack.zip", origin=archive.as_uri(), extract=True)
    assert open(os.path.join(out, "pack", "a.txt")).read() == "A"


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_extraction_refuses_paths_outside(tmp_path, member):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(member, "x")
    with pytest.raises(ValueError, match="outside"):
        utils.file_utils.extract_archive(archive, tmp_path / "out")
    tar_path = tmp_path / "evil.tar"
    with tarfile.open(tar_path, "w") as t:
        info = tarfile.TarInfo(member)
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="outside"):
        utils.file_utils.extract_archive(tar_path, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_extraction_refuses_links(tmp_path):
    tar_path = tmp_path / "links.tar"
    with tarfile.open(tar_path, "w") as t:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    with pytest.raises(ValueError, match="link"):
        utils.file_utils.extract_archive(tar_path, tmp_path / "out")
    zip_path = tmp_path / "links.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        utils.file_utils.extract_archive(zip_path, tmp_path / "out")


# ---------------------------------------------------------------- plexus.datasets
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    root = tmp_path / "datasets"
    root.mkdir(exist_ok=True)
    return root


def test_npz_datasets_from_cached_files(tmp_path, monkeypatch):
    root = _cache(tmp_path, monkeypatch)
    np.savez(root / "mnist.npz", x_train=np.zeros((3, 28, 28), "uint8"),
             y_train=np.arange(3, dtype="uint8"), x_test=np.ones((2, 28, 28), "uint8"),
             y_test=np.arange(2, dtype="uint8"))
    monkeypatch.setattr(plexus.datasets._common, "fetch", lambda fname, h, **k: str(root /
                                                                                   fname))
    monkeypatch.setattr(plexus.datasets.mnist, "fetch", plexus.datasets._common.fetch)
    (x, y), (xt, yt) = plexus.datasets.mnist.load_data()
    assert x.shape == (3, 28, 28) and yt.tolist() == [0, 1]
    np.savez(root / "boston_housing.npz", x=np.arange(20.0).reshape(10, 2), y=np.arange(10.0))
    (x, y), (xt, yt) = plexus.datasets.boston_housing.load_data(test_split=0.2)
    assert x.shape == (8, 2) and xt.shape == (2, 2)
    order = np.arange(10)
    np.random.RandomState(113).shuffle(order)
    np.testing.assert_array_equal(y, order[:8].astype(float))  # Keras's seeded split


def _ragged_npz(path, **arrays):
    out = {}
    for key, value in arrays.items():
        if isinstance(value, list):
            obj = np.empty(len(value), dtype=object)
            obj[:] = value
            out[key] = obj
        else:
            out[key] = value
    np.savez(path, **out)


def test_imdb_and_reuters_word_ids(tmp_path, monkeypatch):
    root = _cache(tmp_path, monkeypatch)
    _ragged_npz(root / "imdb.npz", x_train=[[1, 2, 3], [4, 5], [6]], y_train=np.array([1, 0, 1]),
                x_test=[[7, 8, 9, 10], [1]], y_test=np.array([0, 1]))
    fetch = lambda fname, h, **k: str(root / fname)  # noqa: E731
    monkeypatch.setattr(plexus.datasets.imdb, "fetch", fetch)
    (x, y), (xt, yt) = plexus.datasets.imdb.load_data(num_words=8, maxlen=4, seed=113)
    rng = np.random.RandomState(113)
    train_order = np.arange(3)
    rng.shuffle(train_order)
    lists = [[1, 2, 3], [4, 5], [6]]
    expected = [[1] + [w + 3 if w + 3 < 8 else 2 for w in lists[i]] for i in train_order
                if len(lists[i]) + 1 < 4]
    assert [list(s) for s in x] == expected
    json.dump({"good": 1}, open(root / "imdb_word_index.json", "w"))
    assert plexus.datasets.imdb.get_word_index() == {"good": 1}
    _ragged_npz(root / "reuters.npz", x=[[1, 2], [3], [4, 5, 6], [7], [8]],
                y=np.array([0, 1, 2, 3, 4]))
    monkeypatch.setattr(plexus.datasets.reuters, "fetch", fetch)
    (x, y), (xt, yt) = plexus.datasets.reuters.load_data(test_split=0.2, start_char=None,
                                                         index_from=0)
    assert len(x) == 4 and len(xt) == 1 and plexus.datasets.reuters.get_label_names()[3] == \
        "earn"


def test_fashion_mnist_idx_files(tmp_path, monkeypatch):
    root = _cache(tmp_path, monkeypatch)
    sub = root / "fashion-mnist"
    sub.mkdir()
    labels, images = np.arange(4, dtype="uint8"), np.arange(4 * 784, dtype="uint8") % 251
    for prefix in ("train", "t10k"):
        with gzip.open(sub / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(b"\0" * 8 + labels.tobytes())
        with gzip.open(sub / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"\0" * 16 + images.tobytes())
    (x, y), (xt, yt) = plexus.datasets.fashion_mnist.load_data()
    assert x.shape == (4, 28, 28) and y.tolist() == [0, 1, 2, 3]


def _cifar_batch(n, label_key="labels"):
    return {b"data": (np.arange(n * 3072) % 256).astype("uint8").reshape(n, 3072),
            label_key.encode(): list(range(n)), b"batch_label": b"x"}


def test_cifar_pickles_and_a_hostile_pickle(tmp_path, monkeypatch):
    root = _cache(tmp_path, monkeypatch)
    folder = root / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump(_cifar_batch(2), f)
    monkeypatch.setattr(plexus.datasets.cifar10, "get_file",
                        lambda **k: str(root / "cifar-10-batches-py-target"))
    (x, y), (xt, yt) = plexus.datasets.cifar10.load_data()
    assert x.shape == (10, 32, 32, 3) and y.shape == (10, 1) and xt.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(x[0, 0, 0], [0, 1024 % 256, 2048 % 256])

    class Hostile:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Hostile(), b"labels": [0]}, f)
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        plexus.datasets.cifar10.load_data()
    assert not (tmp_path / "pwned").exists()


def test_missing_dataset_offline_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(url, filename):
        raise plexus.utils.file_utils.urllib.error.URLError("no network")
    monkeypatch.setattr(plexus.utils.file_utils.urllib.request, "urlretrieve", offline)
    with pytest.raises(OSError, match=r"mnist\.npz"):
        plexus.datasets.mnist.load_data()


def test_progbar_averages_like_keras(capsys):
    bar = utils.Progbar(4, verbose=2, stateful_metrics=["acc"])
    for step, (loss, acc) in enumerate([(1.0, 0.1), (3.0, 0.9)]):
        bar.update((step + 1) * 2, values=[("loss", loss), ("acc", acc)])
    bar.add(0)
    out = capsys.readouterr().out
    assert "loss: 2.0000" in out and "acc: 0.9000" in out  # averaged / as given
