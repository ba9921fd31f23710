"""OpenCV, imported on first use with an error that names the pip extra (``camera``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from types import ModuleType

from edge_sdk._extras import require, silenced_stderr_fd

_quieted = False


def cv2() -> ModuleType:
    """The ``cv2`` module (``pip install 'cifar-edge[camera]'``); OpenCV's own log is silenced unless debugging."""
    global _quieted
    module = require("cv2", "camera", "the camera demo")
    if not _quieted:
        _quieted = True
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            with contextlib.suppress(AttributeError):
                module.utils.logging.setLogLevel(module.utils.logging.LOG_LEVEL_SILENT)
    return module


@contextlib.contextmanager
def quiet_native() -> Iterator[None]:
    """Hide FFmpeg's stderr chatter ("moov atom not found", ...) while opening a capture; our error says it better."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
    else:
        with silenced_stderr_fd():
            yield
