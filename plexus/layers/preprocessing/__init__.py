"""Preprocessing layers: feature normalization, lookups, text, image augmentation, audio."""
from plexus.layers.preprocessing.normalization import Normalization
from plexus.layers.preprocessing.categorical import CategoryEncoding, Discretization
from plexus.layers.preprocessing.hashing import HashedCrossing, Hashing
from plexus.layers.preprocessing.lookup import IntegerLookup, StringLookup
from plexus.layers.preprocessing.text_vectorization import TextVectorization
from plexus.layers.preprocessing.image_geometry import (
    CenterCrop, RandomCrop, RandomFlip, RandomRotation, RandomShear, RandomTranslation,
    RandomZoom, Resizing,
)
from plexus.layers.preprocessing.image_color import (
    AutoContrast, Equalization, RandomBrightness, RandomColorDegeneration, RandomColorJitter,
    RandomContrast, RandomGrayscale, RandomHue, RandomInvert, RandomPosterization,
    RandomSaturation, RandomSharpness, Solarization,
)
from plexus.layers.preprocessing.image_mixing import AugMix, CutMix, MixUp, RandAugment
from plexus.layers.preprocessing.audio import MelSpectrogram, STFTSpectrogram
from plexus.layers.preprocessing.image_filters import RandomErasing, RandomGaussianBlur
from plexus.layers.preprocessing.image_warp import RandomElasticTransform, RandomPerspective
from plexus.layers.preprocessing.image_clahe import ContrastLimitedAdaptiveHistogramEqualization
from plexus.layers.preprocessing.image_boxes import MaxNumBoundingBoxes
