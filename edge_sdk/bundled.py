"""The models shipped inside the package, by name (:data:`BUNDLED`): ``Classifier("default")``, ``Classifier("edge")``.

Each is one network in two int8 files, a ``.tflite`` and an ``.onnx``; a name opens the one that runs fastest on
this CPU among those whose runtime is installed, so an ``[onnx]``- or ``[litert]``-only install runs them too;
``backend=`` picks the file that backend runs, and only a ``str`` is looked up as a name (anything else, or a
string that is no bundled name, is a path: ``"./edge"`` is the file). Which file is fastest is a fixed, cached
rule from the CPU's architecture and ``/proc/cpuinfo`` flags (:func:`preferred_suffixes`; the measurements
behind it: docs/sdk.md): ``.onnx`` on x86 without VNNI (ONNX Runtime's int8 kernels win there; an x86 CPU whose
flags cannot be read counts as one), ``.tflite`` on x86 with VNNI, on ARM and elsewhere.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import BackendUnavailableError, EdgeSDKError, ModelLoadError, install_line
from .metadata import read_metadata
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


#: host class -> model file suffixes, fastest first
PREFERENCE: dict[str, tuple[str, ...]] = {
    "x86-vnni": (".tflite", ".onnx"),
    "x86": (".onnx", ".tflite"),
    "arm": (".tflite", ".onnx"),
    "other": (".tflite", ".onnx"),
}
#: ``/proc/cpuinfo`` flags naming an int8 dot-product (VNNI) instruction set on x86
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "avx_vnni_int8"})
_X86 = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})
_ARM = frozenset({"aarch64", "arm64", "armv7l", "armv8l", "armv8"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The feature flags of the first processor in ``cpuinfo`` (the text of ``/proc/cpuinfo``; read
    here when None): x86's ``flags`` line or ARM's ``Features`` line. Empty where there is no such
    file or line. Raises nothing."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def host_class(machine: str | None = None, flags: frozenset[str] | None = None) -> str:
    """The key of :data:`PREFERENCE` for a CPU: ``machine`` as :func:`platform.machine` names it and its
    ``flags`` (:func:`cpu_flags`); both read from this host when None. Raises nothing."""
    arch = (platform.machine() if machine is None else machine).lower()
    if arch in _X86:
        return "x86-vnni" if (cpu_flags() if flags is None else flags) & VNNI_FLAGS else "x86"
    if arch in _ARM:
        return "arm"
    return "other"


@lru_cache(maxsize=1)
def this_host() -> str:
    """:func:`host_class` of the CPU this process runs on, worked out once."""
    return host_class()


def preferred_suffixes(host: str | None = None) -> tuple[str, ...]:
    """Model file suffixes fastest first for ``host`` (a :data:`PREFERENCE` key; this CPU's when None).
    Raises nothing: an unknown key gets the ``other`` order."""
    return PREFERENCE.get(this_host() if host is None else host, PREFERENCE["other"])


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
    (:func:`preferred_suffixes`) whose runtime is installed.

    Raises :class:`ModelLoadError` when the model's files are missing from this installation, and
    :class:`BackendUnavailableError` when ``backend`` runs none of them, or when no runtime for any of
    them is installed (naming the pip extra for each file).
    """
    present = bundled_files(name)
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


def bundled_files(name: str) -> list[Path]:
    """The files of bundled model ``name`` present in this installation; :class:`ModelLoadError` for an unknown name."""
    return [path for path in (models_dir() / file for file in _get(name).files) if path.is_file()]


def _fastest_first(paths: list[Path]) -> list[Path]:
    """``paths`` ordered by :func:`preferred_suffixes` (a suffix it does not name last)."""
    order = preferred_suffixes()
    return sorted(paths, key=lambda p: order.index(p.suffix) if p.suffix in order else len(order))


def variants(name: str) -> list[tuple[Path, str]]:
    """Every way this installation can run bundled model ``name``: ``(file, backend)`` for each file present
    and each installed backend that runs its suffix, the file a plain ``Classifier(name)`` opens first.

    Raises :class:`ModelLoadError` for an unknown name.
    """
    return [(path, backend) for path in _fastest_first(bundled_files(name))
            for backend in installed_backends(path.suffix)]


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
