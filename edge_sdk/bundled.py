"""The models shipped inside the package, by name: ``Classifier("default")``, ``Classifier("edge")``.

One table, :data:`BUNDLED`, serves the :class:`~edge_sdk.Classifier`, the ``cifar-edge`` commands
(``--model NAME``, ``cifar-edge models``) and the tests. Each bundled model is one network in two
files, an int8 ``.tflite`` and an int8 ``.onnx`` export; a name opens the one that runs fastest on this
CPU (:mod:`edge_sdk.host`: ``.onnx`` on x86 without VNNI, ``.tflite`` on x86 with VNNI and on ARM) among
those whose runtime is installed (LiteRT, ``tflite-runtime`` or ``tf.lite`` for the ``.tflite``, ONNX
Runtime for the ``.onnx``), so an ``[onnx]``- or ``[litert]``-only install runs the bundled models too.
``backend=`` picks the file that backend runs. Only a ``str`` is looked up as a name; any other value,
or a string that is no bundled name, is a path (``"./edge"`` is the file ``edge``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ._extras import install_line
from .errors import BackendUnavailableError, EdgeSDKError, ModelLoadError
from .host import preferred_suffixes
from .metadata import ModelMetadata, read_metadata
from .runtimes import backend_suffixes, extra_for, installed_backends


@dataclass(frozen=True)
class BundledModel:
    """A bundled model: its name, what it is, and its files under ``edge_sdk/models`` (which one a name
    opens: :func:`bundled_file`)."""

    name: str
    description: str
    files: tuple[str, ...]


BUNDLED: dict[str, BundledModel] = {m.name: m for m in (
    BundledModel("default", "the default network (airbench94-shaped, flip TTA inside), int8: the most accurate",
                 ("default_int8.tflite", "default_int8.onnx")),
    BundledModel("edge", "the edge network (ResNet-8 distilled from the default), int8: the smallest and fastest",
                 ("edge_int8.tflite", "edge_int8.onnx")),
)}
#: the model ``Classifier()`` opens
DEFAULT = "default"
#: metadata keys read as the file's own accuracy (a fraction in [0, 1], measured by ``cifar-edge convert`` on the
#: file itself), as its source (Keras) model's accuracy on the same images, and as the multiply-accumulates per
#: image; looked up in the metadata's ``extra`` object, then among its top-level keys; the first number found is shown
ACCURACY_KEYS = ("accuracy",)
SOURCE_ACCURACY_KEYS = ("test_accuracy",)
MACS_KEYS = ("macs",)


def models_dir() -> Path:
    """The folder of the bundled model files (package data)."""
    return Path(str(resources.files("edge_sdk") / "models"))


def bundled_path(name: str, suffix: str) -> Path:
    """The path of bundled model ``name``'s ``suffix`` file (``.tflite`` or ``.onnx``), whether or not it exists.

    Raises :class:`ModelLoadError` for an unknown name or a format that model does not come in.
    """
    model = _get(name)
    for file in model.files:
        if Path(file).suffix == suffix:
            return models_dir() / file
    raise ModelLoadError(f"the bundled model {name!r} comes as {', '.join(model.files)}, not as a {suffix} file")


def resolve_model(model: str | os.PathLike[str] | None, backend: str | None = None) -> Path:
    """The model file ``model`` means: None is :data:`DEFAULT`, a bundled name one of its files
    (:func:`bundled_file`), anything else a path, returned as it is.

    Raises :class:`ModelLoadError` (a bundled file missing, or a bare word that is neither a bundled
    name nor a file) or :class:`BackendUnavailableError` (see :func:`bundled_file`).
    """
    if model is None:
        model = DEFAULT
    if isinstance(model, str) and model in BUNDLED:
        return bundled_file(model, backend)
    path = Path(model)
    if isinstance(model, str) and not path.suffix and len(path.parts) == 1 and not path.exists():
        raise ModelLoadError(f"no bundled model is called {model!r} ({', '.join(BUNDLED)}) and there is no such "
                             f"model file; {_name_hint(model)}")
    return path


def bundled_file(name: str, backend: str | None = None) -> Path:
    """The file of bundled model ``name`` to open: the one ``backend`` runs, or else the fastest on this CPU
    (:func:`edge_sdk.host.preferred_suffixes`) whose runtime is installed.

    Raises :class:`ModelLoadError` when the model's files are missing from this installation, and
    :class:`BackendUnavailableError` when ``backend`` runs none of them, or when no runtime for any of
    them is installed (naming the pip extra for each file).
    """
    model = _get(name)
    present = [path for path in (models_dir() / file for file in model.files) if path.is_file()]
    if not present:
        raise ModelLoadError(f"the bundled model {name!r} is missing from this installation ({models_dir()}); "
                             "reinstall cifar-edge or pass a model path")
    if backend:
        suffixes = backend_suffixes(backend)
        for path in present:
            if path.suffix in suffixes:
                return path
        raise BackendUnavailableError(f"backend {backend!r} runs {' or '.join(suffixes)} models; the bundled model "
                                      f"{name!r} comes as {', '.join(p.name for p in present)}")
    for path in _fastest_first(present):
        if installed_backends(path.suffix):
            return path
    options = " or ".join(f"the '{extra_for(p.suffix)}' extra ({install_line(extra_for(p.suffix))}) "
                          f"for its {p.suffix} file" for p in present)
    raise BackendUnavailableError(f"no runtime for the bundled model {name!r} is installed; install {options}")


def _fastest_first(paths: list[Path]) -> list[Path]:
    """``paths`` ordered by :func:`edge_sdk.host.preferred_suffixes` (a suffix it does not name last)."""
    order = preferred_suffixes()
    return sorted(paths, key=lambda p: order.index(p.suffix) if p.suffix in order else len(order))


def variants(name: str) -> list[tuple[Path, str]]:
    """Every way this installation can run bundled model ``name``: ``(file, backend)`` for each file present
    and each installed backend that runs its suffix, the file a plain ``Classifier(name)`` opens first.

    Raises :class:`ModelLoadError` for an unknown name.
    """
    model = _get(name)
    present = [path for path in (models_dir() / file for file in model.files) if path.is_file()]
    return [(path, backend) for path in _fastest_first(present) for backend in installed_backends(path.suffix)]


def bundled_name(path: str | os.PathLike[str]) -> str | None:
    """The bundled name of the model file at ``path`` (``"edge"`` for ``edge_int8.tflite`` in :func:`models_dir`),
    or None for any other file: what the SDK shows as a bundled model's name, whatever network its metadata names."""
    path = Path(path)
    try:
        if path.parent.resolve() != models_dir().resolve():
            return None
    except OSError:
        return None
    return next((model.name for model in BUNDLED.values() if path.name in model.files), None)


def _name_hint(word: str) -> str:
    """What to type instead of ``word``: the bundled model whose network it names (``resnet8`` is ``edge``'s), or the forms."""
    for model in BUNDLED.values():
        for file in model.files:
            try:
                meta = read_metadata(models_dir() / file)
            except (EdgeSDKError, OSError):  # a hint must never hide the error it belongs to
                continue
            if meta is not None and meta.model_name == word:
                return f"{word!r} is the network of the bundled model {model.name!r}: use {model.name!r}"
    return "give a bundled name or a .tflite/.onnx path"


def _get(name: str) -> BundledModel:
    try:
        return BUNDLED[name]
    except (KeyError, TypeError):
        raise ModelLoadError(f"no bundled model is called {name!r}; choose one of: {', '.join(BUNDLED)}") from None


def describe_bundled() -> list[dict[str, Any]]:
    """One entry per bundled model, for ``cifar-edge models``: its name, description, the file a plain
    ``Classifier(name)`` opens here (``None`` when no runtime for it is installed) and, per file present,
    its size and what its embedded metadata says: ``accuracy`` (the file's own, as measured at conversion),
    ``source_accuracy`` (its Keras source model's, on the same ``accuracy_images`` test images) and ``macs``,
    each ``None`` when the metadata lacks it.

    Raises :class:`ModelLoadError` / :class:`MetadataError` for a file that cannot be read or whose metadata is malformed.
    """
    entries = []
    for model in BUNDLED.values():
        files = []
        for file in model.files:
            path = models_dir() / file
            if path.is_file():
                files.append(_describe_file(path))
        try:
            opens: str | None = bundled_file(model.name).name
        except (BackendUnavailableError, ModelLoadError):  # no runtime for it here, or none of its files present
            opens = None
        entries.append({"name": model.name, "description": model.description, "opens": opens, "files": files})
    return entries


def _describe_file(path: Path) -> dict[str, Any]:
    meta = read_metadata(path)
    return {
        "file": path.name,
        "path": str(path),
        "bytes": path.stat().st_size,
        "extra": extra_for(path.suffix),
        "runtime_installed": bool(installed_backends(path.suffix)),
        "model_name": meta.model_name if meta else None,
        "model_version": meta.model_version if meta else None,
        "format": meta.format if meta else None,
        "accuracy": metadata_number(meta, ACCURACY_KEYS),
        "source_accuracy": metadata_number(meta, SOURCE_ACCURACY_KEYS),
        "accuracy_images": metadata_number(meta, ("test_images",)),
        "macs": metadata_number(meta, MACS_KEYS),
    }


def metadata_number(meta: ModelMetadata | None, keys: tuple[str, ...]) -> float | int | None:
    """The first finite number under one of ``keys`` in ``meta.extra``, then among its unknown top-level keys; else None."""
    if meta is None:
        return None
    for where in (meta.extra, meta.unknown):
        for key in keys:
            value = where.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return value
    return None
