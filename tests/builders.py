"""Builders of small data sets in the exact on-disk formats the data layer reads."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from edge_sdk.spec import CIFAR10_CLASSES
from cifar_edge.train.data.cifar_official import BATCHES_DIRNAME, TEST_BATCHES, TRAIN_BATCHES

META_NAMES = [f"class_{i}".encode() for i in range(10)]


def make_images(seed: int, per_class: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 HWC images, ``per_class`` of each of the ten classes."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_class)
    rng.shuffle(labels)
    images = rng.integers(0, 256, size=(labels.size, 32, 32, 3), dtype=np.uint8)
    return images, labels.astype(np.int64)


def batch_dict(images: np.ndarray, labels: np.ndarray, label: bytes = b"batch") -> dict:
    n = images.shape[0]
    return {
        b"batch_label": label,
        b"labels": [int(x) for x in labels],
        b"data": images.transpose(0, 3, 1, 2).reshape(n, 3072),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def write_pickle(path: Path, obj: object) -> Path:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    return path


def write_meta(folder: Path, names: list = META_NAMES) -> None:
    write_pickle(
        folder / "batches.meta",
        {b"label_names": names, b"num_cases_per_batch": 20, b"num_vis": 3072},
    )


def make_official_folder(root: Path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Write a complete, tiny official layout under ``root/cifar-10-batches-py``."""
    folder = root / BATCHES_DIRNAME
    folder.mkdir(parents=True)
    originals = {}
    for seed, name in enumerate(TRAIN_BATCHES + TEST_BATCHES):
        images, labels = make_images(seed)
        write_pickle(folder / name, batch_dict(images, labels, name.encode()))
        originals[name] = (images, labels)
    write_meta(folder)
    (folder / "readme.html").write_text("<html></html>")
    return folder, originals


def build_good_archive(tmp_path: Path) -> tuple[Path, dict]:
    src = tmp_path / "src"
    _, originals = make_official_folder(src)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / BATCHES_DIRNAME, arcname=BATCHES_DIRNAME)
    return archive, originals


def make_image_tree(root: Path, classes=CIFAR10_CLASSES[:3], per_class: int = 4, size=(32, 32), seed: int = 0) -> dict:
    """Write ``root/train/<class>/NNNN.png`` and ``root/test/...`` with known pixels; return them."""
    rng = np.random.default_rng(seed)
    written: dict[str, list[tuple[Path, np.ndarray, int]]] = {}
    for split in ("train", "test"):
        written[split] = []
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
                path = folder / f"{i:04d}.png"
                Image.fromarray(pixels).save(path)
                written[split].append((path, pixels, label))
    return written
