"""Preprocessing layers: feature normalization, lookups, text, image augmentation, audio."""
from plexus.layers.preprocessing.normalization import Normalization
