"""The pictures ``cifar-edge parity`` compares on: a data set's test split, or every photo of a photo folder.

A *photo folder* is a folder of pictures that is not a full test split of the model's classes, such
as the real-photo set (``test/<class>/`` for 8 of the 10 classes, and ``unknown/`` for pictures of
none of them). Parity loads **all** its pictures (recursively, sorted by path): a picture whose folder
is named after one of the model's classes has that label, every other one is unlabelled (-1). Flips
and agreement count every picture; accuracy counts the labelled ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import InvalidImageError
from cifar_edge.cli.errors import DatasetError
from edge_sdk.images import IMAGE_SUFFIXES, load_image
from edge_sdk.spec import PreprocessSpec
from cifar_edge.train.data import resolve_source, stratified_indices
from cifar_edge.train.data.cifar_official import find_batches_dir

#: the label of a picture of none of the model's classes
UNLABELLED = -1


@dataclass(frozen=True)
class ParityImages:
    """Images ``(N, H, W, 3)`` uint8 at the model's input size, labels ``(N,)`` (:data:`UNLABELLED` for
    none of the classes) and, for a photo folder, each picture's path relative to it."""

    images: np.ndarray
    labels: np.ndarray
    kind: str  # "test split" or "photo folder"
    source: str
    files: tuple[str, ...] | None = None

    def describe(self) -> dict[str, Any]:
        """What was compared on, for the parity JSON."""
        labelled = int((self.labels != UNLABELLED).sum())
        return {"kind": self.kind, "source": self.source, "images": int(len(self.labels)), "labelled": labelled,
                "unlabelled": int(len(self.labels)) - labelled}


def _pictures(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def is_photo_folder(path: str | os.PathLike[str], class_names: tuple[str, ...]) -> bool:
    """True for a folder of pictures that is not a full test split of ``class_names``: its ``test/``
    lacks a class folder (or has another), or a top-level folder holds pictures itself (``unknown/``).
    Official CIFAR-10 batches (or their archive) are no photo folder. Raises nothing."""
    root = Path(path)
    if not root.is_dir() or find_batches_dir(root) is not None or any(root.glob("*.tar.gz")):
        return False
    test = root / "test"
    classes = {p.name for p in test.iterdir() if p.is_dir()} if test.is_dir() else set()
    loose = any(d.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()) for d in root.iterdir())
    return (classes != set(class_names) or loose) and next(_pictures(root), None) is not None


def load_photo_folder(path: str | os.PathLike[str], spec: PreprocessSpec, limit: int | None = None) -> ParityImages:
    """Every picture under ``path`` resized to ``spec``'s input by the SDK's own resize, labelled by its
    folder's name (see the module docstring); ``limit`` keeps that many, evenly spaced in path order.

    Raises :class:`DatasetError` when there is no picture or one cannot be decoded.
    """
    root = Path(path)
    files = sorted(_pictures(root))
    if not files:
        raise DatasetError(f"no pictures ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    if limit is not None and limit < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    height, width = spec.input_size
    images = []
    for file in files:
        try:
            images.append(load_image(file, height, width, spec.resize))
        except InvalidImageError as exc:
            raise DatasetError(f"cannot compare on {file}: {exc}") from exc
    index = {name: i for i, name in enumerate(spec.labels)}
    labels = np.array([index.get(f.parent.name, UNLABELLED) for f in files], dtype=np.int64)
    return ParityImages(np.stack(images), labels, "photo folder", str(root),
                        tuple(f.relative_to(root).as_posix() for f in files))


def load_parity_images(data: str | None, spec: PreprocessSpec, *, cache_dir: str | None = None,
                       limit: int | None = None) -> ParityImages:
    """The pictures parity compares on: a photo folder's (:func:`is_photo_folder`) or the test split of
    the data set found from ``data`` (``limit``: a stratified subset). Raises :class:`DatasetError`."""
    if data is not None and is_photo_folder(data, spec.labels):
        return load_photo_folder(data, spec, limit)
    source = resolve_source(data, cache_dir=cache_dir, progress=False)
    test = source.load("test", spec.labels, spec=spec)
    if limit is not None and limit < len(test):
        test = test.subset(stratified_indices(test.labels, limit, 0))
    return ParityImages(test.images, test.labels, "test split", str(source.path))
