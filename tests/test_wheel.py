"""The install path onto a device without the repository (issue 27, item 1): ``bash scripts/wheel.sh`` builds
the wheel, whose contents are the SDK, its bundled models and the cifar_edge tools (no tests, no training
runs), with publish-ready metadata (``twine check --strict`` where twine is installed) and a README that
renders on PyPI (no links that only work inside the repository). Installing it into a fresh venv with
``[litert]`` takes too long for the suite; docs/install.md gives the commands."""

from __future__ import annotations

import email
import os
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from edge_sdk import errors
from edge_sdk.errors import install_line
from edge_sdk.bundled import BUNDLED

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The wheel scripts/wheel.sh builds, from a copy of the sources (the build writes build/ and *.egg-info)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    (source / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "wheel.sh", source / "scripts" / "wheel.sh")
    for folder in ("edge_sdk", "cli", "train", "convert", "camera_demo"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(["bash", "scripts/wheel.sh", str(out)], cwd=source, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr
    wheel = Path(done.stdout.strip().splitlines()[-1])
    assert wheel.is_file() and wheel.parent == out
    return wheel, done


@pytest.mark.slow
def test_the_wheel_holds_the_sdk_the_bundled_models_and_the_tools_and_no_tests(built):
    wheel, _ = built
    version = PYPROJECT["project"]["version"]
    assert wheel.name == f"cifar_edge-{version}-py3-none-any.whl"  # pure Python: one wheel for every platform
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"edge_sdk", "cifar_edge"}
    for model in BUNDLED.values():
        for file in model.files:  # both formats of every bundled model
            assert f"edge_sdk/models/{file}" in names, file
    assert {"edge_sdk/classifier.py", "cifar_edge/cli/main.py", "cifar_edge/train/cli_train.py", "cifar_edge/convert/cli.py",
            "cifar_edge/camera_demo/web/cli.py"} <= names
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n or n.split("/")[-1].startswith("test_")]
    assert not [n for n in names if n.endswith(".keras") or "__pycache__" in n]
    assert f"cifar_edge-{version}.dist-info/licenses/LICENSE" in names
    assert wheel.stat().st_size < 12 * 2**20  # the models are most of it; no training runs slipped in


@pytest.mark.slow
def test_the_wheel_metadata_is_publish_ready(built):
    wheel, done = built
    with zipfile.ZipFile(wheel) as archive:
        (meta_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(archive.read(meta_name))
    assert meta["Name"] == "cifar-edge" and meta["Requires-Python"] == ">=3.10"
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert {"litert", "onnx", "camera-headless", "serve", "train", "dev", "docs"} <= set(meta.get_all("Provides-Extra"))
    requires = meta.get_all("Requires-Dist")
    core = [r for r in requires if "extra ==" not in r]
    assert sorted(r.split(">")[0] for r in core) == ["numpy", "pillow"]  # the SDK's core: nothing else
    assert any(r.startswith("ai-edge-litert") and 'extra == "litert"' in r for r in requires)
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.10" in classifiers
    assert meta.get_payload().startswith("# cifar-edge")  # the README is the long description
    if importlib.util.find_spec("twine"):
        assert "PASSED" in done.stderr and "WARNING" not in done.stderr, done.stderr  # twine check --strict
    else:
        assert "twine is not installed" in done.stderr


def test_the_readme_renders_on_pypi_without_repository_links():
    """PyPI shows README.md alone: a relative link or image there points nowhere."""
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)", text) + re.findall(r"<img[^>]+src=\"([^\"]+)", text)
    relative = [t for t in targets if not re.match(r"(https?:|mailto:|#)", t)]
    assert relative == [], relative
    assert len(text.splitlines()) <= 300


def test_the_install_line_works_for_a_wheel_install_and_for_a_bare_checkout(monkeypatch):
    # installed (from the wheel, or a checkout's pip install -e .): pip adds the extra to the installed package
    assert install_line("litert") == "pip install 'cifar-edge[litert]'"
    assert str(errors.MissingExtraError("cv2", "camera")).endswith("pip install 'cifar-edge[camera]'")

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    assert install_line("onnx") == "pip install -e '.[onnx]' (in the cifar-edge checkout)"
    assert "pip install -e '.[onnx]'" in str(errors.MissingExtraError("onnxruntime", "onnx"))


def test_every_extra_the_code_names_exists():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    named = set()
    for path in [*(ROOT / "edge_sdk").rglob("*.py"), *(ROOT / "cli").rglob("*.py"), *(ROOT / "camera_demo").rglob("*.py"),
                 *(ROOT / "train").rglob("*.py")]:
        named |= set(re.findall(r"require\([^)]*?,\s*\"([\w-]+)\"", path.read_text()))
        named |= set(re.findall(r"^EXTRA\s*=\s*\"([\w-]+)\"", path.read_text(), flags=re.MULTILINE))
    assert named and named <= extras, named - extras
