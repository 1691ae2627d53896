"""Preprocessing layers: feature normalization, lookups, text, image augmentation, audio."""
from plexus.layers.preprocessing.normalization import Normalization
from plexus.layers.preprocessing.categorical import CategoryEncoding, Discretization
from plexus.layers.preprocessing.hashing import HashedCrossing, Hashing
from plexus.layers.preprocessing.lookup import IntegerLookup, StringLookup
from plexus.layers.preprocessing.text_vectorization import TextVectorization
