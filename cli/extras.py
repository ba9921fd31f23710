"""Optional dependencies of the tools: imported with an error that names the pip extra, quietly if asked."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from edge_sdk import errors


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
    """Import ``module`` or raise :class:`~edge_sdk.errors.MissingExtraError` naming ``extra``.

    ``quiet`` silences native start-up chatter on stderr during the first import.
    """
    if quiet and module not in sys.modules:
        with silenced_stderr_fd():
            return errors.require(module, extra, purpose)
    return errors.require(module, extra, purpose)
