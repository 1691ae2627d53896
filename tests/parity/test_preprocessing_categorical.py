"""Categorical preprocessing: CategoryEncoding and Discretization against Keras (both run on
the torch backend); Hashing, HashedCrossing, the lookups and TextVectorization need TensorFlow
in Keras, so they are checked against the answers Keras documents and its own tests expect."""
import keras
import numpy as np
import pytest
import torch

import plexus
from plexus import layers as L
from plexus.layers.preprocessing import hash_functions as H
from tests.parity.oracle import assert_close


@pytest.mark.parametrize("mode", ["multi_hot", "count", "one_hot"])
def test_category_encoding_matches_keras(mode):
    for data in (np.array([[0, 1, 3], [3, 3, 2]]), np.array([1, 0, 3]), np.array([[2], [0]])):
        p = L.CategoryEncoding(num_tokens=5, output_mode=mode)
        k = keras.layers.CategoryEncoding(num_tokens=5, output_mode=mode)
        assert_close(p(data), k(data))
        assert tuple(p.compute_output_shape(data.shape)) == tuple(k.compute_output_shape(
            data.shape))
    weights = np.array([[0.5, 2.0, 1.0], [1.0, 1.0, 3.0]], "float32")
    p = L.CategoryEncoding(num_tokens=4, output_mode="count")
    k = keras.layers.CategoryEncoding(num_tokens=4, output_mode="count")
    ids = np.array([[0, 1, 1], [2, 3, 3]])
    assert_close(p(ids, count_weights=weights), k(ids, count_weights=weights))


def test_category_encoding_out_of_range_is_a_value_error():
    with pytest.raises(ValueError, match="id 7.*num_tokens"):
        L.CategoryEncoding(num_tokens=4)(np.array([[1, 7]]))


@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot", "count"])
def test_discretization_matches_keras(mode):
    data = np.random.default_rng(0).normal(size=(50, 3)).astype("float32")
    p = L.Discretization(bin_boundaries=[-1.0, 0.0, 0.5], output_mode=mode)
    k = keras.layers.Discretization(bin_boundaries=[-1.0, 0.0, 0.5], output_mode=mode)
    assert_close(p(data), k(data))
    assert p(data).dtype == torch.as_tensor(keras.ops.convert_to_numpy(k(data))).dtype


def test_discretization_adapt_matches_keras():
    data = np.random.default_rng(1).gamma(2.0, size=(300,)).astype("float32")
    for num_bins, epsilon in ((4, 0.01), (7, 0.1)):
        p = L.Discretization(num_bins=num_bins, epsilon=epsilon)
        p.adapt(data)
        # Keras's adapt() looks for tf.data first; its quantile code itself is NumPy
        from keras.src.layers.preprocessing import discretization as kd
        summary = kd.merge_summaries(kd.summarize(data, epsilon),
                                     np.array([[], []], "float32"), epsilon)
        expected = kd.get_bin_boundaries(summary, num_bins).tolist()
        np.testing.assert_allclose(p.bin_boundaries, expected, rtol=1e-6)
    batched = L.Discretization(num_bins=4)
    batched.adapt([data[:100], data[100:]])  # summaries merged across batches
    assert len(batched.bin_boundaries) == 3


def test_discretization_config_round_trip_after_adapt():
    layer = L.Discretization(num_bins=3)
    layer.adapt(np.arange(30, dtype="float32"))
    clone = L.Discretization.from_config(layer.get_config())
    assert clone.bin_boundaries == layer.bin_boundaries
    k_clone = keras.layers.Discretization.from_config(layer.get_config())
    x = np.array([[3.0, 15.0, 29.0]], "float32")
    assert_close(clone(x), k_clone(x))


# ---------------------------------------------------------------- hashing (known answers)
def test_fingerprint64_known_values():
    # FarmHash Fingerprint64 (what TensorFlow's to_hash_bucket_fast uses), every length class
    known = {b"": 0x9AE16A3B2F90404F, b"a": 0xB3454265B6DF75E3, b"keras": 0x2C2B63525687C5DE,
             b"plexus-on-torch!!": 0xAC77793DA4207202, b"x" * 20: 0x7241CE1F8EF74DC4,
             b"The quick brown fox jumps over the lazy dog": 0xABBE83F33B1B5134,
             bytes(range(100)): 0x3CFF0F886D8D6195, b"0123456789" * 25: 0xF1E9E4EC46C0DD5A}
    for data, value in known.items():
        assert H.fingerprint64(data) == value, data[:12]


def test_hashing_matches_keras_documented_ids():
    five = np.array([["A"], ["B"], ["C"], ["D"], ["E"]])
    names = np.array([["omar"], ["stringer"], ["marlo"], ["wire"], ["skywalker"]])
    cases = [({"num_bins": 3}, five, [1, 0, 1, 1, 2]),
             ({"num_bins": 3, "salt": [133, 137]}, five, [1, 2, 1, 0, 2]),
             ({"num_bins": 3, "salt": 133}, five, [0, 0, 2, 1, 0]),
             ({"num_bins": 2}, names, [0, 0, 1, 0, 0]),
             ({"num_bins": 3, "mask_value": ""}, names, [1, 1, 2, 1, 1]),
             ({"num_bins": 3, "mask_value": "omar"}, names, [0, 1, 2, 1, 1]),
             ({"num_bins": 2, "salt": [211, 137]}, names, [1, 0, 1, 0, 1]),
             ({"num_bins": 3}, np.array([[0], [1], [2], [3], [4]]), [1, 0, 1, 0, 2]),
             ({"num_bins": 3, "salt": [133, 137]}, np.array([[0], [1], [2], [3], [4]]),
              [1, 1, 2, 0, 1])]
    for kwargs, data, expected in cases:
        out = L.Hashing(**kwargs)(data)
        assert out.dtype == torch.int64
        np.testing.assert_array_equal(out.numpy().ravel(), expected, err_msg=str(kwargs))
    multi = L.Hashing(num_bins=3, output_mode="multi_hot")(np.array([[0, 1, 2, 3, 4]]))
    np.testing.assert_array_equal(multi.numpy(), [[1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(L.Hashing(num_bins=2)(["omar", "wire"]).numpy(), [0, 0])


def test_hashed_crossing_matches_keras_documented_ids():
    feat1 = np.array(["A", "B", "A", "B", "A"])
    feat2 = np.array([101, 101, 101, 102, 102])
    np.testing.assert_array_equal(L.HashedCrossing(num_bins=5)((feat1, feat2)).numpy(),
                                  [1, 4, 1, 1, 3])
    one_hot = L.HashedCrossing(num_bins=5, output_mode="one_hot")((feat1, feat2))
    np.testing.assert_array_equal(one_hot.numpy().argmax(-1), [1, 4, 1, 1, 3])
    with pytest.raises(ValueError, match="at least two features"):
        L.HashedCrossing(num_bins=5)(feat1)


# ---------------------------------------------------------------- lookups (known answers)
def test_string_lookup_documented_examples():
    vocab = ["a", "b", "c", "d"]
    data = np.array([["a", "c", "d"], ["d", "z", "b"]])
    np.testing.assert_array_equal(L.StringLookup(vocabulary=vocab)(data).numpy(),
                                  [[1, 3, 4], [4, 0, 2]])
    two_oov = L.StringLookup(vocabulary=vocab, num_oov_indices=2)(
        np.array([["a", "c", "d"], ["m", "z", "b"]]))
    np.testing.assert_array_equal(two_oov.numpy(), [[2, 4, 5], [0, 1, 3]])
    one_hot = L.StringLookup(vocabulary=vocab, output_mode="one_hot")(
        np.array(["a", "b", "c", "d", "z"]))
    np.testing.assert_array_equal(one_hot.numpy(), np.eye(5)[[1, 2, 3, 4, 0]])
    multi = L.StringLookup(vocabulary=vocab, output_mode="multi_hot")(
        np.array([["a", "c", "d", "d"], ["d", "z", "b", "z"]]))
    np.testing.assert_array_equal(multi.numpy(), [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
    count = L.StringLookup(vocabulary=vocab, output_mode="count")(
        np.array([["a", "c", "d", "d"], ["d", "z", "b", "z"]]))
    np.testing.assert_array_equal(count.numpy(), [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]])
    tf_idf = L.StringLookup(output_mode="tf_idf")
    tf_idf.set_vocabulary(vocab, idf_weights=[0.25, 0.75, 0.6, 0.4])
    out = tf_idf(np.array([["a", "c", "d", "d"], ["d", "z", "b", "z"]]))
    np.testing.assert_allclose(out.numpy(), [[0.0, 0.25, 0.0, 0.6, 0.8],
                                             [1.0, 0.0, 0.75, 0.0, 0.4]], rtol=1e-6)
    tf_idf.set_vocabulary(["[UNK]"] + vocab, idf_weights=[0.9, 0.25, 0.75, 0.6, 0.4])
    out = tf_idf(np.array([["a", "c", "d", "d"], ["d", "z", "b", "z"]]))
    np.testing.assert_allclose(out.numpy(), [[0.0, 0.25, 0.0, 0.6, 0.8],
                                             [1.8, 0.0, 0.75, 0.0, 0.4]], rtol=1e-6)
    inverse = L.StringLookup(vocabulary=vocab, invert=True)(np.array([[1, 3, 4], [4, 0, 2]]))
    np.testing.assert_array_equal(inverse, [["a", "c", "d"], ["d", "[UNK]", "b"]])
    adapted = L.StringLookup()
    adapted.adapt([["a", "c", "d"], ["d", "z", "b"]])
    assert adapted.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    np.testing.assert_array_equal(adapted([["a", "c", "d"], ["d", "z", "b"]]).numpy(),
                                  [[5, 3, 1], [1, 2, 4]])


def test_integer_lookup_documented_examples():
    vocab = [12, 36, 1138, 42]
    data = np.array([[12, 1138, 42], [42, 1000, 36]])
    np.testing.assert_array_equal(L.IntegerLookup(vocabulary=vocab)(data).numpy(),
                                  [[1, 3, 4], [4, 0, 2]])
    adapted = L.IntegerLookup()
    adapted.adapt(data)
    assert adapted.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    masked = L.IntegerLookup(vocabulary=vocab, mask_token=0)(np.array([[12, 1138, 42],
                                                                       [42, 0, 36]]))
    np.testing.assert_array_equal(masked.numpy(), [[2, 4, 5], [5, 0, 3]])
    floormod = L.IntegerLookup(vocabulary=[7], num_oov_indices=3)(np.array([10, 11, 12, 7]))
    np.testing.assert_array_equal(floormod.numpy(), [1, 2, 0, 3])


def test_lookup_bad_input():
    with pytest.raises(ValueError, match="does not exist"):
        L.StringLookup(vocabulary="/no/such/vocab.txt")
    with pytest.raises(ValueError, match="repeats"):
        L.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="num_oov_indices=0"):
        L.StringLookup(vocabulary=["a"], num_oov_indices=0)(np.array(["b"]))
    with pytest.raises(TypeError, match="looks up strings"):
        L.StringLookup(vocabulary=["a"])(np.array([1.5]))
    with pytest.raises(ValueError, match="empty"):
        L.StringLookup().adapt(np.array([], dtype=str))


def test_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("earth\nwind\nand\nfire\n")
    layer = L.TextVectorization(vocabulary=str(path), output_sequence_length=4)
    assert layer.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]
    assert layer.vocabulary_size() == 6
    np.testing.assert_array_equal(layer(["Earth, WIND and fire!"]).numpy(), [[2, 3, 4, 5]])


# ---------------------------------------------------------------- text (known answers)
def test_text_vectorization_documented_examples():
    layer = L.TextVectorization(max_tokens=5000, output_mode="int", output_sequence_length=4)
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    np.testing.assert_array_equal(layer([["foo qux bar"], ["qux baz"]]).numpy(),
                                  [[4, 1, 3, 0], [1, 2, 0, 0]])
    given = L.TextVectorization(output_sequence_length=4,
                                vocabulary=["earth", "wind", "and", "fire"])
    assert given.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]


def test_text_vectorization_modes_and_tensorflow_text_rules():
    layer = L.TextVectorization(output_mode="multi_hot", ngrams=2)
    layer.adapt(["The cat sat.", "the DOG sat", "a cat"])
    vocab = layer.get_vocabulary()
    assert vocab[0] == "[UNK]" and "the cat" in vocab and "cat sat" in vocab
    out = layer(["the cat"]).numpy()[0]
    assert out[vocab.index("the")] == 1 and out[vocab.index("the cat")] == 1
    assert out.sum() == 3
    # TensorFlow lower-cases ASCII only and splits on ASCII whitespace only
    raw = L.TextVectorization(standardize="lower", split="whitespace")
    raw.adapt(["ÉCOLE Hello\u00a0World"])
    assert "École" in raw.get_vocabulary() and "école" not in raw.get_vocabulary()
    assert "hello\u00a0world" in raw.get_vocabulary()  # (a no-break space does not split)
    chars = L.TextVectorization(split="character", standardize=None, output_mode="count")
    chars.adapt(["abc", "aab"])
    np.testing.assert_array_equal(chars(["cab", "zz"]).numpy(), [[0, 1, 1, 1], [2, 0, 0, 0]])
    tf_idf = L.TextVectorization(output_mode="tf_idf")
    tf_idf.adapt(["a b", "a c", "a"])
    idf = tf_idf._lookup_layer.idf_weights.numpy()
    np.testing.assert_allclose(idf[1], np.log(1 + 3 / 4), rtol=1e-6)  # "a": in 3 documents


def test_string_model_trains_saves_and_reloads(tmp_path):
    texts = np.array([["good movie"], ["bad movie"], ["good plot"], ["bad acting"]])
    labels = np.array([1.0, 0.0, 1.0, 0.0], "float32")
    vectorize = L.TextVectorization(output_mode="tf_idf")
    vectorize.adapt(texts)
    inputs = plexus.Input(shape=(1,), dtype="string")
    outputs = L.Dense(1, activation="sigmoid")(vectorize(inputs))
    model = plexus.Model(inputs, outputs)
    model.compile("adam", "binary_crossentropy")
    model.fit(texts, labels, epochs=2, batch_size=2, verbose=0)
    model.save(tmp_path / "text.keras")
    loaded = plexus.models.load_model(tmp_path / "text.keras")
    assert loaded.layers[1].get_vocabulary() == vectorize.get_vocabulary()
    np.testing.assert_allclose(loaded.predict(texts, verbose=0), model.predict(texts,
                                                                               verbose=0))
    lookup = L.StringLookup()
    lookup.adapt(np.array(["x", "y", "y"]))
    inputs = plexus.Input(shape=(1,), dtype="string")
    model = plexus.Model(inputs, L.Embedding(lookup.vocabulary_size(), 2)(lookup(inputs)))
    model.save(tmp_path / "lookup.keras")
    reloaded = plexus.models.load_model(tmp_path / "lookup.keras")
    data = np.array([["y"], ["q"]])
    np.testing.assert_allclose(reloaded.predict(data, verbose=0), model.predict(data,
                                                                                verbose=0))
    with pytest.raises(TypeError, match="dtype 'string'"):
        model.predict(np.zeros((2, 1)), verbose=0)


def test_numeric_layers_refuse_text_naming_the_layer():
    with pytest.raises(TypeError, match="'dense'.*Dense.*strings"):
        L.Dense(2)(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="Dense.*strings"):
        L.Dense(2)(plexus.Input(shape=(1,), dtype="string"))
    with pytest.raises(TypeError, match="Discretization.*strings"):
        L.Discretization(num_bins=2).adapt(np.array(["a", "b"]))
