"""Shared fixtures: the real CIFAR-10 tree (from $CIFAR10_DIR) and small synthetic trees."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_sdk.spec import CIFAR10_CLASSES


@pytest.fixture(scope="session")
def cifar10_dir() -> Path:
    """The full CIFAR-10 image-folder tree named by $CIFAR10_DIR (tests never download)."""
    value = os.environ.get("CIFAR10_DIR")
    if not value or not Path(value).is_dir():
        pytest.fail(
            "set CIFAR10_DIR to the CIFAR-10 image-folder tree (e.g. ../shared/datasets/cifar10); "
            f"got {value!r}"
        )
    return Path(value)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One decoded-image cache for the whole test session (the full tree is decoded once)."""
    return tmp_path_factory.mktemp("cifar-edge-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never touch the user's ~/.cache from a test."""
    monkeypatch.setenv("CIFAR_EDGE_CACHE", str(tmp_path / "default-cache"))


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
