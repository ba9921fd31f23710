"""Frame sources for the demo: webcam, stream URL, video file, image file or folder of images.

:func:`open_source` turns the ``--source`` text into a :class:`FrameSource`:

* ``0``, ``1``, ... or ``/dev/video0``: a webcam, and ``rtsp://``, ``http(s)://``, ... URLs: a
  *live* source. A reader thread reads as fast as the device delivers and keeps only the newest
  frame, so the consumer never falls behind; a read failure reconnects with back-off a few times,
  then the source ends with :attr:`FrameSource.incomplete` saying why.
* a video file: read frame by frame in the caller's thread (no frame skipped), or, with
  ``realtime=True``, paced at the file's frame rate through the same newest-frame reader as a
  camera. A file that stops decoding before its announced frame count is reported as truncated.
* an image file or a folder of images: one frame per picture; an unreadable picture is counted,
  logged and skipped.
* a FIFO (named pipe) or another character device: a *live* source too (``kind="pipe"``), read by
  the reader thread, and its end is the normal end of the source.
* ``picamera2`` or ``picamera2:N``: the Raspberry Pi camera N through the ``picamera2`` package
  (:mod:`cifar_edge.camera_demo.picam`, imported only then), a *live* source read like a webcam.

Every capture is opened in a helper thread while the caller waits in short slices, so Ctrl-C
interrupts an open that blocks (a FIFO without a writer, a hung device) and an open that blocks
longer than :data:`OPEN_STALL_S` raises :class:`~cifar_edge.cli.errors.SourceError`. A source that
cannot be opened at all raises :class:`~cifar_edge.cli.errors.SourceError`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import stat
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edge_sdk.errors import InvalidImageError
from cifar_edge.cli.errors import SourceError
from edge_sdk.images import IMAGE_SUFFIXES, check_decoded_size, image_files, open_rgb

from ._cv2 import cv2, quiet_ffmpeg, quiet_native
from .picam import SCHEME as PICAMERA2, open_picamera2, parse_picamera2
from .redact import redact_url

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "rtp", "srt")
DEFAULT_FPS = 30.0
OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 5_000
#: corrupt frames in a row (delivered, but no picture) after which a source counts as lost
MAX_CORRUPT_FRAMES = 50
#: a live source whose device blocks one read or open this long (s) counts as lost
STALL_TIMEOUT_S = 30.0
#: opening any capture may block this long (s) before it counts as failed (Ctrl-C works at once)
OPEN_STALL_S = 20.0


@dataclass(frozen=True)
class SourceSpec:
    """What ``--source`` names: ``kind`` is camera, picamera2, stream, pipe, video, image or folder."""

    kind: str
    target: int | str

    @property
    def live(self) -> bool:
        """Cameras, streams and pipes run live: newest frame only, in a reader thread."""
        return self.kind in ("camera", PICAMERA2, "stream", "pipe")

    def __str__(self) -> str:
        """The source as logs and messages show it: a URL's credentials are hidden (:func:`redact_url`)."""
        if self.kind == PICAMERA2:
            return f"{PICAMERA2}:{self.target}"
        if self.kind == "stream":
            return redact_url(str(self.target))
        return f"camera {self.target}" if isinstance(self.target, int) else str(self.target)


def parse_source(text: str | int | os.PathLike[str]) -> SourceSpec:
    """Classify a ``--source`` value; a path that does not exist raises :class:`SourceError`."""
    if isinstance(text, int):
        return SourceSpec("camera", text)
    text = os.fspath(text)
    if re.fullmatch(r"\s*\d+\s*", text):
        return SourceSpec("camera", int(text))
    pi_camera = parse_picamera2(text)
    if pi_camera is not None:
        return SourceSpec(PICAMERA2, pi_camera)
    if re.match(rf"^({'|'.join(STREAM_SCHEMES)})://", text, re.IGNORECASE):
        return SourceSpec("stream", text)
    path = Path(text).expanduser()
    if re.fullmatch(r"/dev/video\d+", text):
        if not path.exists():
            raise SourceError(f"camera device {text} does not exist")
        return SourceSpec("camera", text)
    if not path.exists():
        raise SourceError(
            f"source not found: {text} (give a webcam index, a video or image file, a folder of images, "
            f"a stream URL such as rtsp://host/stream, or {PICAMERA2}[:N] for a Raspberry Pi camera)"
        )
    if path.is_dir():
        return SourceSpec("folder", str(path))
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SourceError(f"cannot read source {text}: {exc.strerror or exc}") from exc
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode):
        return SourceSpec("pipe", str(path))  # may block until a writer appears: read live, interruptibly
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return SourceSpec("image", str(path))
    return SourceSpec("video", str(path))


@dataclass
class Frame:
    """One picture from a source: BGR uint8 pixels, their position in the source and a timestamp."""

    index: int
    timestamp_ms: float
    image: np.ndarray
    name: str = ""


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the sources use (tests pass fakes)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


class FrameSource(ABC):
    """A stream of :class:`Frame` objects; ``read`` returns None when none is ready or the source ended."""

    spec: SourceSpec
    live: bool = False
    fps: float | None = None

    def __init__(self) -> None:
        self.frames_read = 0
        self.bad_frames = 0
        self.dropped = 0
        self.incomplete: str | None = None  # why the source ended early, if it did
        self._ended = False

    @abstractmethod
    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame; None when ``timeout`` (s) passed without one or the source :attr:`ended`."""

    @property
    def ended(self) -> bool:
        """True once every frame has been returned (or the source was lost)."""
        return self._ended

    def close(self) -> None:
        """Release the device or file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- opening captures
def _valid_fps(value: float) -> float | None:
    return float(value) if math.isfinite(value) and 0.5 <= value <= 1000 else None


def open_capture(spec: SourceSpec, width: int | None = None, height: int | None = None) -> Capture:
    """An opened ``cv2.VideoCapture`` for a camera, stream, pipe or video file (a
    :class:`~cifar_edge.camera_demo.picam.Picamera2Capture` for a Pi camera); :class:`SourceError` if it will not open.

    The open runs in a helper thread (see :func:`call_interruptibly`): Ctrl-C interrupts it, and one
    that blocks longer than :data:`OPEN_STALL_S` fails.
    """
    if spec.kind == PICAMERA2:
        return call_interruptibly(lambda: open_picamera2(int(spec.target), width, height), OPEN_STALL_S,
                                  f"cannot open {spec}: it did not answer within {OPEN_STALL_S:g} s", _release_quietly)
    cv = cv2()

    quiet = quiet_ffmpeg()  # decided here: the helper thread does not see this thread's context

    def opened() -> Capture:
        with quiet:
            if spec.kind == "stream":
                params = [cv.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv.CAP_PROP_READ_TIMEOUT_MSEC,
                          READ_TIMEOUT_MS]
                return cv.VideoCapture(str(spec.target), cv.CAP_FFMPEG, params)
            return cv.VideoCapture(spec.target)

    # quiet here, not in the helper thread: an interrupted wait gives stderr back at once
    with quiet_native():
        cap = call_interruptibly(opened, OPEN_STALL_S, f"cannot open {spec}: it did not answer within "
                                 f"{OPEN_STALL_S:g} s" + (" (a pipe nobody writes to?)" if spec.kind == "pipe" else ""),
                                 _release_quietly)
    if not cap.isOpened():
        cap.release()
        raise SourceError(_cannot_open(spec))
    try:  # a source that announces frames over the SDK's cap is refused before the first frame
        _check_frame_size(cap.get(cv.CAP_PROP_FRAME_WIDTH), cap.get(cv.CAP_PROP_FRAME_HEIGHT), str(spec))
    except InvalidImageError as exc:
        cap.release()
        raise SourceError(f"cannot use {spec}: {exc}") from None
    if spec.kind == "camera":
        cap.set(cv.CAP_PROP_BUFFERSIZE, 1)  # where the driver honours it: less queued latency
        if width:
            cap.set(cv.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv.CAP_PROP_FRAME_HEIGHT, height)
    return cap


def _release_quietly(cap: Capture) -> None:
    with contextlib.suppress(Exception):
        cap.release()


def call_interruptibly(fn: Callable[[], object], timeout_s: float, message: str,
                       abandon: Callable[[object], None] | None = None) -> object:
    """``fn()`` run in a daemon thread while this thread waits in 0.1 s slices.

    A signal handler (Ctrl-C's ``KeyboardInterrupt``) runs between slices, so a call that blocks
    in native code (opening a FIFO without a writer) cannot hold the program; after ``timeout_s``
    :class:`SourceError` (``message``) is raised. Either way the call is left behind, and a result
    it returns later is passed to ``abandon`` (to release it). ``fn``'s own exception is re-raised.
    """
    done = threading.Event()
    lock = threading.Lock()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc
        with lock:
            done.set()
            late = box.get("abandoned", False)
        if late and "value" in box and abandon is not None:
            abandon(box["value"])

    threading.Thread(target=target, name="cifar-edge-open", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    try:
        while not done.wait(0.1):
            if time.monotonic() >= deadline:
                raise SourceError(message)
    except BaseException:
        with lock:
            box["abandoned"] = True
            finished = done.is_set()
        if finished and "value" in box and abandon is not None:
            abandon(box["value"])
        raise
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


def _cannot_open(spec: SourceSpec) -> str:
    if spec.kind == "camera":
        return f"cannot open {spec}: no such camera, or it is busy or not permitted"
    if spec.kind == "stream":
        return f"cannot open stream {spec}: unreachable, refused or not a video stream"
    if spec.kind == "pipe":
        return f"cannot open {spec.target}: the pipe or device delivers no video OpenCV can decode"
    return f"cannot open video {spec.target}: not a video file, or it is corrupt or truncated"


def _frame_count(cap: Capture) -> int:
    n = cap.get(cv2().CAP_PROP_FRAME_COUNT)
    return int(n) if math.isfinite(n) and n > 0 else 0


def as_bgr(image: object) -> np.ndarray:
    """``image`` as writable, contiguous uint8 ``HxWx3`` BGR pixels; gray and BGRA frames are converted.

    Raises :class:`InvalidImageError` for anything else a capture may hand back (an empty,
    one-dimensional, float or five-channel array, or no array at all), so one corrupt frame is
    skipped instead of reaching the overlay and the video writer.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"corrupt frame: not a pixel array but {type(image).__name__}")
    if image.dtype != np.uint8 or image.size == 0 or image.ndim not in (2, 3) \
            or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InvalidImageError(f"corrupt frame: {image.dtype} array of shape {image.shape}, expected uint8 HxWx3")
    channels = image.shape[2] if image.ndim == 3 else 1
    check_decoded_size(image.shape[1], image.shape[0], max(3, channels), "frame")  # over the SDK's cap: refused
    if image.ndim == 2 or image.shape[2] == 1:
        return np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if not (image.flags.c_contiguous and image.flags.writeable):
        return image.copy()  # the overlay draws in place, with OpenCV
    return image


def _check_frame_size(width: float, height: float, name: str) -> None:
    """:class:`InvalidImageError` for BGR frames of ``width`` x ``height`` over the SDK's pixel or byte cap
    (:func:`check_decoded_size`); sizes a capture does not know (0, NaN) pass."""
    if math.isfinite(width) and math.isfinite(height) and width >= 1 and height >= 1:
        check_decoded_size(int(width), int(height), 3, name)


def _read_capture(cap: Capture, spec: SourceSpec) -> tuple[bool, np.ndarray | None]:
    """One ``cap.read()``: (True, BGR pixels), (True, None) for a corrupt frame, (False, None) for a failed read.

    An exception from the capture (``cv2.error`` from a device that vanished) is a failed read.
    """
    try:
        ok, image = cap.read()
    except Exception as exc:
        log.debug("read from %s failed: %s", spec, exc)
        return False, None
    if not ok or image is None:
        return False, None
    try:
        return True, as_bgr(image)
    except InvalidImageError as exc:
        log.debug("%s: %s", spec, exc)
        return True, None


# --------------------------------------------------------------------------- video files, frame by frame
class VideoFileSource(FrameSource):
    """Every frame of a video file, decoded in the caller's thread."""

    #: consecutive failed reads tolerated before the file counts as ended (a bad frame is skipped)
    MAX_FAILED_READS = 3

    def __init__(self, spec: SourceSpec, capture: Capture | None = None) -> None:
        super().__init__()
        self.spec = spec
        self._cap = capture if capture is not None else open_capture(spec)
        self.fps = _valid_fps(self._cap.get(cv2().CAP_PROP_FPS)) or DEFAULT_FPS
        self.expected_frames = _frame_count(self._cap)
        self._index = 0

    def read(self, timeout: float | None = None) -> Frame | None:
        if self._ended:
            return None
        failures = corrupt = 0
        while failures < self.MAX_FAILED_READS:
            ok, image = _read_capture(self._cap, self.spec)
            if ok and image is None:  # decoded, but not a picture: skipped and counted
                self.bad_frames += 1
                corrupt += 1
                if corrupt < MAX_CORRUPT_FRAMES:
                    continue
                self.incomplete = f"{self.spec.target}: gave up after {corrupt} corrupt frames in a row"
                log.warning(self.incomplete)
                break
            if ok:
                if corrupt:
                    log.warning("%s: skipped %d corrupt frame(s) before frame %d", self.spec, corrupt, self._index)
                if failures:
                    self.bad_frames += failures  # undecodable frames before this one, skipped
                    log.warning("%s: skipped %d undecodable frame(s) before frame %d", self.spec, failures, self._index)
                frame = Frame(self._index, 1000.0 * self._index / self.fps, image)
                self._index += 1
                self.frames_read += 1
                return frame
            failures += 1
            if self.expected_frames and self.frames_read + self.bad_frames + failures >= self.expected_frames:
                break  # the normal end of the file
        self._finish()
        return None

    def _finish(self) -> None:
        self._ended = True
        if self.incomplete is None and self.expected_frames and self.frames_read + self.bad_frames < self.expected_frames:
            self.incomplete = (
                f"{self.spec.target} is truncated or corrupt: decoding stopped after {self.frames_read} "
                f"of {self.expected_frames} frames"
            )
            log.warning(self.incomplete)

    def close(self) -> None:
        self._cap.release()


# --------------------------------------------------------------------------- still images
class StillImageSource(FrameSource):
    """One frame per image file, in name order; an unreadable file is skipped and counted."""

    fps = 1.0

    def __init__(self, spec: SourceSpec, paths: Sequence[Path]) -> None:
        super().__init__()
        self.spec = spec
        self.paths = list(paths)
        self._next = 0
        self.bad_files: list[str] = []

    def read(self, timeout: float | None = None) -> Frame | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            index = self._next
            self._next += 1
            try:
                image = load_bgr(path)
            except InvalidImageError as exc:
                self.bad_frames += 1
                self.bad_files.append(str(path))
                log.warning("skipping %s", exc)
                continue
            self.frames_read += 1
            return Frame(index, 1000.0 * index / self.fps, image, name=str(path))
        self._ended = True
        if self.frames_read == 0 and self.paths:
            self.incomplete = f"none of the {len(self.paths)} image(s) in {self.spec.target} could be read"
        return None


def load_bgr(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file (any format Pillow reads, EXIF-rotated) into BGR uint8 pixels."""
    rgb = np.asarray(open_rgb(path))
    return np.ascontiguousarray(rgb[:, :, ::-1])


# --------------------------------------------------------------------------- live sources
class LiveSource(FrameSource):
    """A reader thread that keeps only the newest frame; ``read`` waits for a frame newer than the last.

    ``opener`` returns an opened capture (it is called again to reconnect).
    After a failed read the reader reconnects up to ``max_reconnects`` times,
    waiting ``backoff_s``, then twice that, and so on; if every attempt fails
    the source ends and :attr:`incomplete` says so. With ``paced`` (a video
    file played at real speed, at its own frame rate) the reader sleeps between frames and the end of
    the file ends the source instead of reconnecting. A frame that arrives but is no picture
    (:func:`as_bgr`) is counted in :attr:`bad_frames` and skipped; :data:`MAX_CORRUPT_FRAMES` of
    them in a row count as a lost source. A device that blocks one read or open longer than
    ``stall_timeout_s`` ends the source too (its reader thread is left behind, a daemon). With
    ``finite`` (a pipe) the end of the data ends the source without reconnecting.
    """

    live = True

    def __init__(
        self,
        spec: SourceSpec,
        opener: Callable[[], Capture],
        *,
        max_reconnects: int = 5,
        backoff_s: float = 0.5,
        paced: bool = False,
        finite: bool = False,
        max_failed_reads: int = 2,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.spec = spec
        self._opener = opener
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.reconnects = 0
        self._attempts = 0  # reconnect attempts since the last good frame
        self._max_failed_reads = max_failed_reads
        self.stall_timeout_s = stall_timeout_s
        self._blocked_since: float | None = None  # when the reader entered a device call still running
        self._cap: Capture | None = opener()  # the first open fails loudly (SourceError)
        self.fps = _valid_fps(self._cap.get(cv2_prop("CAP_PROP_FPS"))) or DEFAULT_FPS
        self._pace_fps = self.fps if paced else None
        self._finite = finite or paced  # the end of the data is the end of the source, not a lost one
        self.expected_frames = _frame_count(self._cap) if paced else 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: Frame | None = None
        self._last_returned = -1
        self._reader_done = False
        self._thread = threading.Thread(target=self._reader, name=f"cifar-edge-source:{spec}", daemon=True)
        self._thread.start()

    # -- reader thread
    def _reader(self) -> None:
        start = time.monotonic()
        index = 0
        failures = corrupt = 0  # failed reads and corrupt frames since the last good frame
        try:
            while not self._stop.is_set():
                ok, image = self._safe_read()
                if ok and image is None:  # a frame arrived but is no picture: skipped and counted
                    self.bad_frames += 1
                    corrupt += 1
                    if corrupt == 1:
                        log.warning("%s: skipping corrupt frame(s)", self.spec)
                    if corrupt < MAX_CORRUPT_FRAMES:
                        continue
                    log.warning("%s: %d corrupt frames in a row", self.spec, corrupt)
                    if not self._recover(index):
                        return
                    failures = corrupt = 0
                    continue
                if not ok:
                    failures += 1
                    if failures < self._max_failed_reads and not (self._pace_fps and self._at_file_end(index)):
                        continue  # one bad frame never ends the stream
                    if not self._recover(index):
                        return
                    failures = corrupt = 0
                    continue
                self.bad_frames += failures  # unreadable frames skipped before this one
                failures = corrupt = 0
                self._attempts = 0
                if self._pace_fps:
                    due = start + index / self._pace_fps
                    delay = due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                    stamp = 1000.0 * index / self._pace_fps
                else:
                    stamp = 1000.0 * (time.monotonic() - start)
                self._publish(Frame(index, stamp, image))
                index += 1
        except Exception as exc:  # never leave the consumer waiting on a dead thread
            self.incomplete = f"{self.spec}: the reader failed: {exc}"
            log.exception("frame reader for %s failed", self.spec)
        finally:
            if self._stop.is_set():
                self._release()  # close() could not: it gave up waiting for a stalled device
            with self._cond:
                self._reader_done = True
                self._cond.notify_all()

    def _safe_read(self) -> tuple[bool, np.ndarray | None]:
        if self._cap is None:
            return False, None
        self._blocked_since = time.monotonic()
        try:
            return _read_capture(self._cap, self.spec)
        finally:
            self._blocked_since = None

    def _recover(self, index: int) -> bool:
        """After the source failed: True once reconnected, False to end (a paced file or a pipe simply ended)."""
        if self._finite:
            self._check_truncated(index)
            return False
        return self._reconnect()

    def _at_file_end(self, index: int) -> bool:
        return bool(self.expected_frames) and index + 1 >= self.expected_frames

    def _check_truncated(self, index: int) -> None:
        if self.expected_frames and index < self.expected_frames:
            self.incomplete = (
                f"{self.spec.target} is truncated or corrupt: decoding stopped after {index} "
                f"of {self.expected_frames} frames"
            )
            log.warning(self.incomplete)

    def _reconnect(self) -> bool:
        """Reopen the capture, waiting longer before each attempt; False once ``max_reconnects`` failed in a row.

        The budget resets only after a frame is read, so a stream that opens but never
        delivers still ends.
        """
        while self._attempts < self.max_reconnects:
            self._attempts += 1
            delay = self.backoff_s * 2 ** (self._attempts - 1)
            log.warning("%s: read failed; reconnecting in %.2f s (attempt %d of %d)",
                        self.spec, delay, self._attempts, self.max_reconnects)
            if self._stop.wait(delay):
                return False
            self._release()
            self._blocked_since = time.monotonic()
            try:
                self._cap = self._opener()
            except SourceError as exc:
                log.warning("%s", exc)
                continue
            finally:
                self._blocked_since = None
            self.reconnects += 1
            return True
        self.incomplete = f"lost {self.spec} and could not reconnect after {self.max_reconnects} attempt(s)"
        log.warning(self.incomplete)
        return False

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._latest is not None and self._latest.index != self._last_returned:
                self.dropped += 1  # the consumer never saw the frame this one replaces
            self._latest = frame
            self.frames_read += 1
            self._cond.notify_all()

    # -- consumer side
    def read(self, timeout: float | None = None) -> Frame | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            # in slices: a reader stuck in the device cannot notify, so the stall is polled
            while not (self._fresh() or self._reader_done or self._stalled()):
                left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._fresh():
                self._last_returned = self._latest.index
                return self._latest
            if self._reader_done:
                self._ended = True
            elif self._stalled():
                self.incomplete = (f"lost {self.spec}: the device stopped answering "
                                   f"(one read blocked for over {self.stall_timeout_s:g} s)")
                log.warning(self.incomplete)
                self._stop.set()
                self._ended = True
            return None

    def _stalled(self) -> bool:
        since = self._blocked_since
        return since is not None and time.monotonic() - since > self.stall_timeout_s

    def _fresh(self) -> bool:
        return self._latest is not None and self._latest.index != self._last_returned

    def _release(self) -> None:
        if self._cap is not None:
            with contextlib.suppress(Exception):  # releasing a broken capture must not raise
                self._cap.release()
            self._cap = None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=0.1 if self._stalled() else 5.0)
        if self._thread.is_alive():  # stuck in a device call: releasing under it could crash; it releases on exit
            log.warning("%s: the reader is still blocked in the device; leaving it behind", self.spec)
        else:
            self._release()


def cv2_prop(name: str) -> int:
    """A ``cv2.CAP_PROP_*`` constant by name."""
    return int(getattr(cv2(), name))


# --------------------------------------------------------------------------- factory
def open_source(
    source: str | int | os.PathLike[str],
    *,
    width: int | None = None,
    height: int | None = None,
    realtime: bool = False,
    max_reconnects: int = 5,
    backoff_s: float = 0.5,
    opener: Callable[[], Capture] | None = None,
) -> FrameSource:
    """Open what ``--source`` names (see the module docstring); :class:`SourceError` if it cannot be opened.

    ``width``/``height`` request a camera resolution. ``realtime`` plays a video
    file at its own frame rate through the live reader. ``opener`` replaces the
    OpenCV capture for live sources (tests).
    """
    spec = parse_source(source)
    if spec.kind == "image":
        paths = [Path(spec.target)]
        try:
            load_bgr(paths[0])
        except InvalidImageError as exc:
            raise SourceError(str(exc)) from exc
        return StillImageSource(spec, paths)
    if spec.kind == "folder":
        paths = image_files(spec.target)
        if not paths:
            raise SourceError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {spec.target}")
        return StillImageSource(spec, paths)
    open_it = opener or (lambda: open_capture(spec, width, height))
    if spec.kind == "video" and not realtime:
        return VideoFileSource(spec, open_it())
    if spec.kind == "video":
        return LiveSource(spec, open_it, max_reconnects=0, paced=True)
    if spec.kind == "pipe":
        return LiveSource(spec, open_it, max_reconnects=0, finite=True)
    return LiveSource(spec, open_it, max_reconnects=max_reconnects, backoff_s=backoff_s)


__all__ = [
    "Capture", "Frame", "FrameSource", "LiveSource", "SourceSpec", "StillImageSource", "VideoFileSource",
    "as_bgr", "call_interruptibly", "image_files", "load_bgr", "open_capture", "open_source", "parse_source",
]
