"""Models as layers: one Xception network shared by two camera inputs.

A model can be called like a layer; calling it twice reuses its weights. Here the convolutional
base of Xception (no classifier, random weights) reads a left and a right image, and the two
feature maps are concatenated, as a depth-estimation network with two cameras would do.

The first plot draws the Xception base as one box fed by both inputs; the second
(`expand_nested=True`) draws its layers inside a dashed cluster.

Run: python examples/shared_xception.py [output folder]
Set PLEXUS_EXAMPLES_SMALL=1 for a quick run on tiny data (the test suite does).
"""
import os
import sys

import numpy as np

import plexus as keras
from plexus import Input, applications, layers
from plexus.models import Model

OUT = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PLEXUS_EXAMPLES_OUT", ".")
SMALL = os.environ.get("PLEXUS_EXAMPLES_SMALL") == "1"
# The tutorial uses 250x250 images; 71x71 is the smallest Xception accepts.
size = 71 if SMALL else 250

keras.utils.set_random_seed(0)

xception_base = applications.Xception(weights=None, include_top=False,
                                      input_shape=(size, size, 3))

left_input = Input(shape=(size, size, 3), name="left_camera")
right_input = Input(shape=(size, size, 3), name="right_camera")

left_features = xception_base(left_input)  # the same vision model called twice:
right_features = xception_base(right_input)  # one set of weights

merged_features = layers.concatenate([left_features, right_features], axis=-1)
model = Model([left_input, right_input], merged_features)
model.summary()

left = np.random.random((1 if SMALL else 2, size, size, 3)).astype("float32")
right = np.random.random((1 if SMALL else 2, size, size, 3)).astype("float32")
features = model.predict([left, right], verbose=0)
print("merged features:", tuple(features.shape))

os.makedirs(OUT, exist_ok=True)
keras.utils.plot_model(model, os.path.join(OUT, "shared_xception.png"), show_shapes=True)
keras.utils.plot_model(model, os.path.join(OUT, "shared_xception_expanded.svg"),
                       show_shapes=True, expand_nested=True)
print("plots saved in", os.path.abspath(OUT))
