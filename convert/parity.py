"""Compare an exported model with its Keras source on the same images, and judge it against thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk.classifier import Classifier
from edge_sdk.formats import get_format
from edge_sdk.spec import PreprocessSpec
from cifar_edge.train.evaluation import classification_metrics


@dataclass(frozen=True)
class Thresholds:
    """Pass bars: float exports must match Keras almost exactly; int8 ones may lose a little."""

    float_min_agreement: float = 0.999
    float_max_abs_diff: float = 1e-4
    int8_min_agreement: float = 0.99
    int8_max_accuracy_drop: float = 0.005


EPSILON = 1e-9  # accuracy differences are ratios of counts: 0.855 - 0.850 must not exceed 0.005


def compare(
    clf: Classifier,
    images: np.ndarray,
    labels: np.ndarray,
    reference_probs: np.ndarray,
    spec: PreprocessSpec,
) -> dict[str, Any]:
    """Accuracy of an exported file and its agreement with the reference (Keras) probabilities,
    measured the way users run it: ``clf`` (an :class:`edge_sdk.Classifier` on the file) reads the
    labels and preprocessing embedded in it and encodes the uint8 ``images`` itself.

    ``metadata_mismatch`` lists every field of the embedded spec that differs from ``spec`` (the
    Keras model's): :func:`judge` fails such a file whatever its accuracy.
    """
    probs = clf.probabilities_batch(images)
    embedded = clf.spec.to_dict()
    expected = spec.to_dict()
    mismatch = sorted(key for key in expected.keys() | embedded.keys() if expected.get(key) != embedded.get(key))
    metrics = classification_metrics(probs, labels, spec.labels)
    reference = classification_metrics(reference_probs, labels, spec.labels)
    diff = np.abs(probs - reference_probs)
    return {
        "images": int(len(labels)),
        "accuracy": metrics["accuracy"],
        "keras_accuracy": reference["accuracy"],
        "accuracy_drop": reference["accuracy"] - metrics["accuracy"],
        "top1_agreement": float((probs.argmax(1) == reference_probs.argmax(1)).mean()),
        "mean_abs_prob_diff": float(diff.mean()),
        "max_abs_prob_diff": float(diff.max()),
        "loss": metrics["loss"],
        "metadata_mismatch": mismatch,
    }


def judge(fmt: str, result: dict[str, Any], thresholds: Thresholds) -> list[str]:
    """The bars ``result`` misses (empty when it passes): quantized formats (by the format table) may lose a little.

    Raises :class:`EdgeSDKError` for an unknown format name.
    """
    failures = [f"embedded metadata differs from the model's in: {', '.join(result['metadata_mismatch'])}"] \
        if result.get("metadata_mismatch") else []
    if get_format(fmt).quantized:
        if result["top1_agreement"] < thresholds.int8_min_agreement - EPSILON:
            failures.append(f"agreement {result['top1_agreement']:.4f} < {thresholds.int8_min_agreement}")
        if result["accuracy_drop"] > thresholds.int8_max_accuracy_drop + EPSILON:
            failures.append(f"accuracy drop {result['accuracy_drop']:.4f} > {thresholds.int8_max_accuracy_drop}")
    else:
        if result["top1_agreement"] < thresholds.float_min_agreement - EPSILON:
            failures.append(f"agreement {result['top1_agreement']:.4f} < {thresholds.float_min_agreement}")
        if result["max_abs_prob_diff"] > thresholds.float_max_abs_diff:
            failures.append(f"max |dp| {result['max_abs_prob_diff']:.2e} > {thresholds.float_max_abs_diff:.0e}")
    return failures
