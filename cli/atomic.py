"""Write files atomically: a temporary file in the same folder, renamed when complete."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it
    was (absent or with its previous content). ``suffix`` lets writers that
    choose a format from the file name (``np.savez``, Pillow) see the right one.
    """
    target = Path(path)
    _make_parent(target)
    tmp = _create_part_file(target, ".part" + (suffix or target.suffix))
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def check_output_file(path: str | os.PathLike[str], what: str) -> None:
    """Raise :class:`~cifar_edge.cli.errors.OutputError` unless ``path`` can be written as a file (atomically).

    ``path`` must not be a folder (or other non-file) and its folder must be, or be creatable as, a
    writable folder. Creates nothing: callers check every output before long work starts.
    """
    from .errors import OutputError

    target = Path(path).absolute()
    if target.exists() and not target.is_file():
        raise OutputError(f"cannot write {what}: {target} is a folder or device, not a file")
    _check_writable(target.parents, what,
                    lambda folder: f"Permission denied: {target} (no write permission in {folder})")


def check_output_folder(folder: str | os.PathLike[str], what: str) -> None:
    """Raise :class:`~cifar_edge.cli.errors.OutputError` unless ``folder`` is, or can be created as, a writable
    folder.

    ``what`` names the output in the message (``"--out runs/x"``). Creates nothing: commands call it before
    long work, so an unwritable output fails at once instead of after the work it was meant to keep.
    """
    path = Path(folder).absolute()
    _check_writable((path, *path.parents), what, lambda folder: f"no write permission in {folder}")


def _check_writable(ancestors: Iterable[Path], what: str, denied: Callable[[Path], str]) -> None:
    """Raise :class:`~cifar_edge.cli.errors.OutputError` unless the first of ``ancestors`` that exists is a folder
    this process may write in (``denied(folder)`` words the refusal)."""
    from .errors import OutputError

    for ancestor in ancestors:
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            raise OutputError(f"cannot write {what}: not a directory: {ancestor}")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {what}: {denied(ancestor)}")
        return


def _create_part_file(target: Path, suffix: str) -> Path:
    """Create a new, empty, uniquely named hidden file beside ``target``; return its path.

    Opened with ``O_EXCL`` and mode 0o666, so the process umask gives it the usual file mode (as for
    any new file) without reading or changing the umask. Raises ``OSError`` naming ``target``.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(tmp, flags, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:  # name the file the caller asked for, not a random temporary name
            raise type(exc)(exc.errno, exc.strerror, str(target)) from exc
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(target))


def _make_parent(target: Path) -> None:
    """Create ``target``'s folder; name the blocking file if part of the path is not a folder."""
    for ancestor in (target.parent, *target.parent.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "cannot create output folder, not a directory", str(ancestor))
            break
    target.parent.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file for writing and rename it to ``path`` when the block succeeds."""
    if not mode.startswith(("w", "x")):
        raise ValueError(f"atomic_open writes new files only, got mode {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode.replace("x", "w"), **kwargs) as fh:
            yield fh


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def remove_stale_parts(folder: str | os.PathLike[str], names: Iterable[str]) -> list[Path]:
    """Delete the temporary files a killed writer left for ``names`` in ``folder``; return them.

    :func:`atomic_path` cleans up after an exception, but a process killed with
    SIGKILL (or a power cut) leaves its hidden ``.<name>.*.part*`` file behind.
    Call this before writing ``names`` again in a folder only one writer uses.
    """
    removed = []
    for name in names:
        for stale in Path(folder).glob(f".{glob.escape(name)}.*.part*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed.append(stale)
    return removed
