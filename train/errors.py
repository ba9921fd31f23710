"""Errors only the training tools raise; each derives from :class:`edge_sdk.errors.EdgeSDKError`, so the
command line reports them like every other error (one line, exit status 2)."""

from __future__ import annotations

from edge_sdk.errors import EdgeSDKError
from cifar_edge.cli.errors import DatasetError


class UnsafeDataError(DatasetError):
    """A data file tried something a trusted data file never does (code in a pickle, path traversal in an archive)."""


class DownloadError(DatasetError):
    """A download failed (network error, incomplete transfer or checksum mismatch)."""


class DistributedTrainingError(EdgeSDKError):
    """A training cluster is misconfigured (``TF_CONFIG``, devices, batch split) or lost a worker mid-run."""


class RunStateError(EdgeSDKError):
    """A run's ``state.json`` cannot be resumed: not JSON, or a field missing, of the wrong type or out of range."""
