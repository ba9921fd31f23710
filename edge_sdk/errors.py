"""The SDK's exception hierarchy (the tools add theirs in ``cifar_edge.cli.errors`` and ``cifar_edge.train.errors``).

Every error the product raises for a problem with its input derives from
:class:`EdgeSDKError`, so callers can catch one class and the CLI can turn any
of them into a one-line message and exit code 2.
"""

from __future__ import annotations


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
        from ._extras import install_line  # here, not at the top: _extras imports this module

        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"the Python module '{module}' is needed{what} but is not installed; "
            f"install the '{extra}' extra: {install_line(extra)}"
        )


class MetadataError(EdgeSDKError):
    """Model or preprocessing metadata is missing or malformed."""
