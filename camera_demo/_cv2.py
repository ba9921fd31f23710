"""OpenCV, imported on first use with an error that names the pip extra (``camera``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
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


#: True only while a ``cifar-edge`` command runs (it owns its process): then :func:`quiet_native` points file
#: descriptor 2 at /dev/null; called as a library, the camera code leaves the process's stderr alone
QUIET_NATIVE: ContextVar[bool] = ContextVar("cifar_edge_quiet_native", default=False)


@contextlib.contextmanager
def quiet_native() -> Iterator[None]:
    """Hide FFmpeg's stderr chatter ("moov atom not found", ...) while opening a capture, when a command runs
    (:data:`QUIET_NATIVE`) and is not debugging; our error says it better."""
    if not QUIET_NATIVE.get() or logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
    else:
        with silenced_stderr_fd():
            yield
