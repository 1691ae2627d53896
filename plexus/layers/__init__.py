"""All public layers, re-exported by hand so that grep finds every name."""
from plexus.layers.layer import Layer
from plexus.layers.input_layer import Input, InputLayer
from plexus.layers.input_spec import InputSpec
from plexus.layers.core import Activation, Dense, Dropout, Embedding, Flatten, Lambda, Reshape
from plexus.layers.core import Identity
from plexus.layers.merging import (
    Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add, average, concatenate,
    maximum, minimum, multiply, subtract,
)
from plexus.layers.conv import Conv1D, Conv2D, Conv3D, Convolution1D, Convolution2D, Convolution3D
from plexus.layers.conv_transpose import (
    Conv1DTranspose, Conv2DTranspose, Conv3DTranspose, Convolution1DTranspose,
    Convolution2DTranspose, Convolution3DTranspose,
)
from plexus.layers.depthwise_conv import (
    DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D, SeparableConvolution1D,
    SeparableConvolution2D,
)
from plexus.layers.reshaping import (
    Cropping1D, Cropping2D, Cropping3D, Masking, Permute, RepeatVector, Rescaling, UpSampling1D,
    UpSampling2D, UpSampling3D, ZeroPadding1D, ZeroPadding2D, ZeroPadding3D,
)
from plexus.layers.pooling import (
    AveragePooling1D, AveragePooling2D, AveragePooling3D, AvgPool1D, AvgPool2D, AvgPool3D,
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalAvgPool1D,
    GlobalAvgPool2D, GlobalAvgPool3D, GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D,
    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPool1D, MaxPool2D, MaxPool3D,
    MaxPooling1D, MaxPooling2D, MaxPooling3D,
)
from plexus.layers.normalization import (
    BatchNormalization, GroupNormalization, LayerNormalization, UnitNormalization,
)
from plexus.layers.activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from plexus.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from plexus.layers.recurrent import GRU, LSTM, RNN, SimpleRNN
from plexus.layers.regularization import (
    ActivityRegularization, AlphaDropout, GaussianDropout, GaussianNoise, SpatialDropout1D,
    SpatialDropout2D, SpatialDropout3D,
)
from plexus.layers.wrappers import Bidirectional, TimeDistributed, Wrapper
from plexus.layers.attention import AdditiveAttention, Attention, Dot, MultiHeadAttention, dot
from plexus.layers.adaptive_pooling import (
    AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D, AdaptiveMaxPooling2D, AdaptiveMaxPooling3D,
)
from plexus.layers.rms_normalization import RMSNormalization
from plexus.layers.einsum_dense import EinsumDense
from plexus.layers.grouped_query_attention import GroupedQueryAttention, GroupQueryAttention
from plexus.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from plexus.layers.spectral_normalization import SpectralNormalization
from plexus.layers.reversible_embedding import ReversibleEmbedding
from plexus.layers.pipeline import Pipeline
from plexus.layers.torch_module_wrapper import TorchModuleWrapper
from plexus.layers.preprocessing import (
    AugMix, AutoContrast, CategoryEncoding, CenterCrop,
    ContrastLimitedAdaptiveHistogramEqualization, CutMix, Discretization, Equalization,
    HashedCrossing, Hashing, IntegerLookup, MaxNumBoundingBoxes, MelSpectrogram, MixUp,
    Normalization, RandAugment, RandomBrightness, RandomColorDegeneration, RandomColorJitter,
    RandomContrast, RandomCrop, RandomElasticTransform, RandomErasing, RandomFlip,
    RandomGaussianBlur, RandomGrayscale, RandomHue, RandomInvert, RandomPerspective,
    RandomPosterization, RandomRotation, RandomSaturation, RandomSharpness, RandomShear,
    RandomTranslation, RandomZoom, Resizing, Solarization, STFTSpectrogram, StringLookup,
    TextVectorization,
)
from plexus.layers.serialization import deserialize, serialize
