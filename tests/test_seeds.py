"""The tutorials in shared/seeds/, with only their import changed, give the shapes and parameter
counts the tutorials print."""
import numpy as np
import pytest

import plexus as keras
from plexus import Input, layers
from plexus.models import Model, Sequential


def summary_text(model, **kwargs):
    lines = []
    model.summary(print_fn=lines.append, **kwargs)
    return "\n".join(lines)


def test_seed_sequential_vs_functional_mlp():
    seq_model = Sequential()
    seq_model.add(layers.Dense(32, activation="relu", input_shape=(64,)))
    seq_model.add(layers.Dense(32, activation="relu"))
    seq_model.add(layers.Dense(10, activation="softmax"))
    input_tensor = Input(shape=(64,))
    x = layers.Dense(32, activation="relu")(input_tensor)
    x = layers.Dense(32, activation="relu")(x)
    output_tensor = layers.Dense(10, activation="softmax")(x)
    model = Model(input_tensor, output_tensor)
    text = summary_text(model)
    assert "Total params: 3,466" in text and "(InputLayer)" in text
    for row in ["(None, 32)                2080", "(None, 32)                1056",
                "(None, 10)                330"]:
        assert row in text
    assert "Total params: 3,466" in summary_text(seq_model)
    assert "(InputLayer)" not in summary_text(seq_model)


def test_seed_sequential_softmax_32_has_4192_params():
    model = Sequential()
    model.add(layers.Dense(32, activation="relu", input_shape=(64,)))
    model.add(layers.Dense(32, activation="relu"))
    model.add(layers.Dense(32, activation="softmax"))
    text = summary_text(model)
    assert 'Model: "sequential"' in text
    assert "dense (Dense)" in text and "dense_2 (Dense)" in text
    assert "Total params: 4,192" in text


def test_seed_unrelated_input_is_refused():
    input_tensor = Input(shape=(64,))
    output_tensor = layers.Dense(10)(layers.Dense(32)(input_tensor))
    unrelated_input = Input(shape=(32,))
    with pytest.raises(ValueError, match="disconnected"):
        Model(unrelated_input, output_tensor)


def test_seed_tiny_dense_models_have_6_params():
    model = Sequential()
    model.add(layers.Dense(2, input_shape=(2,)))
    assert "Total params: 6" in summary_text(model)
    visible = Input(shape=(2,))
    hidden = layers.Dense(2)(visible)
    model = Model(inputs=visible, outputs=hidden)
    assert "Total params: 6" in summary_text(model)


def test_seed_lstm_models_have_601_params():
    from plexus.layers import LSTM, Dense
    model = Sequential()
    model.add(LSTM(10, input_shape=(100, 1)))
    model.add(Dense(10, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    text = summary_text(model)
    assert "(None, 10)                480" in text and "Total params: 601" in text
    visible = Input(shape=(100, 1))
    hidden1 = LSTM(10)(visible)
    hidden2 = Dense(10, activation="relu")(hidden1)
    output = Dense(1, activation="sigmoid")(hidden2)
    model = Model(inputs=visible, outputs=output)
    text = summary_text(model)
    assert "(None, 100, 1)" in text and "Total params: 601" in text


def test_seed_conv_models_have_89720705_params():
    from plexus.layers import Conv2D, Dense, Flatten, MaxPooling2D
    model = Sequential()
    model.add(Conv2D(32, (3, 3), activation="relu", input_shape=(150, 150, 3)))
    model.add(MaxPooling2D((2, 2)))
    model.add(Flatten())
    model.add(Dense(512, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    text = summary_text(model)
    for row in ["(None, 148, 148, 32)      896", "(None, 74, 74, 32)", "(None, 175232)",
                "89719296", "Total params: 89,720,705"]:
        assert row in text
    inputs = Input(shape=(150, 150, 3))
    x = Conv2D(32, (3, 3), activation="relu")(inputs)
    x = MaxPooling2D((2, 2))(x)
    x = Flatten()(x)
    x = Dense(512, activation="relu")(x)
    outputs = Dense(1, activation="sigmoid")(x)
    model = Model(inputs=inputs, outputs=outputs)
    assert "Total params: 89,720,705" in summary_text(model)


def build_qa(dtype="int32", input_length=None):
    from plexus.layers import LSTM, Dense, Embedding, concatenate
    text_vocabulary_size, question_vocabulary_size, answer_vocabulary_size = 10000, 10000, 500
    text_input = Input(shape=(None,), dtype=dtype, name="text")
    kw = {"input_length": 10} if input_length else {}
    embedded_text = Embedding(text_vocabulary_size, 64, **kw)(text_input)
    encoded_text = LSTM(32)(embedded_text)
    question_input = Input(shape=(None,), dtype=dtype, name="question")
    kw = {"input_length": 5} if input_length else {}
    embedded_question = Embedding(question_vocabulary_size, 32, **kw)(question_input)
    encoded_question = LSTM(16)(embedded_question)
    concatenated = concatenate([encoded_text, encoded_question], axis=-1)
    answer = Dense(answer_vocabulary_size, activation="softmax")(concatenated)
    return Model([text_input, question_input], answer), (embedded_text, encoded_text,
                                                         embedded_question, encoded_question,
                                                         concatenated, answer)


def test_seed_question_answering_model():
    model, tensors = build_qa()
    assert [t.shape for t in tensors] == [(None, None, 64), (None, 32), (None, None, 32),
                                          (None, 16), (None, 48), (None, 500)]
    text = summary_text(model)
    assert "Connected to" in text
    assert "640000" in text and "320000" in text and "text[0][0]" in text
    assert model.count_params() == 640000 + 320000 + 12416 + 3136 + 24500


def test_seed_question_answering_with_input_length_prints_fixed_lengths():
    model, tensors = build_qa(dtype=None, input_length=True)
    assert tensors[0].shape == (None, 10, 64) and tensors[2].shape == (None, 5, 32)
    text = summary_text(model)
    assert "(None, 10, 64)" in text and "(None, 5, 32)" in text


def test_seed_question_first_in_concatenation_orders_layers():
    from plexus.layers import LSTM, Dense, Embedding
    text_input = Input(shape=(None,), dtype="int32", name="text")
    embedded_text = Embedding(10000, 64)(text_input)
    encoded_text = LSTM(32)(embedded_text)
    question_input = Input(shape=(None,), dtype="int32", name="question")
    embedded_question = Embedding(10000, 32)(question_input)
    encoded_question = LSTM(16)(embedded_question)
    concatenated = layers.concatenate([encoded_question, encoded_text], axis=1)
    answer = Dense(500, activation="softmax")(concatenated)
    model = Model([text_input, question_input], answer)
    names = [l.name for l in model.layers]
    assert names[:4] == ["question", "text", "embedding_1", "embedding"]


def build_posts(global_pool=True):
    from plexus.layers import Conv1D, Dense, Embedding, GlobalMaxPooling1D, MaxPooling1D
    posts_input = Input(shape=(None,), dtype="int32", name="posts")
    embedded_posts = Embedding(50000, 256)(posts_input)
    x = Conv1D(128, 5, activation="relu")(embedded_posts)
    x = MaxPooling1D(5)(x)
    x = Conv1D(256, 5, activation="relu")(x)
    x = Conv1D(256, 5, activation="relu")(x)
    x = MaxPooling1D(5)(x)
    if global_pool:
        x = Conv1D(256, 5, activation="relu")(x)
        x = Conv1D(256, 5, activation="relu")(x)
        x = GlobalMaxPooling1D()(x)
    x = Dense(128, activation="relu")(x)
    age = Dense(1, name="age")(x)
    income = Dense(10, activation="softmax", name="income")(x)
    gender = Dense(1, activation="sigmoid", name="gender")(x)
    return Model(posts_input, [age, income, gender]), embedded_posts, x


def test_seed_three_output_posts_model():
    model, embedded, x = build_posts()
    assert embedded.shape == (None, None, 256) and x.shape == (None, 128)
    text = summary_text(model)
    assert "12800000" in text and "163968" in text and "posts[0][0]" in text
    assert model.output_names == ["age", "income", "gender"]
    out = model.predict(np.random.randint(1, 50000, size=(2, 300)), verbose=0)
    assert [o.shape for o in out] == [(2, 1), (2, 10), (2, 1)]


def test_seed_posts_model_without_global_pooling_keeps_time_axis():
    model, _, x = build_posts(global_pool=False)
    assert x.shape == (None, None, 128)
    assert [t.shape for t in model.outputs] == [(None, None, 1), (None, None, 10), (None, None, 1)]


def test_seed_ticket_routing_model():
    num_tags, num_words, num_departments = 12, 10000, 4
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.Embedding(num_words, 64)(title_input)
    body_features = layers.Embedding(num_words, 64)(body_input)
    title_features = layers.LSTM(128)(title_features)
    body_features = layers.LSTM(32)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, activation="sigmoid", name="priority")(x)
    department_pred = layers.Dense(num_departments, activation="softmax", name="department")(x)
    model = keras.Model(inputs=[title_input, body_input, tags_input],
                        outputs=[priority_pred, department_pred])
    assert x.shape == (None, 128 + 32 + 12)
    assert model.count_params() == 640000 * 2 + 98816 + 12416 + 173 + 692
    title = np.random.randint(num_words, size=(3, 10))
    body = np.random.randint(num_words, size=(3, 100))
    tags = np.random.randint(2, size=(3, num_tags)).astype("float32")
    p, d = model({"title": title, "body": body, "tags": tags})
    assert p.shape == (3, 1) and d.shape == (3, 4)


def test_seed_shared_embedding():
    shared_embedding = layers.Embedding(1000, 128)
    text_input_a = keras.Input(shape=(None,), dtype="int32")
    text_input_b = keras.Input(shape=(None,), dtype="int32")
    encoded_input_a = shared_embedding(text_input_a)
    encoded_input_b = shared_embedding(text_input_b)
    assert encoded_input_a.shape == encoded_input_b.shape == (None, None, 128)
    assert len(shared_embedding.inbound_nodes) == 2


def test_seed_inception_module_shapes():
    x = Input(batch_shape=(1000, 28, 28, 256))
    branch_a = layers.Conv2D(64, 1, activation="relu", strides=2)(x)
    branch_b = layers.Conv2D(64, 1, activation="relu")(x)
    branch_b = layers.Conv2D(128, 1, activation="relu", strides=2, padding="same")(branch_b)
    branch_c = layers.AveragePooling2D(3, strides=2, padding="same")(x)
    branch_c = layers.Conv2D(128, 1, activation="relu", padding="same")(branch_c)
    branch_d = layers.Conv2D(128, 1, activation="relu")(x)
    branch_d = layers.Conv2D(128, 3, activation="relu", padding="same")(branch_d)
    branch_d = layers.Conv2D(128, 3, activation="relu", strides=2, padding="same")(branch_d)
    output = layers.concatenate([branch_a, branch_b, branch_c, branch_d], axis=-1)
    assert branch_a.shape == (1000, 14, 14, 64)
    assert branch_b.shape == branch_c.shape == branch_d.shape == (1000, 14, 14, 128)
    assert output.shape == (1000, 14, 14, 448)


def test_seed_inception_module_with_mismatched_branches_is_refused():
    # The first tutorial's module: valid 3x3 convolutions with stride 2 give 13x13 maps next to
    # 14x14 ones, so the concatenation cannot work (Keras refuses it too).
    x = Input(shape=(28, 28, 256))
    branch_a = layers.Conv2D(128, 1, activation="relu", strides=2)(x)
    branch_b = layers.Conv2D(128, 1, activation="relu")(x)
    branch_b = layers.Conv2D(128, 3, activation="relu", strides=2)(branch_b)
    with pytest.raises(ValueError, match=r"concatenate.*\(None, 14, 14, 128\).*\(None, 13, 13, 128\)"):
        layers.concatenate([branch_a, branch_b], axis=-1)


def test_seed_residual_connections():
    x = Input(batch_shape=(1000, 32, 32, 128))
    y = layers.Conv2D(128, 3, activation="relu", padding="same")(x)
    z = layers.Conv2D(128, 3, activation="relu", padding="same")(y)
    assert layers.add([z, x]).shape == (1000, 32, 32, 128)
    t = layers.MaxPool2D(2, strides=2)(z)
    residual = layers.Conv2D(128, 1, strides=2, padding="same")(x)
    assert t.shape == residual.shape == (1000, 16, 16, 128)
    assert layers.add([t, residual]).shape == (1000, 16, 16, 128)
    with pytest.raises(ValueError, match=r"add.*\(1000, 16, 16, 128\).*\(1000, 32, 32, 128\)"):
        layers.add([t, x])


def test_seed_siamese_lstm():
    lstm = layers.LSTM(32)
    left_input = Input(shape=(None, 128))
    left_output = lstm(left_input)
    right_input = Input(shape=(None, 128))
    right_output = lstm(right_input)
    merged = layers.concatenate([left_output, right_output], axis=-1)
    predictions = layers.Dense(1, activation="sigmoid")(merged)
    model = Model([left_input, right_input], predictions)
    assert left_output.shape == right_output.shape == (None, 32)
    assert merged.shape == (None, 64)
    assert model.count_params() == 4 * (128 * 32 + 32 * 32 + 32) + 65
    a, b = np.random.rand(2, 5, 128), np.random.rand(2, 7, 128)
    assert model([a, b]).shape == (2, 1)
