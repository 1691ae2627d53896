"""The keras.io examples that load and preprocess data, as their code does it with
`import plexus as keras`, on small data the tests write (seconds, not hours)."""
import os
import re
import string

import numpy as np
from PIL import Image

import plexus as keras
from plexus import layers


def _jpegs(root, classes, n, size=(40, 36)):
    rng = np.random.default_rng(0)
    for k, c in enumerate(classes):
        os.makedirs(root / c, exist_ok=True)
        for i in range(n):
            base = np.full((size[1], size[0], 3), 60 + 120 * k, dtype=np.uint8)
            noise = rng.integers(0, 60, base.shape, dtype=np.uint8)
            Image.fromarray(base + noise).save(root / c / f"{i}.jpg")


def test_image_classification_from_scratch(tmp_path):
    _jpegs(tmp_path / "PetImages", ("Cat", "Dog"), 10)
    image_size, batch_size = (32, 32), 8
    train_ds, val_ds = keras.preprocessing.image_dataset_from_directory(
        str(tmp_path / "PetImages"), validation_split=0.2, subset="both", seed=1337,
        image_size=image_size, batch_size=batch_size, verbose=False)
    for images, labels in train_ds.take(1):
        assert images[0].numpy().astype("uint8").shape == (32, 32, 3)
        assert int(labels[0]) in (0, 1)
    data_augmentation = keras.Sequential([layers.RandomFlip("horizontal"),
                                          layers.RandomRotation(0.1)])
    for images, _ in train_ds.take(1):
        augmented = data_augmentation(images)
        assert augmented[0].numpy().shape == (32, 32, 3)
    train_ds = train_ds.map(lambda img, label: (data_augmentation(img), label),
                            num_parallel_calls=keras.utils.AUTOTUNE).prefetch(32)
    val_ds = val_ds.prefetch(buffer_size=32)

    inputs = keras.Input(shape=image_size + (3,))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(8, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x
    x = layers.SeparableConv2D(16, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.add([x, layers.Conv2D(16, 1, strides=2, padding="same")(previous)])
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(layers.Dropout(0.5)(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=["accuracy"])
    checkpoint = str(tmp_path / "save_at_{epoch}.keras")
    history = model.fit(train_ds, epochs=2, validation_data=val_ds, verbose=0,
                        callbacks=[keras.callbacks.ModelCheckpoint(checkpoint)])
    assert len(history.history["val_accuracy"]) == 2
    assert os.path.exists(tmp_path / "save_at_2.keras")
    img = keras.preprocessing.image.load_img(str(tmp_path / "PetImages/Cat/3.jpg"),
                                             target_size=image_size)
    img_array = np.expand_dims(keras.preprocessing.image.img_to_array(img), 0)
    score = float(model.predict(img_array, verbose=0)[0][0])
    assert 0.0 <= score <= 1.0


def _reviews(root):
    words = {"pos": "great wonderful superb moving", "neg": "awful boring dull terrible"}
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for label, vocab in words.items():
            os.makedirs(root / split / label, exist_ok=True)
            for i in range(8):
                text = " ".join(rng.choice(vocab.split(), 6)) + "<br /> The END."
                (root / split / label / f"{i}.txt").write_text(text)


def test_text_classification_from_scratch(tmp_path):
    _reviews(tmp_path / "aclImdb")
    batch_size = 4
    raw_train_ds = keras.utils.text_dataset_from_directory(
        str(tmp_path / "aclImdb/train"), batch_size=batch_size, validation_split=0.25,
        subset="training", seed=1337, verbose=False)
    raw_val_ds = keras.utils.text_dataset_from_directory(
        str(tmp_path / "aclImdb/train"), batch_size=batch_size, validation_split=0.25,
        subset="validation", seed=1337, verbose=False)
    raw_test_ds = keras.utils.text_dataset_from_directory(
        str(tmp_path / "aclImdb/test"), batch_size=batch_size, verbose=False)
    for text_batch, label_batch in raw_train_ds.take(1):
        assert isinstance(text_batch.numpy()[0], str) and int(label_batch.numpy()[0]) in (0, 1)

    def custom_standardization(input_data):  # NumPy strings instead of tf.strings
        lowercase = np.char.lower(input_data.astype(str))
        stripped_html = np.char.replace(lowercase, "<br />", " ")
        pattern = re.compile(f"[{re.escape(string.punctuation)}]")
        return np.vectorize(lambda s: pattern.sub("", s))(stripped_html)

    max_features, sequence_length = 50, 10
    vectorize_layer = keras.layers.TextVectorization(
        standardize=custom_standardization, max_tokens=max_features, output_mode="int",
        output_sequence_length=sequence_length)
    text_ds = raw_train_ds.map(lambda x, y: x)
    vectorize_layer.adapt(text_ds)
    assert "great" in vectorize_layer.get_vocabulary() and "br" not in \
        vectorize_layer.get_vocabulary()

    def vectorize_text(text, label):
        return vectorize_layer(np.expand_dims(text, -1)), label
    train_ds = raw_train_ds.map(vectorize_text).cache().prefetch(buffer_size=10)
    val_ds = raw_val_ds.map(vectorize_text).cache().prefetch(buffer_size=10)

    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(max_features, 8)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(8, 3, padding="valid", activation="relu", strides=1)(x)
    x = layers.GlobalMaxPooling1D()(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, predictions)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(train_ds, validation_data=val_ds, epochs=3, verbose=0)

    inputs = keras.Input(shape=(1,), dtype="string")
    outputs = model(vectorize_layer(inputs))
    end_to_end_model = keras.Model(inputs, outputs)
    end_to_end_model.compile(loss="binary_crossentropy", optimizer="adam",
                             metrics=["accuracy"])
    loss, accuracy = end_to_end_model.evaluate(raw_test_ds, verbose=0)
    assert 0.0 <= accuracy <= 1.0
    end_to_end_model.save(tmp_path / "text.keras")
    reloaded = keras.models.load_model(tmp_path / "text.keras", custom_objects={
        "custom_standardization": custom_standardization}, safe_mode=False)
    texts = np.array(["great superb", "awful dull"])
    np.testing.assert_allclose(reloaded.predict(texts, verbose=0),
                               end_to_end_model.predict(texts, verbose=0), rtol=1e-5)


def test_timeseries_classification_from_scratch(tmp_path):
    rng = np.random.default_rng(2)
    t = np.linspace(0, 6.28, 50)
    x_train = np.stack([np.sin(t * (1 + k % 2)) + rng.normal(0, 0.1, 50) for k in range(40)])
    y_train = np.array([k % 2 for k in range(40)])
    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    num_classes = len(np.unique(y_train))
    idx = np.random.permutation(len(x_train))
    x_train, y_train = x_train[idx], y_train[idx]

    input_layer = keras.layers.Input(x_train.shape[1:])
    x = input_layer
    for _ in range(2):
        x = keras.layers.Conv1D(filters=8, kernel_size=3, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    gap = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.models.Model(inputs=input_layer,
                               outputs=keras.layers.Dense(num_classes, activation="softmax")(gap))
    best = str(tmp_path / "best_model.keras")
    callbacks = [keras.callbacks.ModelCheckpoint(best, save_best_only=True, monitor="val_loss"),
                 keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2,
                                                   min_lr=0.0001),
                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, verbose=0)]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    model.fit(x_train, y_train, batch_size=8, epochs=3, callbacks=callbacks,
              validation_split=0.2, verbose=0)
    model = keras.models.load_model(best)
    test_loss, test_acc = model.evaluate(x_train, y_train, verbose=0)
    assert 0.0 <= test_acc <= 1.0
    # the same series through the windowing utility the timeseries guides use
    series = np.arange(100, dtype="float32").reshape(50, 2)
    windows = keras.utils.timeseries_dataset_from_array(series[:-5], series[5:, 0],
                                                        sequence_length=5, batch_size=8)
    first_x, first_y = next(iter(windows))
    np.testing.assert_array_equal(first_x[1].numpy(), series[1:6])
    assert float(first_y[1]) == series[6, 0]


def test_structured_data_with_preprocessing_layers():
    rng = np.random.default_rng(3)
    n = 64
    data = {"age": rng.integers(29, 77, n).astype("int64"),
            "sex": rng.integers(0, 2, n).astype("int64"),
            "thal": rng.choice(["fixed", "normal", "reversible"], n),
            "chol": rng.normal(240, 40, n).astype("float32")}
    target = (data["chol"] > 240).astype("float32")

    def encode_numerical_feature(feature, name):
        normalizer = layers.Normalization()
        normalizer.adapt(data[name][:, None].astype("float32"))
        return normalizer(feature)

    def encode_categorical_feature(feature, name, is_string):
        lookup_class = layers.StringLookup if is_string else layers.IntegerLookup
        lookup = lookup_class(output_mode="binary")
        lookup.adapt(data[name])
        return lookup(feature)

    sex = keras.Input(shape=(1,), name="sex", dtype="int64")
    thal = keras.Input(shape=(1,), name="thal", dtype="string")
    age = keras.Input(shape=(1,), name="age")
    chol = keras.Input(shape=(1,), name="chol")
    all_features = layers.concatenate([
        encode_categorical_feature(sex, "sex", False),
        encode_categorical_feature(thal, "thal", True),
        encode_numerical_feature(age, "age"), encode_numerical_feature(chol, "chol")])
    x = layers.Dense(16, activation="relu")(all_features)
    x = layers.Dropout(0.5)(x)
    output = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model([sex, thal, age, chol], output)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    inputs = {k: v[:, None] if k != "thal" else v for k, v in data.items()}
    model.fit(inputs, target, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    sample = {"age": np.array([[60]]), "sex": np.array([[1]]), "thal": np.array(["fixed"]),
              "chol": np.array([[300.0]])}
    assert model.predict(sample, verbose=0).shape == (1, 1)


def test_transfer_learning_up_to_pretrained_weights():
    images = np.random.default_rng(4).uniform(0, 255, (6, 60, 50, 3)).astype("float32")
    labels = np.array([0, 1, 0, 1, 0, 1], "float32")
    resize = layers.Resizing(71, 71)
    data_augmentation = keras.Sequential([layers.RandomFlip("horizontal"),
                                          layers.RandomRotation(0.1)])
    base_model = keras.applications.Xception(weights=None, input_shape=(71, 71, 3),
                                             include_top=False)  # (pretrained: a download)
    base_model.trainable = False
    inputs = keras.Input(shape=(71, 71, 3))
    x = data_augmentation(inputs)
    x = layers.Rescaling(scale=1 / 127.5, offset=-1)(x)
    x = base_model(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy()])
    resized = resize(images).numpy()
    frozen = [w.copy() for w in base_model.get_weights()]
    model.fit(resized, labels, epochs=1, batch_size=3, verbose=0)
    for before, after in zip(frozen, base_model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert model.predict(resized, verbose=0).shape == (6, 1)
