"""Runtime backends behind one small interface, chosen by file suffix or by name.

Each runtime is one module in this package that defines ``SUFFIXES`` (file
suffixes it opens), ``BACKENDS`` (backend names it serves, mapped to the module
each imports), ``EXTRA`` (the pip extra that installs it) and
``load(model_bytes, num_threads, backend) -> Backend``.
Modules are discovered at first use, so adding a runtime is adding one file.
Runtimes themselves are imported only when a model needs them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np

from ..errors import BackendUnavailableError, ModelLoadError
from .base import Backend, dequantize, quantize

__all__ = ["Backend", "available_backends", "backend_suffixes", "dequantize", "extra_for", "installed_backends",
           "load_backend", "open_backend", "quantize", "read_model_file", "run_batched", "runtime_installed"]


@lru_cache(maxsize=1)
def _runtime_modules() -> tuple[ModuleType, ...]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base")
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in names)


def available_backends() -> dict[str, str]:
    """Every backend name the SDK knows, mapped to the Python module it needs."""
    return {name: module for rt in _runtime_modules() for name, module in rt.BACKENDS.items()}


def _runtime_for_backend(backend: str) -> ModuleType:
    """The runtime module serving the backend called ``backend``; :class:`BackendUnavailableError` if unknown."""
    for rt in _runtime_modules():
        if backend in rt.BACKENDS:
            return rt
    raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of: {', '.join(available_backends())}")


def _runtime_for_suffix(suffix: str) -> ModuleType | None:
    return next((rt for rt in _runtime_modules() if suffix.lower() in rt.SUFFIXES), None)


def backend_suffixes(backend: str) -> tuple[str, ...]:
    """The model file suffixes the backend called ``backend`` runs; :class:`BackendUnavailableError` if unknown."""
    return tuple(_runtime_for_backend(backend).SUFFIXES)


def extra_for(suffix: str) -> str:
    """The pip extra that installs a runtime for ``suffix`` files (``"litert"`` for ``.tflite``); :class:`ModelLoadError`
    for a suffix no runtime opens."""
    rt = _runtime_for_suffix(suffix)
    if rt is None:
        raise ModelLoadError(f"no runtime opens {suffix or 'suffix-less'} model files")
    return rt.EXTRA


def runtime_installed(suffix: str) -> bool:
    """True when a runtime for ``suffix`` model files (any of its backends) is importable.

    Only looks the top-level modules up (``importlib.util.find_spec``): it imports no runtime, so asking
    costs milliseconds even where TensorFlow is one of the candidates. Raises nothing.
    """
    rt = _runtime_for_suffix(suffix)
    return rt is not None and any(_importable(module) for module in rt.BACKENDS.values())


def installed_backends(suffix: str) -> tuple[str, ...]:
    """The names of the backends that run ``suffix`` files and whose module is importable, the one a file
    opens on by default first (``("litert", "tf-lite")`` for ``.tflite`` where both are installed). Imports
    no runtime; raises nothing (an unknown suffix has none)."""
    rt = _runtime_for_suffix(suffix)
    return () if rt is None else tuple(name for name, module in rt.BACKENDS.items() if _importable(module))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module in sys.modules without a spec is there all the same
        return sys.modules.get(module) is not None


def _runtime_for(path: Path, backend: str | None) -> ModuleType:
    """The runtime module for ``path``'s suffix, or for ``backend``: which must serve that suffix."""
    suffix = path.suffix.lower()
    if backend:
        rt = _runtime_for_backend(backend)
        if suffix not in rt.SUFFIXES:
            raise BackendUnavailableError(
                f"backend {backend!r} runs {' or '.join(rt.SUFFIXES)} models, not {suffix or 'suffix-less'} files: {path}"
            )
        return rt
    rt = _runtime_for_suffix(suffix)
    if rt is None:
        suffixes = sorted(s for rt in _runtime_modules() for s in rt.SUFFIXES)
        raise ModelLoadError(f"unknown model type {path.suffix!r} (expected {' or '.join(suffixes)}): {path}")
    return rt


def read_model_file(model: str | os.PathLike[str], backend: str | None = None) -> bytes:
    """The bytes of ``model``, read once (the runtime and the metadata reader both take them).

    Raises :class:`ModelLoadError` (missing, unreadable or empty file, or a suffix no runtime opens) or
    :class:`BackendUnavailableError` (``backend`` unknown or not one for this suffix), naming the file.
    """
    path = Path(model)
    try:
        if not path.is_file():
            what = "not a model file (a folder or device)" if path.exists() else "model file not found"
            raise ModelLoadError(f"{what}: {path}")
        _runtime_for(path, backend)  # an unsupported suffix or backend before reading a large file
        data = path.read_bytes()
    except OSError as exc:  # no read permission, a folder on the way that may not be searched, an I/O error
        raise ModelLoadError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    except MemoryError as exc:
        raise ModelLoadError(f"cannot read model file {path}: too large for the memory available") from exc
    if not data:
        raise ModelLoadError(f"model file is empty: {path}")
    return data


def load_backend(
    data: bytes, path: str | os.PathLike[str], backend: str | None = None, num_threads: int | None = None
) -> Backend:
    """Open the model bytes ``data`` (read from ``path``, whose suffix picks the runtime) on a runtime.

    Raises :class:`ModelLoadError` naming ``path`` or :class:`BackendUnavailableError`.
    """
    runtime = _runtime_for(Path(path), backend)
    try:
        return runtime.load(data, num_threads, backend)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from exc


def open_backend(
    model: str | os.PathLike[str], backend: str | None = None, num_threads: int | None = None
) -> Backend:
    """Load ``model`` on the runtime its suffix implies (or the backend named, e.g. ``"tflite-runtime"``).

    Raises :class:`ModelLoadError` (missing, unreadable, corrupt or unsupported model, naming the file)
    or :class:`BackendUnavailableError` (no runtime for it installed, or ``backend`` does not run its suffix).
    """
    return load_backend(read_model_file(model, backend), model, backend, num_threads)


def run_batched(backend: Backend, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run ``inputs`` through ``backend`` in batches (one image at a time if it has a fixed batch of 1)."""
    step = batch_size if backend.supports_batch else 1
    out = [backend.run(inputs[i : i + step]) for i in range(0, len(inputs), step)]
    return np.concatenate(out) if out else np.zeros((0, backend.num_outputs), np.float32)
