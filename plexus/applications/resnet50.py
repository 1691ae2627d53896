"""`plexus.applications.resnet50`: ResNet50 and its preprocessing, under Keras's module path."""
from plexus.applications.resnet import ResNet50, decode_predictions, preprocess_input

__all__ = ["ResNet50", "preprocess_input", "decode_predictions"]
