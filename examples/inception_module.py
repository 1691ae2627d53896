"""An inception module: four parallel branches whose outputs are concatenated.

Each branch looks at the same input differently (a 1x1 convolution, 1x1 then 3x3, average
pooling then 1x1, 1x1 then two 3x3) and every branch halves the spatial size, so the four
outputs line up and can be stacked along the channel axis. A small classifier on top lets the
script train the module briefly.

Run: python examples/inception_module.py [output folder]
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
# The tutorial's feature map is 28x28 with 256 channels; small mode shrinks it.
size, channels, samples, epochs = (8, 16, 16, 1) if SMALL else (28, 256, 128, 2)

keras.utils.set_random_seed(0)

x = Input(shape=(size, size, channels))

branch_a = layers.Conv2D(64, 1, activation="relu", strides=2)(x)  # downsample with stride 2

branch_b = layers.Conv2D(64, 1, activation="relu")(x)  # 1x1: mixes channels only
branch_b = layers.Conv2D(128, 3, activation="relu", strides=2, padding="same")(branch_b)

branch_c = layers.AveragePooling2D(3, strides=2, padding="same")(x)  # pooling downsamples
branch_c = layers.Conv2D(128, 1, activation="relu", padding="same")(branch_c)

branch_d = layers.Conv2D(128, 1, activation="relu")(x)
branch_d = layers.Conv2D(128, 3, activation="relu", padding="same")(branch_d)
branch_d = layers.Conv2D(128, 3, activation="relu", strides=2, padding="same")(branch_d)

# All branches give (size/2, size/2) maps: stack them along the channels.
output = layers.concatenate([branch_a, branch_b, branch_c, branch_d], axis=-1)
print("module output shape:", output.shape)  # (None, 14, 14, 448) at full size

# A classifier on top so the module can be trained.
pooled = layers.GlobalAveragePooling2D()(output)
predictions = layers.Dense(10, activation="softmax")(pooled)
model = Model(x, predictions)
model.summary()

model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
images = np.random.random((samples, size, size, channels)).astype("float32")
labels = keras.utils.to_categorical(np.random.randint(0, 10, size=samples), 10)
model.fit(images, labels, epochs=epochs, batch_size=32, verbose=0 if SMALL else "auto")

os.makedirs(OUT, exist_ok=True)
keras.utils.plot_model(model, os.path.join(OUT, "inception_module.png"), show_shapes=True)
print("plot saved in", os.path.abspath(OUT))
