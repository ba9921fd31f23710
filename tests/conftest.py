"""Shared fixtures: the real CIFAR-10 tree (from $CIFAR10_DIR) and small synthetic trees."""

from __future__ import annotations

import importlib.util
import os
import sys
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
SHIPPED_DEFAULT = REPO / "models" / "default" / "best.keras"
VALIDATION_IMAGES = 500


@pytest.fixture(scope="session")
def source_model() -> Path:
    """The shipped default model (committed under models/): conversion tests hold it to the issue's bars."""
    if not SHIPPED_DEFAULT.is_file():
        pytest.fail(f"the shipped model {SHIPPED_DEFAULT} is missing from the checkout")
    return SHIPPED_DEFAULT


#: a committed export folder (every format, with metadata): SDK tests run on it instead of converting
SHIPPED_EXPORT = REPO / "models" / "resnet8" / "export"


@pytest.fixture(scope="session")
def shipped_export() -> Path:
    """The committed export folder SDK tests use (no conversion, no TensorFlow)."""
    from cifar_edge.cli.formats import FILE_NAMES

    missing = [name for name in FILE_NAMES if not (SHIPPED_EXPORT / name).is_file()]
    if missing:
        pytest.fail(f"the committed export {SHIPPED_EXPORT} lacks {', '.join(missing)}")
    return SHIPPED_EXPORT


@pytest.fixture(scope="session")
def exported(tmp_path_factory, source_model, cifar10_dir, session_cache):
    from cifar_edge.convert.converter import ConvertConfig, convert

    out = tmp_path_factory.mktemp("export")
    manifest = convert(ConvertConfig(model=str(source_model), out=str(out), limit=VALIDATION_IMAGES,
                                     data=str(cifar10_dir), cache_dir=str(session_cache)))
    return out, manifest


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never touch the user's ~/.cache from a test."""
    monkeypatch.setenv("CIFAR_EDGE_CACHE", str(tmp_path / "default-cache"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sdk: needs only the SDK's extras (a module-level pytestmark; "
                                       "scripts/test_sdk.sh runs those files in .venv-sdk, without TensorFlow)")


# ------------------------------------------------------------- the slow marker cannot be forgotten
SLOW_GUARD_DIR = Path(__file__).resolve().parent / "slow_guard"
_spec = importlib.util.spec_from_file_location("cifar_edge_slow_guard", SLOW_GUARD_DIR / "sitecustomize.py")
slow_guard = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = slow_guard  # tests/test_slow_guard.py checks it
_spec.loader.exec_module(slow_guard)
slow_guard.install()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """While a test without ``@pytest.mark.slow`` runs (its fixtures included), training or
    converting a Keras model raises, in this process and in the Python subprocesses it starts."""
    if item.get_closest_marker("slow") is not None:
        return
    slow_guard.current = item.nodeid
    item._slow_guard_env = {name: os.environ.get(name) for name in (slow_guard.ENV, "PYTHONPATH")}
    os.environ[slow_guard.ENV] = item.nodeid
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SLOW_GUARD_DIR), os.environ.get("PYTHONPATH")) if p)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    saved = getattr(item, "_slow_guard_env", None)
    if saved is None:
        return
    slow_guard.current = None
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
