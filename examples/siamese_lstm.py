"""A Siamese LSTM: one LSTM layer shared by two inputs.

Calling the same layer object on two inputs reuses its weights: both sentences are encoded by
the same LSTM, so whatever it learns from one input helps with the other. The two codes are
concatenated and a sigmoid scores the pair (for example: are these two questions duplicates?).
The plot shows the shared LSTM once, with an arrow in from each input and two arrows out.

Run: python examples/siamese_lstm.py [output folder]
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
samples, timesteps, epochs = (16, 5, 1) if SMALL else (512, 20, 3)

keras.utils.set_random_seed(0)

lstm = layers.LSTM(32)  # one layer object, one set of weights

left_input = Input(shape=(None, 128))  # sequences of 128-d vectors, any length
left_output = lstm(left_input)

right_input = Input(shape=(None, 128))
right_output = lstm(right_input)  # the same weights again

merged = layers.concatenate([left_output, right_output], axis=-1)
predictions = layers.Dense(1, activation="sigmoid")(merged)

model = Model([left_input, right_input], predictions)
model.summary()
print("weights shared:", len(model.layers[2].weights), "tensors, used by both branches")

model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
left_data = np.random.random((samples, timesteps, 128)).astype("float32")
right_data = np.random.random((samples, timesteps, 128)).astype("float32")
targets = np.random.randint(0, 2, size=(samples, 1)).astype("float32")
model.fit([left_data, right_data], targets, epochs=epochs, batch_size=32,
          verbose=0 if SMALL else "auto")

os.makedirs(OUT, exist_ok=True)
keras.utils.plot_model(model, os.path.join(OUT, "siamese_lstm.png"), show_shapes=True)
print("plot saved in", os.path.abspath(OUT))
