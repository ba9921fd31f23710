"""The models shipped inside the package, by name (:data:`BUNDLED`): ``Classifier("default")``, ``Classifier("edge")``.

Each is one network in two int8 files, a ``.tflite`` and an ``.onnx``; a name opens the one that runs fastest on
this machine among those whose runtime is installed (timed once and cached: :mod:`.fastest`), so an ``[onnx]``- or
``[litert]``-only install runs them too; ``backend=`` picks the file that backend runs, and only a ``str`` is looked
up as a name (anything else, or a string that is no bundled name, is a path: ``"./edge"`` is the file).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import BackendUnavailableError, EdgeSDKError, ModelLoadError, install_line
from .fastest import rank
from .metadata import read_metadata
from .runtimes import backend_suffixes, extra_for, installed_backends


@dataclass(frozen=True)
class BundledModel:
    """A bundled model: its name, what it is, and its files under ``edge_sdk/models`` (opened: :func:`bundled_file`)."""

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


def models_dir() -> Path:
    """The folder of the bundled model files (package data)."""
    return Path(str(resources.files("edge_sdk") / "models"))


def bundled_path(name: str, suffix: str) -> Path:
    """The path of bundled model ``name``'s ``suffix`` file (``.tflite`` or ``.onnx``), whether or not it exists.
    Raises :class:`ModelLoadError` for an unknown name or a format that model does not come in."""
    model = _get(name)
    for file in (file for file in model.files if Path(file).suffix == suffix):
        return models_dir() / file
    raise ModelLoadError(f"the bundled model {name!r} comes as {', '.join(model.files)}, not as a {suffix} file")


def resolve_model(model: str | os.PathLike[str] | None, backend: str | None = None) -> Path:
    """The model file ``model`` means: None is :data:`DEFAULT`, a bundled name one of its files (:func:`bundled_file`),
    anything else a path, returned as it is. Raises :class:`ModelLoadError` (a bundled file missing, or a bare word
    that is neither a bundled name nor a file) or :class:`BackendUnavailableError` (see :func:`bundled_file`)."""
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
    """The file of bundled model ``name`` to open: the one ``backend`` runs, or else the fastest on this machine whose
    runtime is installed (:func:`ranked`). Raises :class:`ModelLoadError` when the model's files are missing from this
    installation, and :class:`BackendUnavailableError` when ``backend`` runs none of them, or when no runtime for any
    of them is installed (naming the pip extra for each file)."""
    present = bundled_files(name)
    if not present:
        raise ModelLoadError(f"the bundled model {name!r} is missing from this installation ({models_dir()}); "
                             "reinstall cifar-edge or pass a model path")
    if backend:
        suffixes = backend_suffixes(backend)
        for path in (path for path in present if path.suffix in suffixes):
            return path
        raise BackendUnavailableError(f"backend {backend!r} runs {' or '.join(suffixes)} models; the bundled model "
                                      f"{name!r} comes as {', '.join(p.name for p in present)}")
    for path in ranked(name)[0]:
        return path
    options = " or ".join(f"the '{extra_for(p.suffix)}' extra ({install_line(extra_for(p.suffix))}) "
                          f"for its {p.suffix} file" for p in present)
    raise BackendUnavailableError(f"no runtime for the bundled model {name!r} is installed; install {options}")


def bundled_files(name: str) -> list[Path]:
    """The files of bundled model ``name`` present in this installation; :class:`ModelLoadError` for an unknown name."""
    return [path for path in (models_dir() / file for file in _get(name).files) if path.is_file()]


def ranked(name: str) -> tuple[list[Path], str]:
    """The files of bundled model ``name`` whose runtime is installed, fastest first (:func:`.fastest.rank`, each on
    its first installed backend), and where that order came from. :class:`ModelLoadError` for an unknown name."""
    present = {path.name: (path, installed_backends(path.suffix)) for path in bundled_files(name)}
    order, source = rank(name, [(path, backends[0]) for path, backends in present.values() if backends])
    return [present[file][0] for file in order], source


def bundled_name(path: str | os.PathLike[str]) -> str | None:
    """The bundled name of the model file at ``path`` (``"edge"`` for ``edge_int8.tflite`` in :func:`models_dir`),
    or None for any other file: what the SDK shows as a bundled model's name, whatever network its metadata names."""
    path = Path(path)
    with contextlib.suppress(OSError):
        if path.parent.resolve() == models_dir().resolve():
            return next((model.name for model in BUNDLED.values() if path.name in model.files), None)
    return None


def _name_hint(word: str) -> str:
    """What to type instead of ``word``: the bundled model whose network it names (``resnet8`` is ``edge``'s), or the forms."""
    for model in BUNDLED.values():
        for file in model.files:
            with contextlib.suppress(EdgeSDKError, OSError):  # a hint must never hide the error it belongs to
                if (meta := read_metadata(models_dir() / file)) is not None and meta.model_name == word:
                    return f"{word!r} is the network of the bundled model {model.name!r}: use {model.name!r}"
    return "give a bundled name or a .tflite/.onnx path"


def _get(name: str) -> BundledModel:
    try:
        return BUNDLED[name]
    except (KeyError, TypeError):
        raise ModelLoadError(f"no bundled model is called {name!r}; choose one of: {', '.join(BUNDLED)}") from None
