"""Import optional dependencies with an error that names the pip extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError


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
