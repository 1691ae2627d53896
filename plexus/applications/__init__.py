"""Ready-made image models with Keras's constructors, layer names and weight files.

    from plexus.applications import VGG16
    from plexus.applications.vgg16 import preprocess_input, decode_predictions
    model = VGG16(weights=None)

Each family's module (`vgg16`, `vgg19`, `resnet`, `resnet50`, `resnet_v2`, `inception_v3`,
`xception`, `mobilenet_v2`, `densenet`) also has its `preprocess_input` and
`decode_predictions`.
"""
from plexus.applications import (
    densenet, imagenet_utils, inception_v3, mobilenet_v2, resnet, resnet50, resnet_v2, vgg16,
    vgg19, xception,
)
from plexus.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from plexus.applications.inception_v3 import InceptionV3
from plexus.applications.mobilenet_v2 import MobileNetV2
from plexus.applications.resnet import ResNet50, ResNet101, ResNet152
from plexus.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from plexus.applications.vgg16 import VGG16
from plexus.applications.vgg19 import VGG19
from plexus.applications.xception import Xception
