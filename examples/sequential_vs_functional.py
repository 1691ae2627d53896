"""Sequential model vs functional API: the same three-layer network built both ways.

From the seeds' first example: a `Sequential` stack and the identical functional model, their
summaries, a functional model trained on random data, and the error a model built from an
unrelated input gives.

Run: python examples/sequential_vs_functional.py [output folder]
Set PLEXUS_EXAMPLES_SMALL=1 for a quick run on tiny data (the test suite does).
"""
import os
import sys

import numpy as np

import plexus as keras
from plexus import Input, layers
from plexus.models import Model, Sequential

OUT = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PLEXUS_EXAMPLES_OUT", ".")
SMALL = os.environ.get("PLEXUS_EXAMPLES_SMALL") == "1"
samples, epochs = (64, 1) if SMALL else (1000, 10)

keras.utils.set_random_seed(0)

# Sequential: layers stacked in order, one input, one output.
seq_model = Sequential()
seq_model.add(layers.Dense(32, activation="relu", input_shape=(64,)))
seq_model.add(layers.Dense(32, activation="relu"))
seq_model.add(layers.Dense(10, activation="softmax"))
seq_model.summary()

# Functional: call each layer on the tensor the previous one returned.
input_tensor = Input(shape=(64,))
x = layers.Dense(32, activation="relu")(input_tensor)
x = layers.Dense(32, activation="relu")(x)
output_tensor = layers.Dense(10, activation="softmax")(x)
model = Model(input_tensor, output_tensor)
model.summary()  # same layers, same 3,466 parameters, plus the InputLayer

# A model needs outputs that can be computed from its inputs; an unrelated input is refused.
unrelated_input = Input(shape=(32,))
try:
    Model(unrelated_input, output_tensor)
except ValueError as err:
    print("As expected, a model from an unrelated input fails:\n ", err)

# Compiling, training and evaluating work the same way for both kinds of model.
model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
x_train = np.random.random((samples, 64))
y_train = np.random.random((samples, 10))
model.fit(x_train, y_train, epochs=epochs, batch_size=128, verbose=0 if SMALL else "auto")
score = model.evaluate(x_train, y_train, verbose=0)
print("loss after training:", score)

os.makedirs(OUT, exist_ok=True)
keras.utils.plot_model(seq_model, os.path.join(OUT, "sequential.png"), show_shapes=True)
keras.utils.plot_model(model, os.path.join(OUT, "functional.png"), show_shapes=True)
print("plots saved in", os.path.abspath(OUT))
