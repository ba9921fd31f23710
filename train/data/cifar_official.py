"""Reader for the official CIFAR-10 "python version" data set.

The official archive ``cifar-10-python.tar.gz`` holds one folder,
``cifar-10-batches-py/``, with five training batches (``data_batch_1`` ..
``data_batch_5``), one ``test_batch`` and ``batches.meta``. Each batch is a
Python-2 pickle (protocol 2) of a dict with bytes keys: ``b'data'`` is a
``uint8`` array of shape ``(N, 3072)`` holding, per image, 1024 red, then 1024
green, then 1024 blue values (each plane a row-major 32x32 image), and
``b'labels'`` is a list of ``N`` ints in 0..9.

Pickles can run arbitrary code when loaded, so nothing here uses
:func:`pickle.load`: :class:`RestrictedUnpickler` only lets a pickle rebuild
numpy arrays (plus the ``_codecs.encode(text, "latin1")`` and ``bytes()``
calls with which Python 3's protocol-2 pickles spell byte strings); anything
else raises :class:`UnsafeDataError`. Archives are checked member by member
before anything is written and extracted atomically.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from cifar_edge.cli.errors import DatasetError
from edge_sdk.spec import CIFAR10_CLASSES

from ..errors import UnsafeDataError

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

__all__ = [
    "BATCHES_DIRNAME",
    "META_FILENAME",
    "TEST_BATCHES",
    "TRAIN_BATCHES",
    "RestrictedUnpickler",
    "extract_archive",
    "find_batches_dir",
    "load_batch",
    "load_label_names",
    "load_official_split",
    "restricted_load",
]

PathLike = str | os.PathLike[str]

TRAIN_BATCHES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES: tuple[str, ...] = ("test_batch",)
ALL_BATCHES: tuple[str, ...] = TRAIN_BATCHES + TEST_BATCHES
BATCHES_DIRNAME = "cifar-10-batches-py"
META_FILENAME = "batches.meta"

SPLITS: dict[str, tuple[str, ...]] = {"train": TRAIN_BATCHES, "test": TEST_BATCHES}

IMAGE_HEIGHT = 32
IMAGE_WIDTH = 32
IMAGE_CHANNELS = 3
ROW_SIZE = IMAGE_HEIGHT * IMAGE_WIDTH * IMAGE_CHANNELS  # 3072
NUM_CLASSES = len(CIFAR10_CLASSES)

# The official archive unpacks to about 180 MB; refuse archives claiming far more.
MAX_EXTRACT_BYTES = 2 * 1024**3


def _latin1_encode(text: object, encoding: object = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode`` accepting only what protocol-2 pickles of bytes use."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeDataError(
            f"pickle calls _codecs.encode with {type(text).__name__} and encoding {encoding!r}; "
            "only latin-1 encoding of text is allowed"
        )
    return text.encode("latin-1")


def _empty_bytes(*args: object) -> bytes:
    """Stand-in for ``bytes`` accepting only ``bytes()``, how protocol 2 pickles ``b''``."""
    if args:
        raise UnsafeDataError("pickle calls bytes() with arguments; only bytes() is allowed")
    return b""


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes in protocol-2 pickles as _codecs.encode(str, "latin1").
    ("_codecs", "encode"): _latin1_encode,
    # ... and b"" as bytes() (module spelled __builtin__ for Python 2 compatibility).
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and plain containers, and nothing else."""

    def __init__(self, file: IO[bytes], *, source: str = "<pickle>", **kwargs: Any) -> None:
        kwargs.setdefault("encoding", "bytes")
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global, or raise :class:`UnsafeDataError`."""
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise UnsafeDataError(
                f"{self.source}: pickle references {module}.{name}, which is not allowed "
                "in a data file (only numpy arrays may be rebuilt)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids: a data file never needs them."""
        raise UnsafeDataError(f"{self.source}: pickle uses a persistent id, which is not allowed")


def restricted_load(fileobj: IO[bytes], source: str = "<pickle>") -> object:
    """Unpickle ``fileobj`` with :class:`RestrictedUnpickler`.

    Raises :class:`UnsafeDataError` for a forbidden reference and
    :class:`DatasetError` (naming ``source``) for a truncated or malformed pickle.
    """
    try:
        return RestrictedUnpickler(fileobj, source=source).load()
    except DatasetError:
        raise
    except MemoryError:
        raise DatasetError(f"{source}: pickle is too large to load") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
        RecursionError,
        ImportError,
    ) as exc:
        raise DatasetError(
            f"{source}: not a readable pickle ({type(exc).__name__}: {exc})"
        ) from exc


def _load_pickle_file(path: PathLike) -> object:
    """Read a whole pickle file with :func:`restricted_load`, mapping I/O errors to DatasetError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    return restricted_load(io.BytesIO(data), source=str(path))


def _get(obj: dict, key: str) -> Any:
    """``obj[b'key']`` or ``obj['key']``; KeyError if neither is present."""
    bkey = key.encode("ascii")
    if bkey in obj:
        return obj[bkey]
    return obj[key]


def _has(obj: dict, key: str) -> bool:
    return key.encode("ascii") in obj or key in obj


def _validate_labels(raw: Any, n: int, source: str) -> np.ndarray:
    """Check ``raw`` is ``n`` integer labels in 0..9 and return them as int64."""
    if isinstance(raw, np.ndarray):
        if raw.ndim != 1 or raw.dtype.kind not in "iu":
            raise DatasetError(
                f"{source}: 'labels' must be a 1-D integer array, got dtype {raw.dtype} "
                f"and shape {raw.shape}"
            )
        labels = raw.astype(np.int64)
    elif isinstance(raw, (list, tuple)):
        for i, value in enumerate(raw):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise DatasetError(
                    f"{source}: label {i} is {type(value).__name__} {value!r}, not an int"
                )
        try:
            labels = np.array(raw, dtype=np.int64)
        except OverflowError:
            raise DatasetError(
                f"{source}: a label is out of the range 0..{NUM_CLASSES - 1}"
            ) from None
    else:
        raise DatasetError(f"{source}: 'labels' is a {type(raw).__name__}, not a list of ints")
    if labels.shape[0] != n:
        raise DatasetError(f"{source}: {labels.shape[0]} labels for {n} images")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        bad = int(labels[(labels < 0) | (labels >= NUM_CLASSES)][0])
        raise DatasetError(f"{source}: label {bad} is out of the range 0..{NUM_CLASSES - 1}")
    return labels


def load_batch(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load one official batch file.

    Returns ``(images, labels)``: ``uint8`` images of shape ``(N, 32, 32, 3)``
    (HWC, RGB) and ``int64`` labels of shape ``(N,)``. Raises
    :class:`DatasetError` naming the file for anything malformed.
    """
    source = str(path)
    obj = _load_pickle_file(path)
    if not isinstance(obj, dict):
        raise DatasetError(f"{source}: batch is a {type(obj).__name__}, not a dict")
    for key in ("data", "labels"):
        if not _has(obj, key):
            raise DatasetError(f"{source}: batch has no '{key}' entry")
    data = _get(obj, "data")
    if not isinstance(data, np.ndarray):
        raise DatasetError(f"{source}: 'data' is a {type(data).__name__}, not a numpy array")
    if data.dtype != np.uint8:
        raise DatasetError(f"{source}: 'data' has dtype {data.dtype}, expected uint8")
    if data.ndim != 2 or data.shape[1] != ROW_SIZE:
        raise DatasetError(f"{source}: 'data' has shape {data.shape}, expected (N, {ROW_SIZE})")
    n = data.shape[0]
    if n == 0:
        raise DatasetError(f"{source}: batch holds no images")
    labels = _validate_labels(_get(obj, "labels"), n, source)
    images = data.reshape(n, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def find_batches_dir(path: PathLike) -> Path | None:
    """The folder holding the batches: ``path`` itself, ``path/cifar-10-batches-py``, or None.

    A folder qualifies when it holds ``data_batch_1`` or ``test_batch``.
    """
    base = Path(path)
    for candidate in (base, base / BATCHES_DIRNAME):
        if (candidate / TRAIN_BATCHES[0]).is_file() or (candidate / TEST_BATCHES[0]).is_file():
            return candidate
    return None


def _decode_name(value: Any, index: int, source: str) -> str:
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetError(f"{source}: label name {index} is not valid UTF-8") from None
    elif isinstance(value, str):
        text = value
    else:
        raise DatasetError(f"{source}: label name {index} is a {type(value).__name__}, not text")
    text = text.strip()
    if not text:
        raise DatasetError(f"{source}: label name {index} is empty")
    return text


def load_label_names(folder: PathLike) -> tuple[str, ...]:
    """The class names from ``batches.meta``, or :data:`CIFAR10_CLASSES` if the file is absent."""
    base = find_batches_dir(folder) or Path(folder)
    meta_path = base / META_FILENAME
    if not meta_path.exists():
        return CIFAR10_CLASSES
    source = str(meta_path)
    obj = _load_pickle_file(meta_path)
    if not isinstance(obj, dict) or not _has(obj, "label_names"):
        raise DatasetError(f"{source}: expected a dict with a 'label_names' entry")
    raw = _get(obj, "label_names")
    if not isinstance(raw, (list, tuple)):
        raise DatasetError(f"{source}: 'label_names' is a {type(raw).__name__}, not a list")
    names = tuple(_decode_name(v, i, source) for i, v in enumerate(raw))
    if len(names) != NUM_CLASSES:
        raise DatasetError(f"{source}: {len(names)} label names, expected {NUM_CLASSES}")
    return names


def load_official_split(
    folder: PathLike, split: str
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load the ``"train"`` (five batches, in order) or ``"test"`` split.

    ``folder`` is the batches folder or its parent. Returns ``(images, labels,
    label_names)`` as :func:`load_batch` and :func:`load_label_names` do.
    """
    if split not in SPLITS:
        raise DatasetError(
            f"unknown split {split!r}; valid splits: {', '.join(repr(s) for s in SPLITS)}"
        )
    base = find_batches_dir(folder) or Path(folder)
    if not base.is_dir():
        raise DatasetError(f"{base}: data set folder not found")
    names = SPLITS[split]
    missing = [name for name in names if not (base / name).is_file()]
    if missing:
        raise DatasetError(
            f"{base}: missing CIFAR-10 batch file(s) for the {split} split: {', '.join(missing)}"
        )
    parts = [load_batch(base / name) for name in names]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return images, labels, load_label_names(base)


def _has_all_batches(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ALL_BATCHES)


def _member_parts(name: str) -> list[str]:
    """Path components of an archive member name, ignoring empty and ``.`` parts."""
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def _check_member(member: tarfile.TarInfo, archive: str) -> None:
    """Raise :class:`UnsafeDataError` unless ``member`` is a plain, contained file or folder."""
    name = member.name
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        raise UnsafeDataError(f"{archive}: member {name!r} has an absolute path")
    if ".." in normalized.split("/"):
        raise UnsafeDataError(f"{archive}: member {name!r} has a '..' path component")
    if member.issym() or member.islnk():
        raise UnsafeDataError(f"{archive}: member {name!r} is a link ({member.linkname!r})")
    if member.ischr() or member.isblk() or member.isfifo():
        raise UnsafeDataError(f"{archive}: member {name!r} is a device or fifo")
    if not (member.isfile() or member.isdir()):
        raise UnsafeDataError(f"{archive}: member {name!r} has an unsupported type")


def extract_archive(archive: PathLike, dest_dir: PathLike) -> Path:
    """Safely extract the official ``cifar-10-python.tar.gz`` into ``dest_dir``.

    Every member is checked first (no absolute paths, ``..``, links or
    devices: :class:`UnsafeDataError`); only ``cifar-10-batches-py/`` is
    extracted, into a temporary folder that is renamed into place, so a failed
    extraction never leaves a partial folder under the final name. Returns
    ``dest_dir/cifar-10-batches-py``; if that already holds all batches it is
    returned without extracting.
    """
    archive = Path(archive)
    dest = Path(dest_dir)
    target = dest / BATCHES_DIRNAME
    if _has_all_batches(target):
        return target
    if target.exists() or target.is_symlink():
        raise DatasetError(
            f"{target} exists but does not hold every CIFAR-10 batch; remove it and try again"
        )
    if not archive.is_file():
        raise DatasetError(f"{archive}: archive not found")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{dest}: cannot create folder ({exc.strerror or exc})") from exc

    tmp = Path(tempfile.mkdtemp(prefix=".cifar-extract-", dir=dest))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                total = 0
                for member in members:
                    _check_member(member, str(archive))
                    total += max(member.size, 0)
                if total > MAX_EXTRACT_BYTES:
                    raise DatasetError(
                        f"{archive}: archive would unpack to {total} bytes, "
                        f"more than the {MAX_EXTRACT_BYTES} allowed"
                    )
                wanted = [m for m in members if _member_parts(m.name)[:1] == [BATCHES_DIRNAME]]
                present = {
                    _member_parts(m.name)[1]
                    for m in wanted
                    if m.isfile() and len(_member_parts(m.name)) == 2
                }
                if not wanted:
                    raise DatasetError(f"{archive}: archive has no '{BATCHES_DIRNAME}/' folder")
                missing = [name for name in ALL_BATCHES if name not in present]
                if missing:
                    raise DatasetError(
                        f"{archive}: '{BATCHES_DIRNAME}/' lacks batch file(s): "
                        + ", ".join(missing)
                    )
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=wanted, filter="data")
                else:  # pragma: no cover - Python < 3.11.4; members were validated above
                    tar.extractall(tmp, members=wanted)
        except DatasetError:
            raise
        except getattr(tarfile, "FilterError", ()) as exc:  # type: ignore[misc]
            raise UnsafeDataError(f"{archive}: unsafe archive member ({exc})") from exc
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise DatasetError(
                f"{archive}: not a readable .tar.gz archive ({type(exc).__name__}: {exc})"
            ) from exc
        extracted = tmp / BATCHES_DIRNAME
        if not _has_all_batches(extracted):
            raise DatasetError(f"{archive}: extraction did not produce every batch file")
        try:
            os.replace(extracted, target)
        except OSError as exc:
            if _has_all_batches(target):  # another process finished first
                return target
            raise DatasetError(f"{target}: cannot move extracted data into place ({exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
