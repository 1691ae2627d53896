"""The seeds' compile/fit/evaluate code, scaled down, runs with only the import changed and
reports Keras's history keys."""
import numpy as np

import plexus as keras
from plexus import Input, layers
from plexus.models import Model
from plexus.utils import to_categorical

rng = np.random.default_rng(0)


def test_seed_mlp_compile_fit_evaluate():
    input_tensor = Input(shape=(64,))
    x = layers.Dense(32, activation="relu")(input_tensor)
    x = layers.Dense(32, activation="relu")(x)
    output_tensor = layers.Dense(10, activation="softmax")(x)
    model = Model(input_tensor, output_tensor)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    x_train = np.random.random((1000, 64))
    y_train = np.random.random((1000, 10))
    history = model.fit(x_train, y_train, epochs=2, batch_size=128, verbose=0)
    score = model.evaluate(x_train, y_train, verbose=0)
    assert list(history.history) == ["loss"] and isinstance(score, float)


def test_seed_question_answering_list_and_dict_inputs():
    text_input = Input(shape=(None,), dtype="int32", name="text")
    embedded_text = layers.Embedding(100, 8)(text_input)
    encoded_text = layers.LSTM(4)(embedded_text)
    question_input = Input(shape=(None,), dtype="int32", name="question")
    embedded_question = layers.Embedding(100, 4)(question_input)
    encoded_question = layers.LSTM(2)(embedded_question)
    concatenated = layers.concatenate([encoded_text, encoded_question], axis=-1)
    answer = layers.Dense(20, activation="softmax")(concatenated)
    model = Model([text_input, question_input], answer)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["acc"])
    text = rng.integers(1, 100, size=(40, 7))
    question = rng.integers(1, 100, size=(40, 5))
    answers = to_categorical(rng.integers(0, 20, size=40), 20)
    h1 = model.fit([text, question], answers, epochs=1, batch_size=16, verbose=0)
    h2 = model.fit({"text": text, "question": question}, answers, epochs=1, batch_size=16,
                   verbose=0)
    assert list(h1.history) == list(h2.history) == ["acc", "loss"]


def test_seed_three_output_posts_model():
    posts_input = Input(shape=(None,), dtype="int32", name="posts")
    embedded_posts = layers.Embedding(200, 8)(posts_input)
    x = layers.Conv1D(8, 5, activation="relu")(embedded_posts)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(8, 5, activation="relu")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(8, activation="relu")(x)
    age_prediction = layers.Dense(1, name="age")(x)
    income_prediction = layers.Dense(10, activation="softmax", name="income")(x)
    gender_prediction = layers.Dense(1, activation="sigmoid", name="gender")(x)
    model = Model(posts_input, [age_prediction, income_prediction, gender_prediction])
    auc = keras.metrics.AUC()
    model.compile(optimizer="rmsprop",
                  loss=["mse", "categorical_crossentropy", "binary_crossentropy"],
                  loss_weights=[0.25, 1., 10.], metrics={"gender": auc})
    posts = rng.integers(1, 200, size=(32, 40))
    age_targets = rng.uniform(10, 60, size=(32, 1))
    income_targets = to_categorical(rng.integers(0, 10, 32), 10)
    gender_targets = rng.integers(0, 2, size=(32, 1))
    h = model.fit(posts, [age_targets, income_targets, gender_targets], epochs=1,
                  batch_size=16, verbose=0)
    assert list(h.history) == ["age_loss", "gender_auc", "gender_loss", "income_loss", "loss"]
    model.compile(optimizer="rmsprop",
                  loss={"age": "mse", "income": "categorical_crossentropy",
                        "gender": "binary_crossentropy"},
                  loss_weights={"age": 0.25, "income": 1, "gender": 10.})
    result = model.evaluate(posts, [age_targets, income_targets, gender_targets], verbose=0)
    assert len(result) == 4
    np.testing.assert_allclose(result[0], 0.25 * result[1] + result[2] + 10 * result[3],
                               rtol=1e-5)


def test_seed_ticket_routing_dicts():
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(12,), name="tags")
    title_features = layers.LSTM(4)(layers.Embedding(50, 4)(title_input))
    body_features = layers.LSTM(2)(layers.Embedding(50, 4)(body_input))
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, activation="sigmoid", name="priority")(x)
    department_pred = layers.Dense(4, activation="softmax", name="department")(x)
    model = keras.Model(inputs=[title_input, body_input, tags_input],
                        outputs=[priority_pred, department_pred])
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss={"priority": "binary_crossentropy",
                        "department": "categorical_crossentropy"},
                  loss_weights=[1., 0.2])
    title_data = rng.integers(50, size=(32, 10))
    body_data = rng.integers(50, size=(32, 20))
    tags_data = rng.integers(2, size=(32, 12)).astype("float32")
    priority_targets = rng.random(size=(32, 1))
    dept_targets = rng.integers(2, size=(32, 4))
    h = model.fit({"title": title_data, "body": body_data, "tags": tags_data},
                  {"priority": priority_targets, "department": dept_targets},
                  epochs=2, batch_size=16, verbose=0)
    assert list(h.history) == ["department_loss", "loss", "priority_loss"]
    np.testing.assert_allclose(h.history["loss"][0], h.history["priority_loss"][0]
                               + 0.2 * h.history["department_loss"][0], rtol=1e-5)
