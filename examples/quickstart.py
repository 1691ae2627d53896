"""plexus quickstart: route support tickets.

A functional model with three inputs (a ticket's title and body as word ids, and its tags) and two
outputs (a priority score and a department), as in the Keras functional-API guide. The data is
synthetic but learnable: a department's keywords appear in the title, and two of the tags mark a
ticket as urgent (urgent titles also contain the word "urgent"). The script builds the model,
prints its summary, trains it, evaluates it, saves it and loads it back.

Run: python examples/quickstart.py
"""
import os
import tempfile

import numpy as np

import plexus as keras
from plexus import layers

num_tags = 12  # number of unique issue tags
num_words = 10000  # size of the vocabulary
num_departments = 4  # number of departments to route to
samples = 1280

keras.utils.set_random_seed(42)

# ---------------------------------------------------------------- the model
title_input = keras.Input(shape=(None,), name="title")  # variable-length word ids
body_input = keras.Input(shape=(None,), name="body")
tags_input = keras.Input(shape=(num_tags,), name="tags")  # binary vector

title_features = layers.Embedding(num_words, 64)(title_input)
body_features = layers.Embedding(num_words, 64)(body_input)
title_features = layers.LSTM(128)(title_features)
body_features = layers.LSTM(32)(body_features)

x = layers.concatenate([title_features, body_features, tags_input])
priority_pred = layers.Dense(1, activation="sigmoid", name="priority")(x)
department_pred = layers.Dense(num_departments, activation="softmax", name="department")(x)

model = keras.Model(inputs=[title_input, body_input, tags_input],
                    outputs=[priority_pred, department_pred])
model.summary()

# ---------------------------------------------------------------- learnable synthetic data
rng = np.random.default_rng(0)
title_data = rng.integers(100, 300, size=(samples, 10))  # filler words shared by many tickets
body_data = rng.integers(100, 300, size=(samples, 100))
tags_data = rng.integers(0, 2, size=(samples, num_tags)).astype("float32")
departments = rng.integers(0, num_departments, size=samples)
# Each department has ten keywords (ids 10*d .. 10*d+9); put two of them in every title.
# Urgent tickets (tag 0 or tag 1 set) also say so in their title (word id 50).
priority_targets = (tags_data[:, 0] + tags_data[:, 1] >= 1).astype("float32")[:, None]
for i, d in enumerate(departments):
    pos = rng.choice(10, size=3, replace=False)
    title_data[i, pos[:2]] = rng.integers(10 * d, 10 * d + 10, size=2)
    if priority_targets[i, 0]:
        title_data[i, pos[2]] = 50
dept_targets = keras.utils.to_categorical(departments, num_departments)

# ---------------------------------------------------------------- train, evaluate
model.compile(optimizer=keras.optimizers.RMSprop(1e-2),
              loss={"priority": "binary_crossentropy", "department": "categorical_crossentropy"},
              loss_weights=[1.0, 0.2],
              metrics={"priority": ["accuracy"], "department": ["accuracy"]})

split = 1024
train_x = {"title": title_data[:split], "body": body_data[:split], "tags": tags_data[:split]}
train_y = {"priority": priority_targets[:split], "department": dept_targets[:split]}
test_x = [title_data[split:], body_data[split:], tags_data[split:]]
test_y = [priority_targets[split:], dept_targets[split:]]

history = model.fit(train_x, train_y, epochs=6, batch_size=32, verbose=2)
results = model.evaluate(test_x, test_y, verbose=0, return_dict=True)
print("held-out:", {k: round(float(v), 4) for k, v in results.items()})

priority_acc = results["priority_accuracy"]
department_acc = results["department_accuracy"]
print(f"priority accuracy {priority_acc:.3f} (chance 0.75 at best), "
      f"department accuracy {department_acc:.3f} (chance 0.25)")
if department_acc < 0.6 or priority_acc < 0.85:
    raise SystemExit("the model did not learn: accuracy is too close to chance")

# ---------------------------------------------------------------- save, load, predict
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "ticket_routing.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    before = model.predict(test_x, verbose=0)
    after = restored.predict(test_x, verbose=0)
    same = all(np.allclose(a, b, atol=1e-6) for a, b in zip(before, after))
    print(f"saved to {os.path.basename(path)} and loaded back: predictions identical = {same}")
    if not same:
        raise SystemExit("the reloaded model predicts differently")
