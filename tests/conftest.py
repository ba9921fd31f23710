"""Shared fixtures: the real CIFAR-10 tree (from $CIFAR10_DIR) and small synthetic trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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


REPO = Path(__file__).resolve().parents[1]
SHIPPED_RESNET8 = REPO / "models" / "resnet8" / "best.keras"
VALIDATION_IMAGES = 500


@pytest.fixture(scope="session")
def source_model(tmp_path_factory, cifar10_dir, session_cache) -> Path:
    """The shipped resnet8 when present, else a small model trained here (2 epochs on 2,048 images)."""
    if SHIPPED_RESNET8.is_file():
        return SHIPPED_RESNET8
    from train.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "small"
    train(TrainConfig(model="resnet8", out=str(out), data=str(cifar10_dir), cache_dir=str(session_cache),
                      epochs=2, limit=2048, batch_size=64))
    return out / "best.keras"


@pytest.fixture(scope="session")
def exported(tmp_path_factory, source_model, cifar10_dir, session_cache):
    from convert.converter import ConvertConfig, convert

    out = tmp_path_factory.mktemp("export")
    manifest = convert(ConvertConfig(model=str(source_model), out=str(out), calib_size=200, limit=VALIDATION_IMAGES,
                                     data=str(cifar10_dir), cache_dir=str(session_cache)))
    return out, manifest


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never touch the user's ~/.cache from a test."""
    monkeypatch.setenv("CIFAR_EDGE_CACHE", str(tmp_path / "default-cache"))
