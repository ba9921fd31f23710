"""In-memory image sets: uint8 pixels, integer labels and class names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from cifar_edge.cli.errors import DatasetError


@dataclass(frozen=True)
class SkippedFile:
    """An image file that could not be read, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class ImageSet:
    """Images ``(N, H, W, 3)`` uint8 RGB with labels ``(N,)`` int64 indexing ``class_names``."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    split: str
    source: str
    skipped: tuple[SkippedFile, ...] = ()
    from_cache: bool = False

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise DatasetError(
                f"images must be uint8 of shape (N, H, W, 3), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DatasetError(f"{self.images.shape[0]} images but labels of shape {self.labels.shape}")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise DatasetError(f"labels must lie in 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, indices: np.ndarray, split: str | None = None) -> ImageSet:
        """The images at ``indices`` (a new set sharing class names and source)."""
        return replace(
            self,
            images=self.images[indices],
            labels=self.labels[indices],
            split=split or self.split,
            skipped=(),
        )

    def content_sha256(self) -> str:
        """SHA-256 of the decoded pixels, labels and class names: the same for the same data wherever
        it lives and whatever its container (image folder, official batches, cache)."""
        digest = hashlib.sha256()
        digest.update("\n".join(self.class_names).encode() + b"\0")
        digest.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        return digest.hexdigest()

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name, in class order."""
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, counts)}
