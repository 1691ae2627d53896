"""Preprocessing layers: transformations of raw data that live inside a model."""
from plexus.layers.preprocessing.normalization import Normalization
