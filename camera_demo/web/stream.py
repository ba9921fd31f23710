"""The live stream: a camera-demo source, classified and annotated frame by frame, kept as the newest JPEG.

One thread reads the source (:func:`cifar_edge.camera_demo.sources.open_source`), classifies each frame, draws the
camera demo's overlay (:mod:`cifar_edge.camera_demo.overlay`) and encodes the newest frame as JPEG for any number
of viewers. The stream never ends on its own: a frame that cannot be read, classified or encoded is
counted and skipped, and a source that ends or is lost is opened again (a video file or folder replays
from the start; a camera or stream is retried with doubling back-off up to :data:`MAX_BACKOFF_S`).
This module imports no web framework.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk.classifier import Category, Classifier
from edge_sdk.errors import OutputError

from .._cv2 import cv2
from ..overlay import DEFAULT_CANVAS, FpsMeter, OverlayInfo, draw_overlay, fit_frame
from ..sources import Frame, FrameSource, as_bgr, open_source

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
STILL_KINDS = ("image", "folder")


@dataclass(frozen=True)
class StreamFrame:
    """One published frame: its JPEG and what the overlay on it says."""

    seq: int
    jpeg: bytes
    categories: tuple[Category, ...]
    fps: float
    inference_ms: float
    width: int
    height: int
    time: float


class StreamHub:
    """Run ``source`` (any ``cifar-edge camera --source`` value) through ``classifier`` in a background thread.

    ``opener(source)`` opens the source (default: :func:`open_source` with ``width``/``height`` and video
    files paced at their own frame rate). :meth:`start` opens it once in the caller's thread, so a source
    that cannot be opened raises :class:`~edge_sdk.errors.SourceError` there; later failures are retried.
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
        self.last_error: str | None = None
        self._seen_at_open = 0  # frames + bad frames when the source was last opened

    # ----------------------------------------------------------------- lifetime
    def start(self) -> None:
        """Open the source (:class:`SourceError` if it cannot be) and start the reader thread."""
        self._source = self._opener(self.source_text)
        self.kind = self._source.spec.kind
        self.state = "running"
        self._thread = threading.Thread(target=self._run, name="cifar-edge-serve-stream", daemon=True)
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

    def status(self) -> dict[str, Any]:
        """The stream's state and the newest frame's top-k labels, FPS and inference time, as JSON-ready values."""
        frame = self.latest()
        return {
            "source": self.source_text, "kind": self.kind, "state": self.state, "frames": self.frames,
            "bad_frames": self.bad_frames, "restarts": self.restarts, "last_error": self.last_error,
            "fps": round(frame.fps, 2) if frame else 0.0,
            "inference_ms": round(frame.inference_ms, 3) if frame else None,
            "categories": [c._asdict() for c in frame.categories] if frame else [],
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
                    self.last_error = f"frame {frame.index} skipped: {exc}"
                    log.warning("%s", self.last_error)
                if still:
                    self._stop.wait(self.interval_s)
        finally:
            self._close_source()

    def _read(self) -> Frame | None:
        """The next frame, or None (no frame yet, or the source ended and was closed for reopening)."""
        source = self._source
        try:
            frame = source.read(timeout=0.5)
        except Exception as exc:  # a source should not raise; if one does, it is reopened
            self.last_error = f"reading {self.source_text} failed: {exc}"
            log.warning("%s", self.last_error)
            self._close_source()
            return None
        if frame is None and source.ended:
            if source.incomplete:
                self.last_error = source.incomplete
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
            self.last_error = f"cannot reopen {self.source_text}: {exc}"
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
                log.debug("closing %s failed: %s", self.source_text, exc)

    def _render(self, image: np.ndarray, still: bool) -> StreamFrame:
        """Classify, annotate and encode one frame (raises for a frame that cannot be)."""
        image = as_bgr(image)
        if still:
            image = fit_frame(image, self.canvas)
        result = self.clf.classify(image, color="bgr")
        fps = self._fps.tick()
        draw_overlay(image, OverlayInfo(categories=result.categories, fps=fps, inference_ms=result.timing.inference_ms,
                                        model_name=self.clf.model_name, backend_name=self.clf.backend_name))
        ok, buf = cv2().imencode(".jpg", image, [int(cv2().IMWRITE_JPEG_QUALITY), self.jpeg_quality])
        if not ok:
            raise OutputError("JPEG encoding failed")
        h, w = image.shape[:2]
        return StreamFrame(self.frames + 1, buf.tobytes(), result.categories, fps, result.timing.inference_ms,
                           w, h, time.time())

    def _publish(self, frame: StreamFrame) -> None:
        with self._lock:
            self._latest = frame
            self.frames = frame.seq
        self.state = "running"
        for callback in self._listeners:
            try:
                callback()
            except Exception as exc:
                log.debug("stream listener failed: %s", exc)
