"""The SDK's exception hierarchy, and the import of optional dependencies that names the pip extra to install.

Every error the SDK raises for a problem with its input or environment derives from :class:`EdgeSDKError`, so
callers can catch one class and the command line can turn any of them into one line and exit status 2 (the
tools add theirs in ``cifar_edge.cli.errors`` and ``cifar_edge.train.errors``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from types import ModuleType

#: the distribution whose extras the install lines name
DISTRIBUTION = "cifar-edge"


class EdgeSDKError(Exception):
    """Base class of every error this project raises for bad input or environment."""


class InvalidArgumentError(EdgeSDKError, ValueError):
    """An argument of an SDK call is out of range or inconsistent (also a ``ValueError``)."""


class InvalidArgumentTypeError(EdgeSDKError, TypeError):
    """An SDK call got an argument of the wrong kind, or a forbidden combination (also a ``TypeError``)."""


class ClosedError(EdgeSDKError, RuntimeError):
    """The object was closed and cannot be used any more (also a ``RuntimeError``)."""


class ModelLoadError(EdgeSDKError):
    """A model file is missing, corrupt, truncated or not supported."""


class InferenceError(EdgeSDKError):
    """The runtime failed to run a loaded model (allocation failure, a shape it rejects at run time)."""


class InvalidImageError(EdgeSDKError):
    """An image cannot be decoded or has an unsupported shape, dtype or values."""


class BackendUnavailableError(EdgeSDKError):
    """A runtime or optional dependency needed for the request is not installed."""


class MissingExtraError(BackendUnavailableError):
    """An optional dependency group (a pip "extra") is not installed."""

    def __init__(self, module: str, extra: str, purpose: str = "") -> None:
        self.module = module
        self.extra = extra
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"the Python module '{module}' is needed{what} but is not installed; "
                         f"install the '{extra}' extra: {install_line(extra)}")


class MetadataError(EdgeSDKError):
    """Model or preprocessing metadata is missing or malformed."""


def install_line(extra: str) -> str:
    """The pip command that adds ``extra`` (``"litert"``) to this installation: ``pip install 'cifar-edge[EXTRA]'``
    where cifar-edge is installed (from its wheel or a checkout's ``pip install -e .``: pip fetches only the
    extra's requirements), ``pip install -e '.[EXTRA]'`` for a checkout that was never installed."""
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
        # only a missing top-level package means the extra is absent; a broken install surfaces as it is
        missing = getattr(exc, "name", None) or ""
        if missing and module.split(".")[0] != missing.split(".")[0]:
            raise
        raise MissingExtraError(module, extra, purpose) from exc
