"""Seeded, stratified sampling: validation splits and calibration sets."""

from __future__ import annotations

import numpy as np

from cifar_edge.cli.errors import DatasetError

from .dataset import ImageSet


def stratified_indices(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Pick ``n`` indices with each class represented in proportion to its size.

    Per-class quotas use the largest-remainder method so they add up to ``n``
    exactly; within a class the choice is a seeded random permutation. The
    result is sorted, so the same seed always gives the same subset.
    """
    labels = np.asarray(labels)
    total = labels.shape[0]
    if not 0 <= n <= total:
        raise DatasetError(f"cannot draw {n} images from a set of {total}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (n / total) if total else counts * 0.0
    quota = np.floor(exact).astype(int)
    remainder_order = np.argsort(-(exact - quota), kind="stable")
    quota[remainder_order[: n - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    picked = [
        rng.permutation(np.flatnonzero(labels == cls))[:q] for cls, q in zip(classes, quota)
    ]
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, dtype=np.int64)


def train_val_split(data: ImageSet, val_size: int = 5000, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Split ``data`` into (train, validation) with a stratified, seeded validation set."""
    if val_size >= len(data):
        raise DatasetError(f"validation size {val_size} leaves no training images out of {len(data)}")
    val_idx = stratified_indices(data.labels, val_size, seed)
    train_mask = np.ones(len(data), dtype=bool)
    train_mask[val_idx] = False
    return data.subset(np.flatnonzero(train_mask), "train"), data.subset(val_idx, "val")
