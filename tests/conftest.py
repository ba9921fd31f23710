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


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never touch the user's ~/.cache from a test."""
    monkeypatch.setenv("CIFAR_EDGE_CACHE", str(tmp_path / "default-cache"))
