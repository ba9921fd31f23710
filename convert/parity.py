"""Compare an exported model with its Keras source on the same images, and judge it against thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk.classifier import Classifier
from cifar_edge.cli.formats import get_format
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


#: spec fields ``cifar-edge convert`` sets in the files rather than copying them from the model's spec.json:
#: the framing (``--resize``) and the calibrated "unknown" rule (``--unknown-keep``); parity does not
#: hold them against spec.json
CONVERT_TIME_KEYS = ("resize", "unknown_score", "unknown_threshold")


def compare(
    clf: Classifier,
    images: np.ndarray,
    labels: np.ndarray,
    reference_probs: np.ndarray,
    spec: PreprocessSpec,
    probs: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy of an exported file and its agreement with the reference (Keras) probabilities,
    measured the way users run it: ``clf`` (an :class:`edge_sdk.Classifier` on the file) reads the
    labels and preprocessing embedded in it and encodes the uint8 ``images`` itself (``probs``: its
    probabilities when already computed). A negative label (a picture of none of the classes) counts
    for agreement, not for accuracy.

    ``metadata_mismatch`` lists every field of the embedded spec that differs from ``spec`` (the
    Keras model's), but the ones ``convert`` sets itself (:data:`CONVERT_TIME_KEYS`): :func:`judge`
    fails such a file whatever its accuracy.
    """
    probs = clf.probabilities_batch(images) if probs is None else probs
    embedded = clf.spec.to_dict()
    expected = spec.to_dict()
    mismatch = sorted(key for key in expected.keys() | embedded.keys()
                      if key not in CONVERT_TIME_KEYS and expected.get(key) != embedded.get(key))
    known = np.asarray(labels) >= 0
    metrics = classification_metrics(probs[known], labels[known], spec.labels)
    reference = classification_metrics(reference_probs[known], labels[known], spec.labels)
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


#: flips listed per file (``flip_count`` always counts them all)
MAX_LISTED_FLIPS = 500


def explain(probs: np.ndarray, reference_probs: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
            files: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Why a file disagrees with the reference (Keras): every image whose top-1 flips (up to
    :data:`MAX_LISTED_FLIPS`, in image order) with its true label (None: none of the classes), Keras's
    top-1 and top-2 and their margin (top-1 minus top-2 probability), and the file's top-1 and its
    probability; the Keras margins of the flips against every image's; and the confidence drift
    (the absolute difference of the two top-1 probabilities). ``files``: a name per image. Raises nothing.
    """
    rows = np.arange(len(probs))
    order = np.argsort(-reference_probs, axis=1, kind="stable")
    k1, k2 = order[:, 0], order[:, 1]
    margin = reference_probs[rows, k1] - reference_probs[rows, k2]
    top = probs.argmax(axis=1)
    flipped = np.flatnonzero(top != k1)
    flips = []
    for i in flipped[:MAX_LISTED_FLIPS]:
        flips.append({
            "index": int(i),
            **({"file": files[i]} if files is not None else {}),
            "label": class_names[labels[i]] if labels[i] >= 0 else None,
            "keras_top1": class_names[k1[i]],
            "keras_top1_prob": round(float(reference_probs[i, k1[i]]), 4),
            "keras_top2": class_names[k2[i]],
            "keras_margin": round(float(margin[i]), 4),
            "file_top1": class_names[top[i]],
            "file_prob": round(float(probs[i, top[i]]), 4),
        })
    drift = probs.max(axis=1) - reference_probs.max(axis=1)
    empty = not len(probs)
    return {
        "flip_count": int(len(flipped)),
        "flips": flips,
        "flip_keras_margin": None if not len(flipped) else {
            "median": round(float(np.median(margin[flipped])), 4), "max": round(float(margin[flipped].max()), 4)},
        "keras_margin_median": None if empty else round(float(np.median(margin)), 4),
        "confidence_drift": None if empty else {
            "mean": float(np.abs(drift).mean()), "max": float(np.abs(drift).max()), "mean_signed": float(drift.mean())},
    }


def cross_agreement(files: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Top-1 agreement of every pair of quantized files with each other (TFLite int8 vs ONNX int8), from
    ``files`` (file name -> probabilities on the same images), in the order given. Raises nothing."""
    names = list(files)
    pairs = []
    for a, name in enumerate(names):
        for other in names[a + 1:]:
            same = files[name].argmax(axis=1) == files[other].argmax(axis=1)
            pairs.append({"files": [name, other], "top1_agreement": float(same.mean()) if same.size else 1.0,
                          "disagreements": int((~same).sum())})
    return pairs
