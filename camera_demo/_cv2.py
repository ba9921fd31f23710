"""OpenCV, imported on first use with an error that names the pip extra (``camera``)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from types import ModuleType

from cifar_edge.cli.extras import require, silenced_stderr_fd

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


#: OpenCV reads it when its FFmpeg backend first opens a capture, and sets FFmpeg's log level from it
FFMPEG_LOGLEVEL_ENV = "OPENCV_FFMPEG_LOGLEVEL"
#: FFmpeg's AV_LOG_QUIET: not even the per-frame decoder errors ("[mjpeg @ 0x...] invalid len") of a broken stream
AV_LOG_QUIET = "-8"
_env_lock = threading.Lock()


@contextlib.contextmanager
def _quiet_ffmpeg_env() -> Iterator[None]:
    with _env_lock:
        saved = os.environ.get(FFMPEG_LOGLEVEL_ENV)
        os.environ[FFMPEG_LOGLEVEL_ENV] = AV_LOG_QUIET
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(FFMPEG_LOGLEVEL_ENV, None)
            else:
                os.environ[FFMPEG_LOGLEVEL_ENV] = saved


def quiet_ffmpeg() -> contextlib.AbstractContextManager[None]:
    """A context for opening a capture that silences FFmpeg's own log (every decoder error of every frame of
    a garbage stream) when a command runs (:data:`QUIET_NATIVE`), is not debugging, and the user has not set
    ``OPENCV_FFMPEG_LOGLEVEL`` themselves; else it does nothing.

    The variable is set only for the open and restored after it (child processes never inherit it), but
    OpenCV reads it once, at its first FFmpeg open, and FFmpeg's log level then holds for the process:
    which is why it is done only for a command, which owns its process. The frames a stream loses are
    counted and reported by the sources and ``serve``'s status instead.
    """
    if (not QUIET_NATIVE.get() or logging.getLogger().isEnabledFor(logging.DEBUG)
            or FFMPEG_LOGLEVEL_ENV in os.environ):
        return contextlib.nullcontext()
    return _quiet_ffmpeg_env()
