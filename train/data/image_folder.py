"""Image-folder data sets: ``<root>/<split>/<class>/*.(jpg|jpeg|png|bmp|webp)``.

Decoded arrays are cached as ``.npz`` files keyed on the file list, sizes and
modification times, so the 60,000 CIFAR-10 JPEGs are decoded once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cifar_edge.cli.atomic import atomic_path
from edge_sdk.errors import InvalidImageError
from cifar_edge.cli.errors import DatasetError
from edge_sdk.images import load_image
from cifar_edge.cli.progress import progress_bar
from edge_sdk.spec import CIFAR10_CLASSES, PreprocessSpec

from .dataset import ImageSet, SkippedFile

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_CACHE_FORMAT = 1


def is_image_folder_root(path: Path) -> bool:
    """True if ``path`` has at least one split folder holding class folders."""
    return bool(list_splits(path))


def list_splits(root: str | os.PathLike[str]) -> list[str]:
    """Names of the split folders under ``root`` (folders that contain class folders)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and _class_dirs(d)
    )


def _class_dirs(split_dir: Path) -> list[Path]:
    return [d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")]


def discover_classes(root: str | os.PathLike[str], class_names: Sequence[str] | None = None) -> tuple[str, ...]:
    """Class names of an image-folder tree, the same for every split.

    Explicit ``class_names`` win (every class folder must be among them). Otherwise
    the folder names across all splits, in CIFAR-10's official order when they are
    exactly the CIFAR-10 classes, sorted alphabetically if not.
    """
    root = Path(root)
    folders = sorted({d.name for split in list_splits(root) for d in _class_dirs(root / split)})
    if class_names is not None:
        names = tuple(class_names)
        if len(set(names)) != len(names):
            raise DatasetError("the given class names contain duplicates")
        unknown = sorted(set(folders) - set(names))
        if unknown:
            raise DatasetError(f"class folders not among the given class names: {', '.join(unknown)} "
                               f"(folders: {', '.join(folders)}; given: {', '.join(names)})")
    elif set(folders) == set(CIFAR10_CLASSES):
        names = CIFAR10_CLASSES
    else:
        names = tuple(folders)
    if len(names) < 2:
        found = f"only {names[0]!r}" if names else "none"
        raise DatasetError(f"an image-folder data set needs at least 2 class folders under {root}/<split>/, found {found}")
    return names


def _scan(split_dir: Path, class_names: Sequence[str]) -> list[tuple[Path, int, int, int]]:
    """(path, label, size, mtime_ns) for every image file, in class then name order."""
    entries = []
    for label, name in enumerate(class_names):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue
        with os.scandir(class_dir) as it:
            files = sorted(
                (e for e in it if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)),
                key=lambda e: e.name,
            )
        for e in files:
            st = e.stat()
            entries.append((Path(e.path), label, st.st_size, st.st_mtime_ns))
    return entries


def _cache_key(split_dir: Path, entries, class_names, size: tuple[int, int], resize: str = "stretch") -> str:
    h = hashlib.sha256()
    # a stretch cache keeps the key (and file name) it had before the resize mode was part of it
    h.update(repr((_CACHE_FORMAT, tuple(class_names), size) + ((resize,) if resize != "stretch" else ())).encode())
    for path, label, nbytes, mtime in entries:
        h.update(f"{path.relative_to(split_dir)}\0{label}\0{nbytes}\0{mtime}\n".encode())
    return h.hexdigest()[:24]


def labels_in_file_order(root: str | os.PathLike[str], split: str, class_names: Sequence[str], n: int) -> list[int]:
    """The labels of the first ``n`` image files of a split ordered by file name across the class folders
    (``0000.jpg`` of every class, then ``0001.jpg``, ...): the order a folder tree has, unlike the loaded
    arrays, which hold one class after the other. Decodes nothing."""
    entries = sorted(_scan(Path(root) / split, class_names), key=lambda e: (e[0].name, e[1]))
    return [label for _path, label, _size, _mtime in entries[:n]]


def load_image_folder_split(
    root: str | os.PathLike[str],
    split: str,
    *,
    class_names: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    resize: str = "stretch",
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> ImageSet:
    """Load one split of an image-folder tree, decoding each image to RGB ``size`` (``(height, width)``;
    default: the default :class:`~edge_sdk.spec.PreprocessSpec`'s) with the SDK's ``resize`` mode.

    Unreadable files are skipped and listed in ``ImageSet.skipped`` (and logged),
    never fatal. With ``cache_dir`` the decoded arrays are reused while no file
    was added, removed or changed. ``progress`` draws a bar on stderr while decoding.
    """
    size = tuple(size) if size is not None else PreprocessSpec().input_size
    root = Path(root)
    split_dir = root / split
    if not split_dir.is_dir():
        available = ", ".join(list_splits(root)) or "none"
        raise DatasetError(f"no split '{split}' in image folder {root} (available: {available})")
    names = discover_classes(root, class_names)
    entries = _scan(split_dir, names)
    if not entries:
        raise DatasetError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {split_dir}")

    cache_file = None
    if cache_dir is not None:
        key = _cache_key(split_dir, entries, names, size, resize)
        cache_file = Path(cache_dir) / "decoded" / f"{split}-{size[0]}x{size[1]}-{'' if resize == 'stretch' else resize + '-'}{key}.npz"
        cached = _read_cache(cache_file, split_dir, split, names)
        if cached is not None:
            return cached

    images = np.empty((len(entries), size[0], size[1], 3), dtype=np.uint8)
    labels = np.empty(len(entries), dtype=np.int64)
    skipped: list[SkippedFile] = []
    n = 0
    with progress_bar(len(entries), f"decoding {split}", progress, unit="img") as bar:
        for path, label, _, _ in entries:
            bar.update()
            try:
                images[n] = load_image(path, size[0], size[1], resize)
            except InvalidImageError as exc:
                skipped.append(SkippedFile(str(path), str(exc)))
                continue
            labels[n] = label
            n += 1
    if n == 0:
        raise DatasetError(
            f"none of the {len(entries)} image files under {split_dir} could be decoded "
            f"(first: {skipped[0].reason})"
        )
    if skipped:
        log.warning("skipped %d unreadable image file(s) under %s", len(skipped), split_dir)
    result = ImageSet(images[:n], labels[:n], names, split, str(split_dir), tuple(skipped))
    if cache_file is not None:
        _write_cache(cache_file, result)
    return result


def _write_cache(cache_file: Path, data: ImageSet) -> None:
    try:
        with atomic_path(cache_file, suffix=".npz") as tmp:
            np.savez(
                tmp,
                images=data.images,
                labels=data.labels,
                class_names=np.array(data.class_names),
                skipped_paths=np.array([s.path for s in data.skipped], dtype=str),
                skipped_reasons=np.array([s.reason for s in data.skipped], dtype=str),
            )
    except OSError as exc:  # a read-only or full cache must not stop loading
        log.warning("could not write the decoded-image cache %s: %s", cache_file, exc)


def _read_cache(cache_file: Path, split_dir: Path, split: str, names: tuple[str, ...]) -> ImageSet | None:
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            if tuple(z["class_names"].tolist()) != names:
                return None
            skipped = tuple(
                SkippedFile(p, r) for p, r in zip(z["skipped_paths"].tolist(), z["skipped_reasons"].tolist())
            )
            return ImageSet(
                z["images"], z["labels"], names, split, str(split_dir), skipped, from_cache=True
            )
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, DatasetError) as exc:
        log.warning("ignoring unreadable cache file %s: %s", cache_file, exc)
        return None
