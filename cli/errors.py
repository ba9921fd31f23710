"""Errors only the tools raise (data sets, frame sources, outputs); each an :class:`edge_sdk.EdgeSDKError`,
so the command line reports them like every other error (one line, exit status 2)."""

from __future__ import annotations

from edge_sdk.errors import EdgeSDKError


class DatasetError(EdgeSDKError):
    """A data set cannot be found, read or trusted."""


class SourceError(EdgeSDKError):
    """A frame source (camera, stream, video, image or folder) cannot be opened or read."""


class OutputError(EdgeSDKError):
    """An output (a file, a folder, an annotated video, a log, a snapshot) cannot be written."""
