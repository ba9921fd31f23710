"""Find the data: ``--data PATH`` > ``$CIFAR10_DIR`` > the cache > a download.

A location may be an image-folder tree, an official ``cifar-10-batches-py``
folder, the official ``cifar-10-python.tar.gz`` archive, or a folder holding
one of those.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cifar_edge.cli.errors import DatasetError
from edge_sdk.inputs import to_rgb_array
from edge_sdk.spec import PreprocessSpec

from . import cifar_official, image_folder
from .cache import default_cache_dir
from .dataset import ImageSet
from .download import ARCHIVE_NAME, OFFICIAL_MD5, OFFICIAL_URL, download_cifar10

DATA_ENV = "CIFAR10_DIR"
OFFICIAL_SPLITS = ("train", "test")


@dataclass(frozen=True)
class DataSource:
    """A located data set: its format, where it is and how it was found."""

    kind: str  # "image-folder" or "official"
    path: Path
    origin: str  # "--data", "$CIFAR10_DIR", "cache" or "download"
    cache_dir: Path
    progress: bool = False  # draw a bar on stderr while decoding an image folder

    def splits(self) -> list[str]:
        """Split names this source provides."""
        if self.kind == "official":
            return list(OFFICIAL_SPLITS)
        return image_folder.list_splits(self.path)

    def class_names(self) -> tuple[str, ...]:
        """The class names, found without decoding any image (a cheap check before long work).

        Raises :class:`DatasetError` for an image-folder tree with fewer than two
        classes or an unreadable (or unsafe) ``batches.meta``.
        """
        if self.kind == "official":
            return cifar_official.load_label_names(self.path)
        return image_folder.discover_classes(self.path)

    def load(self, split: str, class_names: Sequence[str] | None = None, *,
             spec: PreprocessSpec | None = None) -> ImageSet:
        """Load one split as uint8 RGB images of ``spec``'s input size, resized by its ``resize`` mode
        with the SDK's own resize (default spec: CIFAR-10's 32x32, so the official batches stay as they
        are), with labels. Raises :class:`DatasetError` when the data cannot be read or its classes differ."""
        spec = spec or PreprocessSpec()
        if self.kind == "official":
            images, labels, names = cifar_official.load_official_split(self.path, split)
            if class_names is not None and tuple(class_names) != tuple(names):
                raise DatasetError(
                    f"the official CIFAR-10 batches have classes {', '.join(names)}; "
                    "other class names cannot be imposed on them"
                )
            if images.shape[1:3] != spec.input_size:
                images = np.stack([to_rgb_array(image, *spec.input_size, resize=spec.resize) for image in images])
            return ImageSet(images, labels, tuple(names), split, str(self.path))
        return image_folder.load_image_folder_split(
            self.path, split, class_names=class_names, size=spec.input_size, resize=spec.resize,
            cache_dir=self.cache_dir, progress=self.progress
        )


def locate(path: str | os.PathLike[str], origin: str, cache_dir: Path) -> DataSource:
    """Recognize the data set at ``path``; extract an official archive into the cache."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"no data at {path} (from {origin}): the path does not exist")
    if path.is_file():
        if path.name.endswith((".tar.gz", ".tgz")):
            return _from_archive(path, origin, cache_dir)
        raise DatasetError(
            f"{path} (from {origin}) is a file but not a .tar.gz archive; expected an image-folder tree, "
            f"a {cifar_official.BATCHES_DIRNAME} folder or {ARCHIVE_NAME}"
        )
    batches = cifar_official.find_batches_dir(path)
    if batches is not None:
        return DataSource("official", batches, origin, cache_dir)
    if image_folder.is_image_folder_root(path):
        return DataSource("image-folder", path, origin, cache_dir)
    if (path / ARCHIVE_NAME).is_file():
        return _from_archive(path / ARCHIVE_NAME, origin, cache_dir)
    raise DatasetError(
        f"no data set recognized in {path} (from {origin}): expected <split>/<class>/ image folders, "
        f"a {cifar_official.BATCHES_DIRNAME} folder or {ARCHIVE_NAME}"
    )


def _from_archive(archive: Path, origin: str, cache_dir: Path) -> DataSource:
    st = archive.stat()
    key = hashlib.sha256(f"{archive.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
    dest = cache_dir / "extracted" / key
    try:
        batches = cifar_official.extract_archive(archive, dest)
    except DatasetError:
        for folder in (dest, dest.parent):  # a refused or unreadable archive leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return DataSource("official", batches, origin, cache_dir)


def resolve_source(
    data: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    url: str = OFFICIAL_URL,
    md5: str = OFFICIAL_MD5,
    progress: bool = True,
) -> DataSource:
    """Find the data set, in order: ``data``, ``$CIFAR10_DIR``, the cache, then a download.

    A ``data`` path or ``$CIFAR10_DIR`` that holds no data set is an error (no
    silent fallback to another source). Without either, the cache folder is
    used, and the official archive is downloaded into it when ``download``.
    ``progress`` draws bars on stderr (download, and decoding an image folder) when it is a terminal.
    """
    progress = progress and sys.stderr.isatty()
    source = _find_source(data, env, cache_dir, download, url, md5, progress)
    return replace(source, progress=progress)


def _find_source(data: str | os.PathLike[str] | None, env: Mapping[str, str] | None,
                 cache_dir: str | os.PathLike[str] | None, download: bool, url: str, md5: str,
                 progress: bool) -> DataSource:
    env = os.environ if env is None else env
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(env)
    if data is not None and str(data) != "":
        return locate(data, "--data", cache)
    if env.get(DATA_ENV):
        return locate(env[DATA_ENV], f"${DATA_ENV}", cache)
    cached_batches = cifar_official.find_batches_dir(cache)
    if cached_batches is not None:
        return DataSource("official", cached_batches, "cache", cache)
    if (cache / ARCHIVE_NAME).is_file():
        return _from_archive(cache / ARCHIVE_NAME, "cache", cache)
    if not download:
        raise DatasetError(
            f"no CIFAR-10 data found: pass --data PATH, set ${DATA_ENV}, or allow the download into {cache}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    archive = download_cifar10(cache, url=url, md5=md5, progress=progress)
    return _from_archive(archive, "download", cache)


def load_split(split: str, data: str | os.PathLike[str] | None = None, **kwargs) -> ImageSet:
    """Resolve the data set (see :func:`resolve_source`) and load one split."""
    class_names = kwargs.pop("class_names", None)
    return resolve_source(data, **kwargs).load(split, class_names)
