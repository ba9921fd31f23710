"""Import optional dependencies with an error that names the pip extra to install."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from .errors import MissingExtraError


@contextlib.contextmanager
def silenced_stderr_fd() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block.

    TensorFlow's C++ start-up writes INFO lines straight to fd 2 before its log
    level is read; Python-level errors still propagate as exceptions.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def require(module: str, extra: str, purpose: str = "", quiet: bool = False) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``.

    ``quiet`` silences native start-up chatter on stderr during the import.
    """
    try:
        if quiet and module not in sys.modules:
            with silenced_stderr_fd():
                return importlib.import_module(module)
        return importlib.import_module(module)
    except ImportError as exc:
        # Only a missing top-level package means the extra is absent; a broken
        # install of a present package should surface as it is.
        missing = getattr(exc, "name", None) or ""
        if missing and module.split(".")[0] != missing.split(".")[0]:
            raise
        raise MissingExtraError(module, extra, purpose) from exc
