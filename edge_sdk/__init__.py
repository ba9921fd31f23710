"""edge_sdk: a lightweight image classifier runtime over LiteRT and ONNX Runtime.

Importing this package never imports TensorFlow, nor anything from the ``cifar_edge`` tools.
"""

from .classifier import Category, ClassificationResult, Classifier, Timing
from .errors import (BackendUnavailableError, ClosedError, EdgeSDKError, InferenceError, InvalidArgumentError,
                     InvalidArgumentTypeError, InvalidImageError, MetadataError, MissingExtraError, ModelLoadError)
from .live import LiveClassifier
from .spec import CIFAR10_CLASSES, PreprocessSpec

__version__ = "0.1.0"

__all__ = [
    "Category", "ClassificationResult", "Classifier", "Timing", "LiveClassifier", "PreprocessSpec", "CIFAR10_CLASSES",
    "__version__",
    "EdgeSDKError", "BackendUnavailableError", "ClosedError", "InferenceError", "InvalidArgumentError",
    "InvalidArgumentTypeError", "InvalidImageError", "MetadataError", "MissingExtraError", "ModelLoadError",
]
