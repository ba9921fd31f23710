"""Import optional dependencies with an error that names the pip extra to install."""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
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


#: the distribution whose extras the install lines name
DISTRIBUTION = "cifar-edge"


def install_line(extra: str) -> str:
    """The pip command that adds ``extra`` (``"litert"``) to this installation.

    Where cifar-edge is installed, from its wheel or as a checkout's ``pip install -e .``, ``pip install
    'cifar-edge[EXTRA]'`` works as it is: pip reads the extra's requirements from the installed package and
    fetches only those (the wheel file is not needed again). Code run from a checkout that was never
    installed gets the checkout's form, ``pip install -e '.[EXTRA]'``, to run in the repository root.
    """
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return f"pip install -e '.[{extra}]' (in the cifar-edge checkout)"
    return f"pip install '{DISTRIBUTION}[{extra}]'"


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
