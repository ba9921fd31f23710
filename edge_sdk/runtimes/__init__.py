"""The two runtimes, listed explicitly in :data:`RUNTIMES`: ``.tflite`` files on LiteRT (else tflite-runtime, else
``tf.lite``) and ``.onnx`` files on ONNX Runtime.

Each is one module, :mod:`.tflite` and :mod:`.onnx`, defining ``SUFFIXES`` (the files it opens), ``BACKENDS``
(its backend names, preferred first, each mapped to the Python module it imports), ``EXTRA`` (the pip extra
that installs it) and ``load(model_bytes, num_threads, backend) -> Backend``. A runtime library is imported
only when a model is loaded on it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from ..errors import BackendUnavailableError, ModelLoadError
from . import onnx, tflite
from .base import Backend

#: every runtime, in lookup order
RUNTIMES: tuple[ModuleType, ...] = (tflite, onnx)


def available_backends() -> dict[str, str]:
    """Every backend name the SDK knows, mapped to the Python module it needs."""
    return {name: module for rt in RUNTIMES for name, module in rt.BACKENDS.items()}


def _by_backend(backend: str) -> ModuleType:
    for rt in RUNTIMES:
        if backend in rt.BACKENDS:
            return rt
    raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of: {', '.join(available_backends())}")


def _by_suffix(suffix: str) -> ModuleType | None:
    return next((rt for rt in RUNTIMES if suffix.lower() in rt.SUFFIXES), None)


def backend_suffixes(backend: str) -> tuple[str, ...]:
    """The model file suffixes ``backend`` runs; :class:`BackendUnavailableError` for an unknown backend."""
    return _by_backend(backend).SUFFIXES


def extra_for(suffix: str) -> str:
    """The pip extra that installs a runtime for ``suffix`` files (``"litert"`` for ``.tflite``);
    :class:`ModelLoadError` for a suffix no runtime opens."""
    rt = _by_suffix(suffix)
    if rt is None:
        raise ModelLoadError(f"no runtime opens {suffix or 'suffix-less'} model files")
    return rt.EXTRA


def installed_backends(suffix: str) -> tuple[str, ...]:
    """The backends that run ``suffix`` files and whose module is importable, the one a file opens on by
    default first (``("litert", "tf-lite")`` for ``.tflite`` where both are installed). Only looks the modules
    up: imports no runtime. Raises nothing (an unknown suffix has none)."""
    rt = _by_suffix(suffix)
    return () if rt is None else tuple(name for name, module in rt.BACKENDS.items() if _importable(module))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module in sys.modules without a spec is there all the same
        return sys.modules.get(module) is not None


def load_model(model: str | os.PathLike[str], backend: str | None = None,
               num_threads: int | None = None) -> tuple[Backend, bytes]:
    """Read the file ``model`` once and open it on the runtime its suffix implies (or on ``backend``, e.g.
    ``"tflite-runtime"``); return the backend and the file's bytes (for the metadata readers).

    Raises :class:`ModelLoadError` naming the file (missing, unreadable, empty, corrupt or unsupported) or
    :class:`BackendUnavailableError` (no runtime for it installed, or ``backend`` unknown or not one for its suffix).
    """
    path = Path(model)
    suffix = path.suffix.lower()
    try:
        if not path.is_file():
            what = "not a model file (a folder or device)" if path.exists() else "model file not found"
            raise ModelLoadError(f"{what}: {path}")
        # an unsupported suffix or backend before reading a large file
        rt = _by_backend(backend) if backend else _by_suffix(suffix)
        if rt is None:
            expected = " or ".join(sorted(s for r in RUNTIMES for s in r.SUFFIXES))
            raise ModelLoadError(f"unknown model type {path.suffix!r} (expected {expected}): {path}")
        if suffix not in rt.SUFFIXES:
            raise BackendUnavailableError(f"backend {backend!r} runs {' or '.join(rt.SUFFIXES)} models, not "
                                          f"{suffix or 'suffix-less'} files: {path}")
        data = path.read_bytes()
    except OSError as exc:  # no read permission, a folder on the way that may not be searched, an I/O error
        raise ModelLoadError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    except MemoryError as exc:
        raise ModelLoadError(f"cannot read model file {path}: too large for the memory available") from exc
    if not data:
        raise ModelLoadError(f"model file is empty: {path}")
    try:
        return rt.load(data, num_threads, backend), data
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc
