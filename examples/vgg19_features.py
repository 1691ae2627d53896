"""Feature extraction: a new model whose outputs are every layer of VGG19.

A functional model's graph is a static data structure: each layer's symbolic output can be
reused. Listing `layer.output` for all layers of VGG19 and building `Model(vgg19.input,
features_list)` gives a model that returns every intermediate activation in one call.

Run: python examples/vgg19_features.py [output folder]
Set PLEXUS_EXAMPLES_SMALL=1 for a quick run (the test suite does): the convolutional base on
32x32 images instead of the full network on 224x224 images.
"""
import os
import sys

import numpy as np

import plexus as keras
from plexus import applications
from plexus.models import Model

OUT = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PLEXUS_EXAMPLES_OUT", ".")
SMALL = os.environ.get("PLEXUS_EXAMPLES_SMALL") == "1"

keras.utils.set_random_seed(0)

if SMALL:
    vgg19 = applications.VGG19(weights=None, include_top=False, input_shape=(32, 32, 3))
    size = 32
else:
    vgg19 = applications.VGG19(weights=None)  # random weights; "imagenet" downloads them
    size = 224

vgg19.summary()

# Every layer's symbolic output, from the input to the last pooling (or softmax) layer.
features_list = [layer.output for layer in vgg19.layers]
feat_extraction_model = Model(inputs=vgg19.input, outputs=features_list)

img = np.random.random((1, size, size, 3)).astype("float32")
extracted_features = feat_extraction_model(img)  # one call, every activation
for layer, feature in zip(vgg19.layers, extracted_features):
    print(f"{layer.name:15s} {tuple(feature.shape)}")

os.makedirs(OUT, exist_ok=True)
keras.utils.plot_model(feat_extraction_model, os.path.join(OUT, "vgg19_features.png"),
                       show_shapes=True)
print("plot saved in", os.path.abspath(OUT))
