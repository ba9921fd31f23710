"""The live stream: a camera-demo source, classified and annotated frame by frame, kept as the newest JPEG.

One thread reads the source (:func:`cifar_edge.camera_demo.sources.open_source`), classifies each frame, draws the
camera demo's overlay (:mod:`cifar_edge.camera_demo.overlay`) and encodes the newest frame as JPEG for any number
of viewers. The stream never ends on its own: a frame that cannot be read, classified or encoded is
counted and skipped, and a source that ends or is lost is opened again (a video file or folder replays
from the start; a camera or stream is retried with doubling back-off up to :data:`MAX_BACKOFF_S`).
This module imports no web framework.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk.classifier import Category, Classifier
from cifar_edge.cli.errors import OutputError

from .._cv2 import cv2
from ..overlay import DEFAULT_CANVAS, FpsMeter, OverlayInfo, draw_overlay, fit_frame
from ..redact import redact_text
from ..sources import Frame, FrameSource, as_bgr, open_source

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
STILL_KINDS = ("image", "folder")
#: a running source that has given no good frame for this long (s) is reported as ``no_frames`` (silent, or
#: not a video FFmpeg can decode) or ``bad_frames`` (frames arrive but none can be used)
SILENT_AFTER_S = 10.0


@dataclass(frozen=True)
class StreamFrame:
    """One published frame: its JPEG and what the overlay on it says."""

    seq: int
    jpeg: bytes
    categories: tuple[Category, ...]
    fps: float
    inference_ms: float
    unknown: bool
    width: int
    height: int
    time: float


class StreamHub:
    """Run ``source`` (any ``cifar-edge camera --source`` value) through ``classifier`` in a background thread.

    ``opener(source)`` opens the source (default: :func:`open_source` with ``width``/``height`` and video
    files paced at their own frame rate). :meth:`start` opens it once in the caller's thread, so a source
    that cannot be opened raises :class:`~cifar_edge.cli.errors.SourceError` there; later failures are retried.
    Still images are shown ``interval_s`` each, fitted to ``width`` x ``height`` (default 640x480). The
    caller keeps owning ``classifier``.
    """

    def __init__(self, classifier: Classifier, source: str, *, width: int | None = None, height: int | None = None,
                 interval_s: float = 1.0, jpeg_quality: int = 80, backoff_s: float = 0.5,
                 opener: Callable[[str], FrameSource] | None = None) -> None:
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must lie in [1, 100], got {jpeg_quality}")
        self.clf = classifier
        self.source_text = source
        #: the source as status, errors and logs show it: a URL's credentials hidden
        self.source_shown = redact_text(source)
        self.canvas = (width, height) if width and height else DEFAULT_CANVAS
        self.interval_s = interval_s
        self.jpeg_quality = jpeg_quality
        self.backoff_s = backoff_s
        self._opener = opener or (lambda text: open_source(text, width=width, height=height, realtime=True))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listeners: list[Callable[[], None]] = []
        self._latest: StreamFrame | None = None
        self._fps = FpsMeter(30)
        self._thread: threading.Thread | None = None
        self._source: FrameSource | None = None
        self.state = "stopped"
        self.kind = ""
        self.frames = 0
        self.bad_frames = 0
        self.restarts = 0
        self.source_bad_frames = 0  # frames the source itself refused (corrupt, over the size cap)
        self.last_error: str | None = None
        self._seen_at_open = 0  # frames + bad frames when the source was last opened
        self._started_at = time.monotonic()
        self._last_good_at: float | None = None  # monotonic time of the last published frame
        self._last_bad_at: float | None = None  # ... and of the last frame refused

    # ----------------------------------------------------------------- lifetime
    def start(self) -> None:
        """Open the source (:class:`SourceError` if it cannot be) and start the reader thread."""
        self._source = self._opener(self.source_text)
        self.kind = self._source.spec.kind
        self.state = "running"
        self._started_at = time.monotonic()
        context = contextvars.copy_context()  # the command's settings (quiet native logs) hold in the thread too
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="cifar-edge-serve-stream",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the source; calling it again does nothing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.state = "stopped"

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (on the reader thread; it must be quick) after each published frame."""
        self._listeners.append(callback)

    # ----------------------------------------------------------------- what viewers read
    def latest(self) -> StreamFrame | None:
        """The newest published frame, or None before the first."""
        with self._lock:
            return self._latest

    def health(self, now: float | None = None) -> str:
        """The state as ``/healthz`` and ``/v1/stream`` report it: ``running``, ``starting`` (no frame yet),
        ``no_frames`` or ``bad_frames`` (no good frame for :data:`SILENT_AFTER_S`), ``restarting``,
        ``reconnecting`` or ``stopped``."""
        if self.state != "running":
            return self.state
        now = time.monotonic() if now is None else now
        last_good = self._last_good_at if self._last_good_at is not None else self._started_at
        if now - last_good > SILENT_AFTER_S:
            bad_since = self._last_bad_at is not None and self._last_bad_at > last_good
            return "bad_frames" if bad_since else "no_frames"
        return "running" if self._last_good_at is not None else "starting"

    def status(self) -> dict[str, Any]:
        """The stream's state and the newest frame's top-k labels, FPS and inference time, as JSON-ready values
        (FPS null until measured)."""
        frame = self.latest()
        state = self.health()
        last_error = self.last_error
        if state in ("no_frames", "bad_frames") and last_error is None:
            last_error = (f"no usable frame from {self.source_shown} for over {SILENT_AFTER_S:g} s: "
                          + ("its frames are corrupt or too large" if state == "bad_frames" else
                             "it sends nothing, or nothing that decodes as video"))
        return {
            "source": self.source_shown, "kind": self.kind, "state": state, "frames": self.frames,
            "bad_frames": self.bad_frames + self.source_bad_frames, "restarts": self.restarts,
            "last_error": last_error,
            "fps": round(frame.fps, 2) if frame and frame.fps > 0 else None,
            "inference_ms": round(frame.inference_ms, 3) if frame else None,
            "categories": [c._asdict() for c in frame.categories] if frame else [],
            "unknown": frame.unknown if frame else None,
            "frame_age_s": round(time.time() - frame.time, 3) if frame else None,
        }

    # ----------------------------------------------------------------- reader thread
    def _run(self) -> None:
        backoff = self.backoff_s
        try:
            while not self._stop.is_set():
                if self._source is None:
                    if not self._reopen(backoff):
                        backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                frame = self._read()
                if frame is None:
                    continue
                backoff = self.backoff_s
                still = self.kind in STILL_KINDS
                try:
                    self._publish(self._render(frame.image, still))
                except Exception as exc:  # one bad frame never ends the stream
                    self.bad_frames += 1
                    self._last_bad_at = time.monotonic()
                    self.last_error = redact_text(f"frame {frame.index} skipped: {exc}")
                    log.warning("%s", self.last_error)
                if still:
                    self._stop.wait(self.interval_s)
        finally:
            self._close_source()

    def _read(self) -> Frame | None:
        """The next frame, or None (no frame yet, or the source ended and was closed for reopening)."""
        source = self._source
        refused = source.bad_frames
        try:
            frame = source.read(timeout=0.5)
        except Exception as exc:  # a source should not raise; if one does, it is reopened
            self.last_error = redact_text(f"reading {self.source_shown} failed: {exc}")
            log.warning("%s", self.last_error)
            self._close_source()
            return None
        if source.bad_frames > refused:  # the source skipped frames it could not use: counted, and noted
            self.source_bad_frames += source.bad_frames - refused
            self._last_bad_at = time.monotonic()
        if frame is None and source.ended:
            if source.incomplete:
                self.last_error = redact_text(source.incomplete)
            self._close_source()
            self.state = "restarting"
        return frame

    def _reopen(self, backoff: float) -> bool:
        """Open the source again after a pause; False (and the error noted) when it would not open."""
        live = self.kind not in STILL_KINDS and self.kind != "video"
        gave_nothing = self.frames + self.bad_frames == self._seen_at_open  # a file that plays no frame: no hot loop
        if self._stop.wait(backoff if live or gave_nothing else 0.05):
            return True
        try:
            self._source = self._opener(self.source_text)
        except Exception as exc:
            self.state = "reconnecting"
            self.last_error = redact_text(f"cannot reopen {self.source_shown}: {exc}")
            log.warning("%s", self.last_error)
            return False
        self.restarts += 1
        self._seen_at_open = self.frames + self.bad_frames
        self.state = "running"
        return True

    def _close_source(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            try:
                source.close()
            except Exception as exc:  # closing a broken device must not end the thread
                log.debug("closing %s failed: %s", self.source_shown, redact_text(str(exc)))

    def _render(self, image: np.ndarray, still: bool) -> StreamFrame:
        """Classify, annotate and encode one frame (raises for a frame that cannot be)."""
        image = as_bgr(image)
        if still:
            image = fit_frame(image, self.canvas)
        result = self.clf.classify(image, color="bgr")
        fps = self._fps.tick()
        draw_overlay(image, OverlayInfo(categories=result.categories, fps=fps, inference_ms=result.timing.inference_ms,
                                        model_name=self.clf.model_name, backend_name=self.clf.backend_name,
                                        unknown=result.unknown))
        ok, buf = cv2().imencode(".jpg", image, [int(cv2().IMWRITE_JPEG_QUALITY), self.jpeg_quality])
        if not ok:
            raise OutputError("JPEG encoding failed")
        h, w = image.shape[:2]
        return StreamFrame(self.frames + 1, buf.tobytes(), result.categories, fps, result.timing.inference_ms,
                           result.unknown, w, h, time.time())

    def _publish(self, frame: StreamFrame) -> None:
        with self._lock:
            self._latest = frame
            self.frames = frame.seq
        self.state = "running"
        self._last_good_at = time.monotonic()
        for callback in self._listeners:
            try:
                callback()
            except Exception as exc:
                log.debug("stream listener failed: %s", exc)
