"""All public layers, re-exported by hand so that grep finds every name."""
from plexus.layers.layer import Layer
from plexus.layers.input_layer import Input, InputLayer
from plexus.layers.core import Activation, Dense, Dropout, Embedding, Flatten, Lambda, Reshape
from plexus.layers.merging import (
    Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add, average, concatenate,
    maximum, minimum, multiply, subtract,
)
