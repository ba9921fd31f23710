"""Cheap checks of a ``.keras`` file, without TensorFlow (commands run them before the slow import)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from edge_sdk.errors import ModelLoadError


def check_keras_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelLoadError` unless ``path`` looks like a ``.keras`` file (a zip archive).

    A cheap check before TensorFlow is imported; Keras itself reports a
    non-zip file as "File not found".
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    if path.suffix != ".keras":
        raise ModelLoadError(f"not a Keras model file (expected a .keras file): {path}")
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        what = "the file is empty (0 bytes)" if size == 0 else f"not a zip archive ({size:,} bytes; truncated or corrupt?)"
        raise ModelLoadError(f"cannot load Keras model {path}: {what}")
