"""Residual connections: add a block's input back to its output.

Two forms from the tutorials: when the feature maps keep their size, the input is added as it
is (an identity shortcut); when the block downsamples, a 1x1 convolution with stride 2 brings
the input to the new shape first (a linear projection). Both blocks are chained into one small
network and trained briefly.

Run: python examples/residual_blocks.py [output folder]
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
# The tutorial uses 32x32 maps with 128 channels; small mode shrinks them.
size, channels, samples, epochs = (8, 16, 16, 1) if SMALL else (32, 128, 128, 2)

keras.utils.set_random_seed(0)

x = Input(shape=(size, size, channels))

# 1. Same size: three convolutions with "same" padding, then add the input itself.
y = layers.Conv2D(channels, 3, activation="relu", padding="same")(x)
y = layers.Conv2D(channels, 3, activation="relu", padding="same")(y)
y = layers.Conv2D(channels, 3, activation="relu", padding="same")(y)
y = layers.add([y, x])

# 2. Different size: the block halves the maps, so the shortcut is a strided 1x1 convolution.
z = layers.Conv2D(channels, 3, activation="relu", padding="same")(y)
z = layers.Conv2D(channels, 3, activation="relu", padding="same")(z)
z = layers.MaxPooling2D(2, strides=2)(z)
residual = layers.Conv2D(channels, 1, strides=2, padding="same")(y)
z = layers.add([z, residual])
print("after the two blocks:", z.shape)

outputs = layers.Dense(1, activation="sigmoid")(layers.GlobalAveragePooling2D()(z))
model = Model(x, outputs)
model.summary()

model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
images = np.random.random((samples, size, size, channels)).astype("float32")
labels = np.random.randint(0, 2, size=(samples, 1)).astype("float32")
model.fit(images, labels, epochs=epochs, batch_size=32, verbose=0 if SMALL else "auto")

os.makedirs(OUT, exist_ok=True)
keras.utils.plot_model(model, os.path.join(OUT, "residual_blocks.png"), show_shapes=True)
print("plot saved in", os.path.abspath(OUT))
