"""Ready-made image models with Keras's constructors, layer names and weight files.

    from plexus.applications import VGG16
    from plexus.applications.vgg16 import preprocess_input, decode_predictions
    model = VGG16(weights=None)

Each family's module (`vgg16`, `vgg19`, `resnet`, `resnet50`, `resnet_v2`, `inception_v3`,
`inception_resnet_v2`, `xception`, `mobilenet`, `mobilenet_v2`, `mobilenet_v3`, `densenet`,
`nasnet`, `efficientnet`, `efficientnet_v2`, `convnext`) also has its `preprocess_input` and
`decode_predictions`.
"""
from plexus.applications import (
    convnext, densenet, efficientnet, efficientnet_v2, imagenet_utils, inception_resnet_v2,
    inception_v3, mobilenet, mobilenet_v2, mobilenet_v3, nasnet, resnet, resnet50, resnet_v2,
    vgg16, vgg19, xception,
)
from plexus.applications.convnext import (
    ConvNeXtBase, ConvNeXtLarge, ConvNeXtSmall, ConvNeXtTiny, ConvNeXtXLarge,
)
from plexus.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from plexus.applications.efficientnet import (
    EfficientNetB0, EfficientNetB1, EfficientNetB2, EfficientNetB3, EfficientNetB4, EfficientNetB5,
    EfficientNetB6, EfficientNetB7,
)
from plexus.applications.efficientnet_v2 import (
    EfficientNetV2B0, EfficientNetV2B1, EfficientNetV2B2, EfficientNetV2B3, EfficientNetV2L,
    EfficientNetV2M, EfficientNetV2S,
)
from plexus.applications.inception_resnet_v2 import InceptionResNetV2
from plexus.applications.inception_v3 import InceptionV3
from plexus.applications.mobilenet import MobileNet
from plexus.applications.mobilenet_v2 import MobileNetV2
from plexus.applications.mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from plexus.applications.nasnet import NASNetLarge, NASNetMobile
from plexus.applications.resnet import ResNet50, ResNet101, ResNet152
from plexus.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from plexus.applications.vgg16 import VGG16
from plexus.applications.vgg19 import VGG19
from plexus.applications.xception import Xception
