"""Import optional dependencies with an error that names the pip extra to install."""

from __future__ import annotations

import importlib
import importlib.metadata
from types import ModuleType

from .errors import MissingExtraError

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


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # Only a missing top-level package means the extra is absent; a broken
        # install of a present package should surface as it is.
        missing = getattr(exc, "name", None) or ""
        if missing and module.split(".")[0] != missing.split(".")[0]:
            raise
        raise MissingExtraError(module, extra, purpose) from exc
