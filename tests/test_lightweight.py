"""The SDK side stays light: importing edge_sdk or asking for help never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "keras", "tf2onnx", "onnx", "matplotlib")


@pytest.mark.parametrize(
    "code",
    [
        "import edge_sdk",
        "import edge_sdk.cli; edge_sdk.cli.build_parser()",
        "import train.data; import train.cli_data",
    ],
)
def test_import_does_not_pull_heavy_packages(code):
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"{code!r} imported {proc.stdout.strip()}"
