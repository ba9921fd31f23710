"""Accuracy, loss, per-class accuracy and confusion matrix from class probabilities.

The metrics take probabilities from any runtime (Keras here, TFLite and ONNX
in the converter), so every model is scored by the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edge_sdk.spec import PreprocessSpec


def keras_probabilities(model: Any, images: np.ndarray, spec: PreprocessSpec, batch_size: int = 500) -> np.ndarray:
    """Class probabilities of a Keras model for uint8 images, in batches via ``predict_on_batch``."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = spec.normalize(images[start : start + batch_size])
        out.append(np.asarray(model.predict_on_batch(batch), dtype=np.float32))
    if not out:
        return np.zeros((0, spec.num_classes), dtype=np.float32)
    return np.concatenate(out)


def classification_metrics(probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, mean cross-entropy loss, per-class accuracy and confusion matrix (rows = true class)."""
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = len(class_names)
    if probs.shape != (labels.shape[0], n_classes):
        raise ValueError(f"probabilities of shape {probs.shape} do not match {labels.shape[0]} labels x {n_classes} classes")
    predicted = probs.argmax(axis=1)
    correct = predicted == labels
    true_p = np.clip(probs[np.arange(len(labels)), labels].astype(np.float64), 1e-12, 1.0)
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    support = matrix.sum(axis=1)
    per_class = {
        name: (float(matrix[i, i] / support[i]) if support[i] else None) for i, name in enumerate(class_names)
    }
    return {
        "images": int(labels.shape[0]),
        "accuracy": float(correct.mean()) if labels.size else 0.0,
        # the mean over the classes the data holds: a few big classes cannot hide the others
        "macro_accuracy": float(np.mean([v for v in per_class.values() if v is not None])) if labels.size else 0.0,
        "loss": float(-np.log(true_p).mean()) if labels.size else 0.0,
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
    }
