"""The SDK side stays light: importing edge_sdk or asking for help never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

HEAVY = ("tensorflow", "keras", "tf2onnx", "onnx", "matplotlib")


@pytest.mark.parametrize(
    "code",
    [
        "import edge_sdk",
        "import cifar_edge.cli.main; cifar_edge.cli.main.build_parser()",
        "import cifar_edge.train.data; import cifar_edge.train.cli_data",
    ],
)
def test_import_does_not_pull_heavy_packages(code):
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"{code!r} imported {proc.stdout.strip()}"


def test_classifying_with_each_runtime_never_imports_tensorflow():
    code = (
        "import numpy as np, sys\nfrom edge_sdk import Classifier\n"
        "for m in (None, 'models/resnet8/export/model_int8.onnx'):\n"
        "    Classifier(m).classify(np.zeros((48, 64, 3), np.uint8))\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    from pathlib import Path

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"classifying imported {proc.stdout.strip()}"


def _closure(requirements: list[str], extra: str = "") -> set[str]:
    """Names of every installed distribution that ``requirements`` pull in, transitively (markers honoured)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    top = [r for r in map(Requirement, requirements) if not r.marker or r.marker.evaluate({"extra": extra})]
    todo = [Requirement(r.name) for r in top]  # their markers are settled; dependencies' markers are not
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo.extend(Requirement(r) for r in metadata.requires(req.name) or [])
        except metadata.PackageNotFoundError:
            pass
    return seen


@pytest.mark.parametrize("extra, runtime", [("litert", "ai-edge-litert"), ("onnx", "onnxruntime")])
def test_runtime_extras_do_not_depend_on_tensorflow(extra, runtime):
    from importlib import metadata

    closure = _closure(metadata.requires("cifar-edge") or [], extra)
    assert {"numpy", "pillow", runtime} <= closure
    assert not closure & {"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "tensorflow-intel"}, closure
