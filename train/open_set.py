"""Open-set figures: how well a model tells pictures of its classes from pictures of other things.

A labelled folder may hold, beside its split folders (``test/<class>/``), a folder ``unknown/`` of
pictures that show none of the classes (``../shared/datasets/real-photos`` is laid out so).
:func:`open_set_metrics` scores the model's "unknown" score (the rule the SDK applies,
:func:`edge_sdk.spec.unknown_score`: the file's ``unknown_score`` against its ``unknown_threshold``)
on both sets:

* ``auroc``: the chance that a random known picture scores above a random unknown one (0.5: no
  separation, 1: perfect);
* ``unknown_rejected`` / ``known_rejected``: the shares the model's own threshold calls "unknown";
* ``unknown_accepted_at_known_90`` / ``_95``: the share of unknown pictures still given a label at
  the threshold that keeps 90% / 95% of the known ones (the false-positive rate at 90/95% TPR).

No TensorFlow here: ``cifar-edge evaluate FILE`` runs on an SDK-only install.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import InvalidImageError
from edge_sdk.images import image_files, load_image
from edge_sdk.spec import PreprocessSpec, unknown_score

#: the folder of pictures of other things, beside the split folders of a labelled data set
UNKNOWN_FOLDER = "unknown"


def outlier_half(path: str | os.PathLike[str]) -> int:
    """0 or 1: which half of an outlier folder a picture falls in, from its file name alone (stable
    across machines and file orders). ``cifar-edge train --outliers`` trains on half 0; half 1 is
    left for measuring (``cifar-edge evaluate --unknown-half 1``)."""
    return zlib.crc32(Path(path).name.encode("utf-8")) % 2


def outlier_photo_files(folder: str | os.PathLike[str], half: int | None = None) -> list[Path]:
    """The pictures of ``folder`` (recursively, sorted) in ``half`` (:func:`outlier_half`; ``None``: all).
    Raises ``OSError`` if the folder cannot be listed."""
    return [p for p in image_files(folder, recursive=True) if half is None or outlier_half(p) == half]


def unknown_folder(root: str | os.PathLike[str] | None) -> Path | None:
    """``root/unknown`` when ``root`` is a folder that has one, else None."""
    if root is None:
        return None
    folder = Path(root) / UNKNOWN_FOLDER
    return folder if folder.is_dir() else None


def load_photos(files: list[Path], spec: PreprocessSpec) -> tuple[np.ndarray, list[str]]:
    """The pictures at the model's input size and framing (the SDK's own decode and resize), and the
    paths of those that could not be used (skipped, as the data layer skips unreadable files)."""
    h, w = spec.input_size
    images, skipped = [], []
    for path in files:
        try:
            images.append(load_image(path, h, w, spec.resize))
        except InvalidImageError:
            skipped.append(str(path))
    return (np.stack(images) if images else np.zeros((0, h, w, 3), np.uint8)), skipped


def auroc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Area under the ROC curve of scores where ``positive`` should score higher (ties count half);
    ``None`` when either set is empty. The Mann-Whitney U statistic over the pooled ranks."""
    positive, negative = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if not len(positive) or not len(negative):
        return None
    pooled = np.concatenate([positive, negative])
    order = pooled.argsort(kind="mergesort")
    ranks = np.empty(len(pooled), np.float64)
    sorted_scores = pooled[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(pooled)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2.0
    return float(u / (len(positive) * len(negative)))


def unknown_scores(probabilities: np.ndarray, rule: str) -> np.ndarray:
    """:func:`edge_sdk.spec.unknown_score` of each row of ``(N, classes)`` probabilities. Raises
    ``MetadataError`` for a rule not in :data:`edge_sdk.spec.UNKNOWN_SCORES`."""
    return np.array([unknown_score(row, rule) for row in np.asarray(probabilities, np.float64).tolist()], np.float64)


def open_set_metrics(known_probs: np.ndarray, unknown_probs: np.ndarray, threshold: float | None,
                     score: str = "max-probability") -> dict[str, Any]:
    """Open-set figures (module docstring) from the class probabilities of known and unknown pictures,
    ``threshold`` being the model's own unknown threshold (``None``: it has none, nothing is rejected) on
    the scale of its ``score`` (:data:`edge_sdk.spec.UNKNOWN_SCORES`). Raises ``MetadataError`` for a
    score not there."""
    known, unknown = unknown_scores(known_probs, score), unknown_scores(unknown_probs, score)
    result: dict[str, Any] = {
        "score": score,
        "known_images": int(len(known)),
        "unknown_images": int(len(unknown)),
        "auroc": auroc(known, unknown),
        "threshold": threshold,
        "known_rejected": _share(known < threshold) if threshold is not None else 0.0,
        "unknown_rejected": _share(unknown < threshold) if threshold is not None else 0.0,
    }
    for keep in (90, 95):
        cut = float(np.quantile(known, 1 - keep / 100, method="lower")) if len(known) else None
        result[f"unknown_accepted_at_known_{keep}"] = _share(unknown >= cut) if cut is not None else None
    return result


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def calibrate_threshold(scores: np.ndarray, keep: float) -> float:
    """The unknown threshold that keeps the share ``keep`` of these (known) pictures: the ``1 - keep``
    quantile of their unknown scores (:func:`unknown_scores`), rounded down to 1/1000.
    Raises ``ValueError`` when there are none or ``keep`` is outside (0, 1]."""
    scores = np.asarray(scores, np.float64)
    if not len(scores):
        raise ValueError("no pictures to calibrate the unknown threshold on")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"the share of known pictures to keep must lie in (0, 1], got {keep}")
    cut = float(np.quantile(scores, 1.0 - keep, method="lower"))
    return float(np.floor(cut * 1000.0) / 1000.0)
