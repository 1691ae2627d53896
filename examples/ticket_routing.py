"""Ticket routing: three inputs, two outputs, losses by output name.

A support ticket has a title and a body (word ids) and a set of tags (a binary vector). The model
predicts a priority between 0 and 1 and the department that should handle the ticket. This is
the model the README draws; `examples/quickstart.py` trains the same model on learnable data,
saves it and loads it back.

Run: python examples/ticket_routing.py [output folder]
Set PLEXUS_EXAMPLES_SMALL=1 for a quick run on tiny data (the test suite does).
"""
import os
import sys

import numpy as np

import plexus as keras
from plexus import layers

OUT = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PLEXUS_EXAMPLES_OUT", ".")
SMALL = os.environ.get("PLEXUS_EXAMPLES_SMALL") == "1"
samples, body_length, epochs = (32, 20, 1) if SMALL else (1280, 100, 2)

num_tags = 12  # number of unique issue tags
num_words = 10000  # size of the vocabulary
num_departments = 4  # number of departments to route to

keras.utils.set_random_seed(0)

title_input = keras.Input(shape=(None,), name="title")  # variable-length sequence of word ids
body_input = keras.Input(shape=(None,), name="body")  # variable-length sequence of word ids
tags_input = keras.Input(shape=(num_tags,), name="tags")  # binary vector of tags

# Each word of the title and of the body becomes a 64-dimensional vector ...
title_features = layers.Embedding(num_words, 64)(title_input)
body_features = layers.Embedding(num_words, 64)(body_input)
# ... and each sequence of vectors becomes one vector.
title_features = layers.LSTM(128)(title_features)
body_features = layers.LSTM(32)(body_features)

# All features in one vector, then one head per prediction.
x = layers.concatenate([title_features, body_features, tags_input])
priority_pred = layers.Dense(1, activation="sigmoid", name="priority")(x)
department_pred = layers.Dense(num_departments, activation="softmax", name="department")(x)

model = keras.Model(inputs=[title_input, body_input, tags_input],
                    outputs=[priority_pred, department_pred])
model.summary()

# Losses and their weights keyed by output name (a list in output order works too).
model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
              loss={"priority": "binary_crossentropy", "department": "categorical_crossentropy"},
              loss_weights=[1.0, 0.2])

title_data = np.random.randint(num_words, size=(samples, 10))
body_data = np.random.randint(num_words, size=(samples, body_length))
tags_data = np.random.randint(2, size=(samples, num_tags)).astype("float32")
priority_targets = np.random.random(size=(samples, 1))
dept_targets = np.random.randint(2, size=(samples, num_departments))

history = model.fit({"title": title_data, "body": body_data, "tags": tags_data},
                    {"priority": priority_targets, "department": dept_targets},
                    epochs=epochs, batch_size=32, verbose=0 if SMALL else "auto")
print("history keys:", sorted(history.history))

os.makedirs(OUT, exist_ok=True)
keras.utils.plot_model(model, os.path.join(OUT, "ticket_routing.png"), show_shapes=True)
print("plot saved in", os.path.abspath(OUT))
