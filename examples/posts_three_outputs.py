"""A model with three outputs: age, income group and gender predicted from social-media posts.

One 1D convolutional trunk reads the posts; three heads share its features: a scalar regression
(age), a 10-way softmax (income group) and a sigmoid (gender). Each output gets its own loss,
and loss weights balance their scales in the single number gradient descent minimises.

Run: python examples/posts_three_outputs.py [output folder]
Set PLEXUS_EXAMPLES_SMALL=1 for a quick run on tiny data (the test suite does).
"""
import os
import sys

import numpy as np

import plexus as keras
from plexus import Input, layers
from plexus.models import Model

OUT = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PLEXUS_EXAMPLES_OUT", ".")
SMALL = os.environ.get("PLEXUS_EXAMPLES_SMALL") == "1"
# The trunk shrinks a sequence by about 25x, so posts need a few hundred words.
num_samples, max_length, epochs = (8, 300, 1) if SMALL else (256, 500, 2)

vocabulary_size = 50000
num_income_groups = 10

keras.utils.set_random_seed(0)

posts_input = Input(shape=(None,), dtype="int32", name="posts")
embedded_posts = layers.Embedding(vocabulary_size, 256)(posts_input)
x = layers.Conv1D(128, 5, activation="relu")(embedded_posts)
x = layers.MaxPooling1D(5)(x)
x = layers.Conv1D(256, 5, activation="relu")(x)
x = layers.Conv1D(256, 5, activation="relu")(x)
x = layers.MaxPooling1D(5)(x)
x = layers.Conv1D(256, 5, activation="relu")(x)
x = layers.Conv1D(256, 5, activation="relu")(x)
x = layers.GlobalMaxPooling1D()(x)
x = layers.Dense(128, activation="relu")(x)

# Three heads on the same features; their names key losses, data and history.
age_prediction = layers.Dense(1, name="age")(x)
income_prediction = layers.Dense(num_income_groups, activation="softmax", name="income")(x)
gender_prediction = layers.Dense(1, activation="sigmoid", name="gender")(x)

model = Model(posts_input, [age_prediction, income_prediction, gender_prediction])
model.summary()

# One loss per output (a list in output order, or a dict by output name), weighted so that the
# mean squared error of ages does not drown the cross-entropies.
model.compile(optimizer="rmsprop",
              loss={"age": "mse", "income": "categorical_crossentropy",
                    "gender": "binary_crossentropy"},
              loss_weights={"age": 0.25, "income": 1.0, "gender": 10.0})

posts = np.random.randint(1, vocabulary_size, size=(num_samples, max_length))
age_targets = np.random.uniform(18, 80, size=(num_samples, 1)).astype("float32")
income_targets = keras.utils.to_categorical(
    np.random.randint(0, num_income_groups, size=num_samples), num_income_groups)
gender_targets = np.random.randint(0, 2, size=(num_samples, 1)).astype("float32")

history = model.fit(posts, {"age": age_targets, "income": income_targets,
                            "gender": gender_targets},
                    epochs=epochs, batch_size=64, verbose=0 if SMALL else "auto")
print("history keys:", sorted(history.history))

os.makedirs(OUT, exist_ok=True)
keras.utils.plot_model(model, os.path.join(OUT, "posts_three_outputs.png"), show_shapes=True)
print("plot saved in", os.path.abspath(OUT))
