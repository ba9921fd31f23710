"""The Raspberry Pi camera (libcamera) through the ``picamera2`` package, behind the sources' ``Capture`` protocol.

``--source picamera2`` is camera 0, ``picamera2:N`` camera N (in ``Picamera2.global_camera_info()``
order). ``picamera2`` is imported only when such a source is opened. It comes with Raspberry Pi OS
(``sudo apt install -y python3-picamera2``), with libcamera's Python bindings, which are not on PyPI:
a virtual environment sees them only when made with ``--system-site-packages``.

Colour: the main stream is configured as ``"RGB888"``. libcamera names formats after a little-endian
word, so an ``RGB888`` frame holds each pixel as **B, G, R** in memory (the Picamera2 manual: "RGB888
- 24 bits per pixel, ordered [B, G, R]"): exactly the BGR order of OpenCV frames, which the rest of the
demo expects. The arrays are passed on without a channel swap (``BGR888`` would be R, G, B).
"""

from __future__ import annotations

import contextlib
import importlib
import re
from types import ModuleType
from typing import Any

import numpy as np

from edge_sdk.errors import BackendUnavailableError
from cifar_edge.cli.errors import SourceError
from edge_sdk.images import describe

from ._cv2 import cv2

#: the ``--source`` word (``picamera2`` or ``picamera2:N``)
SCHEME = "picamera2"
#: libcamera's name for 24-bit pixels stored B, G, R (see the module docstring)
PIXEL_FORMAT = "RGB888"
#: the capture size when ``--width``/``--height`` are not given
DEFAULT_SIZE = (640, 480)
#: the frame rate reported when the configuration does not say (Picamera2's video default is 30)
DEFAULT_FPS = 30.0
APT_PACKAGE = "python3-picamera2"


def parse_picamera2(text: str) -> int | None:
    """The camera number ``text`` names (``picamera2`` is 0, ``picamera2:N`` is N), or None for any other source.

    Raises :class:`SourceError` for ``picamera2:`` followed by anything but a camera number.
    """
    match = re.fullmatch(rf"\s*{SCHEME}(?::(.*))?\s*", text, re.IGNORECASE)
    if match is None:
        return None
    number = match.group(1)
    if number is None:
        return 0
    if not re.fullmatch(r"\d{1,3}", number.strip()):
        raise SourceError(f"bad source {text.strip()!r}: give {SCHEME} or {SCHEME}:N with N a camera number (0, 1, ...)")
    return int(number)


def import_picamera2() -> ModuleType:
    """The ``picamera2`` module; :class:`BackendUnavailableError` (one line, saying how to install it) if absent."""
    try:
        return importlib.import_module("picamera2")
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if missing.split(".")[0] == "picamera2":
            raise BackendUnavailableError(
                f"the Python module 'picamera2' is needed for --source {SCHEME} but is not installed; it comes with "
                f"Raspberry Pi OS: sudo apt install -y {APT_PACKAGE} (in a venv made with --system-site-packages)"
            ) from exc
        raise BackendUnavailableError(  # e.g. libcamera's bindings, which a venv without system site-packages lacks
            f"the Python module 'picamera2' cannot be imported ({describe(exc)}); install {APT_PACKAGE} with apt "
            "and use the system Python or a venv made with --system-site-packages"
        ) from exc


class Picamera2Capture:
    """A started Picamera2 camera as a capture: ``read()`` gives ``(True, BGR uint8 HxWx3 frame)``.

    A failed ``capture_array`` raises out of :meth:`read`, which the live reader counts as a failed read.
    """

    def __init__(self, camera: Any, fps: float) -> None:
        self._camera: Any = camera
        self.fps = fps

    def isOpened(self) -> bool:  # noqa: N802 - the cv2.VideoCapture name
        return self._camera is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._camera is None:
            return False, None
        return True, self._camera.capture_array("main")  # RGB888: B, G, R in memory, passed on as BGR

    def get(self, prop: int) -> float:
        return self.fps if prop == cv2().CAP_PROP_FPS else 0.0

    def release(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            _close_quietly(camera)


def _close_quietly(camera: Any) -> None:
    """Stop and close a Picamera2 camera; releasing a broken camera must not raise."""
    for step in ("stop", "close"):
        with contextlib.suppress(Exception):
            getattr(camera, step)()


def open_picamera2(index: int, width: int | None = None, height: int | None = None) -> Picamera2Capture:
    """Open, configure (``RGB888`` main stream, ``width`` x ``height`` or :data:`DEFAULT_SIZE`) and start Pi camera ``index``.

    Raises :class:`BackendUnavailableError` when ``picamera2`` cannot be imported and :class:`SourceError` when
    there is no such camera or it cannot be opened or started (busy, not permitted).
    """
    module = import_picamera2()
    name = f"{SCHEME}:{index}"
    try:
        found = len(module.Picamera2.global_camera_info())
    except Exception:  # noqa: BLE001 - an older picamera2 without it: opening the camera says
        found = None
    if found is not None and index >= found:
        there = f"{found} camera(s) found, {SCHEME}:0 to {SCHEME}:{found - 1}" if found else "libcamera finds no camera"
        raise SourceError(f"cannot open {name}: no such Raspberry Pi camera ({there}; is the ribbon cable seated?)")
    try:
        camera = module.Picamera2(camera_num=index)
    except Exception as exc:  # IndexError, RuntimeError, ... from libcamera
        raise SourceError(f"cannot open {name}: {describe(exc)} (no such camera, or it is busy)") from exc
    size = (width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1])
    try:
        config = camera.create_video_configuration(main={"size": size, "format": PIXEL_FORMAT})
        camera.configure(config)
        camera.start()
    except Exception as exc:
        _close_quietly(camera)
        raise SourceError(f"cannot start {name} at {size[0]}x{size[1]}: {describe(exc)}") from exc
    return Picamera2Capture(camera, _fps(config))


def _fps(config: Any) -> float:
    """The frame rate the configuration asks for (``FrameDurationLimits`` in microseconds), else :data:`DEFAULT_FPS`."""
    with contextlib.suppress(Exception):
        shortest = float(config["controls"]["FrameDurationLimits"][0])
        if 1_000 <= shortest <= 2_000_000:  # 1000 to 0.5 frames per second
            return 1e6 / shortest
    return DEFAULT_FPS
