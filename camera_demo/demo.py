"""The demo loop: read frames, classify, annotate, show or record, log one JSON line per classified frame.

Two ways to run a source:

* **frame by frame** (video files, images, folders): every frame is classified
  synchronously before it is shown, so the log has one line per frame and the
  annotation always belongs to the frame under it.
* **live** (cameras, streams, ``realtime=True`` video files): a reader thread
  keeps only the newest frame and the classifier runs in the SDK's live-stream
  mode (:class:`edge_sdk.LiveClassifier`): frames are shown at once with the
  newest result, frames that arrive while the model is busy are dropped, and
  the log has one line per classified frame.

Keys in the window: ``q``/ESC quit, space pauses, ``s`` saves a snapshot.
``headless=True`` opens no window (a Raspberry Pi without a screen, CI).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from cifar_edge.cli.atomic import atomic_open, atomic_path, check_output_file
from edge_sdk.classifier import ClassificationResult, Classifier
from edge_sdk.errors import EdgeSDKError, InvalidImageError
from cifar_edge.cli.errors import OutputError
from edge_sdk.live import LiveClassifier

from ._cv2 import cv2, quiet_native
from .overlay import DEFAULT_CANVAS, FpsMeter, OverlayInfo, draw_overlay, fit_frame
from .sources import MAX_CORRUPT_FRAMES, Frame, FrameSource, as_bgr, open_source

log = logging.getLogger(__name__)

#: Output video containers and the codec written into each.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
WINDOW_TITLE = "cifar-edge camera"
#: largest --width / --height (8K is 7680 wide); bigger canvases cannot be allocated on the boards targeted
MAX_SIDE = 8192
KEY_QUIT, KEY_PAUSE, KEY_SNAPSHOT = "quit", "pause", "snapshot"


@dataclass
class DemoConfig:
    """Everything ``cifar-edge camera`` takes (see ``cifar-edge camera --help``)."""

    source: str = "0"
    model: str | None = None
    backend: str | None = None
    threads: int | None = None
    top_k: int = 3
    score_threshold: float = 0.0
    width: int | None = None
    height: int | None = None
    headless: bool = False
    output: str | None = None
    log: str | None = None
    max_frames: int | None = None
    realtime: bool = False
    output_fps: float | None = None
    snapshot_dir: str = "."
    reconnects: int = 5
    backoff_s: float = 0.5
    interval_s: float = 1.0  # how long the window shows each still image

    def validate(self) -> None:
        """Reject bad values and unwritable outputs before any file or device is opened.

        Raises ``ValueError`` for option values and :class:`OutputError` for an output path that
        cannot be written (a folder, a file in an unwritable folder, the source itself, the same
        path given twice).
        """
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"--max-frames must be >= 1, got {self.max_frames}")
        if (self.width is None) != (self.height is None) or (
                self.width is not None and not (16 <= self.width <= MAX_SIDE and 16 <= self.height <= MAX_SIDE)):
            raise ValueError(f"give --width and --height together, each from 16 to {MAX_SIDE} pixels")
        if self.output and Path(self.output).suffix.lower() not in VIDEO_CODECS:
            raise OutputError(
                f"cannot write {self.output}: use one of {', '.join(VIDEO_CODECS)} for the output video"
            )
        if self.output_fps is not None and not 0 < self.output_fps <= 1000:
            raise ValueError(f"--output-fps must lie in (0, 1000], got {self.output_fps}")
        if self.reconnects < 0:
            raise ValueError(f"--reconnects must be >= 0, got {self.reconnects}")
        if not 0 <= self.interval_s <= 3600:
            raise ValueError(f"--interval must lie in [0, 3600] seconds, got {self.interval_s}")
        self._check_outputs()

    def _check_outputs(self) -> None:
        outputs = [(flag, path) for flag, path in (("--output", self.output), ("--log", self.log)) if path]
        for flag, path in outputs:
            check_output_file(path, f"{flag} {path}")
            if _same_file(path, self.source):
                raise OutputError(f"cannot write {flag} {path}: it is the source being read")
        if len(outputs) == 2 and Path(self.output).absolute() == Path(self.log).absolute():
            raise OutputError(f"--output and --log name the same file: {self.output}")
        if not self.headless:
            folder = Path(self.snapshot_dir)
            if folder.exists() and not folder.is_dir():
                raise OutputError(f"cannot write snapshots in --snapshot-dir {folder}: not a directory")


def _same_file(path: str, other: str) -> bool:
    try:
        return Path(path).exists() and Path(other).exists() and os.path.samefile(path, other)
    except OSError:
        return False


@dataclass
class DemoSummary:
    """What a run did; ``incomplete`` says why a source ended early (truncated file, lost stream)."""

    source: str
    kind: str
    model: str
    backend: str
    frames: int = 0  # frames shown / written
    classified: int = 0  # frames with a result (one log line each)
    dropped: int = 0  # live sources: frames skipped to stay current
    bad_frames: int = 0  # undecodable or unclassifiable frames, skipped
    seconds: float = 0.0
    fps: float = 0.0
    mean_inference_ms: float | None = None
    mean_latency_ms: float | None = None  # preprocess + inference + postprocess
    output: str | None = None
    log: str | None = None
    snapshots: list[str] = field(default_factory=list)
    reconnects: int = 0
    stopped_by: str = "end"  # end, max-frames, key, signal
    incomplete: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- outputs
def result_record(frame: Frame, result: ClassificationResult | None, error: str | None = None) -> dict[str, Any]:
    """The JSON line logged for one frame: index, timestamp, top-k and latency (or the error)."""
    rec: dict[str, Any] = {"frame": frame.index, "timestamp_ms": round(frame.timestamp_ms, 3)}
    if frame.name:
        rec["image"] = frame.name
    if result is not None:
        rec["label"], rec["unknown"] = result.label, result.unknown
        rec["top_k"] = [{"index": c.index, "label": c.label, "score": round(c.score, 6)} for c in result.categories]
        t = result.timing
        rec["latency_ms"] = {"preprocess": round(t.preprocess_ms, 3), "inference": round(t.inference_ms, 3),
                             "postprocess": round(t.postprocess_ms, 3), "total": round(t.total_ms, 3)}
    if error is not None:
        rec["error"] = error
    return rec


class JsonlLog:
    """One JSON object per line, written to a temporary file renamed into place when the run ends."""

    def __init__(self, fh: IO[str] | None) -> None:
        self._fh = fh
        self._lock = threading.Lock()
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            return
        line = json.dumps(record, separators=(",", ":"), allow_nan=False)
        with self._lock:
            self._fh.write(line + "\n")
            self.lines += 1


class VideoSink:
    """The annotated video: opened at the first frame (its size fixes the video's), renamed into place at the end.

    OpenCV's writer drops write errors (a full disk) silently, so before the rename the written file
    is opened again and must hold every frame; otherwise :class:`OutputError` is raised and nothing
    is left under the final name.
    """

    def __init__(self, path: str | None, fps: float, stack: contextlib.ExitStack) -> None:
        self.path = path
        self.fps = fps
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self._stack = stack
        self._writer: Any = None
        self._tmp: Path | None = None

    def write(self, image: np.ndarray) -> None:
        if self.path is None:
            return
        if self._writer is None:
            self._open((image.shape[1], image.shape[0]))
        if (image.shape[1], image.shape[0]) != self.size:
            image = fit_frame(image, self.size)
        self._writer.write(image)
        self.frames += 1

    def _open(self, size: tuple[int, int]) -> None:
        cv = cv2()
        suffix = Path(self.path).suffix.lower()
        tmp = self._stack.enter_context(atomic_path(self.path, suffix=suffix))
        writer = cv.VideoWriter(str(tmp), cv.VideoWriter_fourcc(*VIDEO_CODECS[suffix]), self.fps, size)
        if not writer.isOpened():
            raise OutputError(f"cannot write video {self.path}: OpenCV has no {VIDEO_CODECS[suffix]} encoder here")
        self._stack.callback(self._finish)  # runs before atomic_path renames the file
        self._writer, self.size, self._tmp = writer, size, tmp

    def _finish(self) -> None:
        """Close the writer and check the file holds every frame written (:class:`OutputError` if not)."""
        with quiet_native():
            self._writer.release()
        held = video_frame_count(self._tmp, self.frames)
        if held != self.frames:
            raise OutputError(
                f"cannot write video {self.path}: the written file holds {held} of {self.frames} frames "
                "(disk full or a write error); nothing was kept"
            )


def video_frame_count(path: str | os.PathLike[str], expected: int) -> int:
    """Frames a written video holds: the container's count, checked by reading when it disagrees with ``expected``."""
    if not Path(path).is_file() or Path(path).stat().st_size == 0:
        return 0
    cv = cv2()
    with quiet_native():
        cap = cv.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                return 0
            declared = cap.get(cv.CAP_PROP_FRAME_COUNT)
            if declared == expected:
                return expected
            count = 0  # estimated or missing count (Matroska): count what can be read
            while cap.grab():
                count += 1
            return count
        finally:
            cap.release()


def save_snapshot(image: np.ndarray, folder: str | os.PathLike[str], frame_index: int) -> Path:
    """Write ``image`` as ``snapshot-<time>-f<frame>.png`` in ``folder`` (atomically); return the path."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(folder) / f"snapshot-{stamp}-f{frame_index:06d}"
    path, n = base.with_suffix(".png"), 1
    while path.exists():
        path, n = Path(f"{base}-{n}.png"), n + 1
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2().imwrite(str(tmp), image):
            raise OutputError(f"cannot write snapshot {path}")
    return path


# --------------------------------------------------------------------------- window and keys
def key_action(key: int) -> str | None:
    """The action for a key code from ``cv2.waitKey`` (q/ESC quit, space pause, s snapshot)."""
    if key < 0:
        return None
    key &= 0xFF
    if key in (ord("q"), ord("Q"), 27):
        return KEY_QUIT
    if key == ord(" "):
        return KEY_PAUSE
    if key in (ord("s"), ord("S")):
        return KEY_SNAPSHOT
    return None


class Window:
    """An OpenCV window; :class:`OutputError` when there is no display or OpenCV was built without GUI."""

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
                and not _is_macos():
            raise OutputError("no display to open a window on (DISPLAY is not set); run with --headless")
        self.title = title
        cv = cv2()
        try:
            cv.namedWindow(title, cv.WINDOW_AUTOSIZE)
        except cv.error as exc:
            raise OutputError(
                "this OpenCV build cannot open windows (opencv-python-headless?); run with --headless "
                f"or install the 'camera' extra ({exc})"
            ) from exc
        self._shown = False

    def show(self, image: np.ndarray) -> None:
        cv2().imshow(self.title, image)
        self._shown = True

    def poll(self, delay_ms: int = 1) -> int:
        """Pump the GUI for ``delay_ms`` and return the key pressed (-1 for none)."""
        return int(cv2().waitKey(max(1, delay_ms)))

    @property
    def closed(self) -> bool:
        """True when the user closed the window with its close button."""
        if not self._shown:
            return False
        try:
            return cv2().getWindowProperty(self.title, cv2().WND_PROP_VISIBLE) < 1
        except cv2().error:
            return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            cv2().destroyWindow(self.title)
            cv2().waitKey(1)


def _is_macos() -> bool:
    import sys

    return sys.platform == "darwin"


# --------------------------------------------------------------------------- the loop
class Demo:
    """One run of the demo; use :func:`run_demo`."""

    def __init__(self, config: DemoConfig, classifier: Classifier, source: FrameSource, window: Window | None,
                 sink: VideoSink, jsonl: JsonlLog) -> None:
        self.config = config
        self.clf = classifier
        self.source = source
        self.window = window
        self.sink = sink
        self.jsonl = jsonl
        self.fps = FpsMeter(30)
        self.stop = threading.Event()
        self.paused = False
        self.summary = DemoSummary(source=str(source.spec), kind=source.spec.kind, model=classifier.model_name,
                                   backend=classifier.backend_name, output=config.output, log=config.log)
        self._latency_sums = [0.0, 0.0]  # inference, total ms summed over the results (constant memory)
        self._corrupt_run = 0  # corrupt frames in a row from the source
        self._failed_run = 0  # frames in a row the classifier failed on
        self._lock = threading.Lock()
        self._latest: ClassificationResult | None = None  # the newest result
        self._last_canvas: np.ndarray | None = None
        self._last_index = 0
        self._size = (config.width, config.height) if config.width else DEFAULT_CANVAS

    # -- shared steps
    def _record(self, frame: Frame, result: ClassificationResult | None, error: str | None = None) -> None:
        self.jsonl.write(result_record(frame, result, error))
        with self._lock:
            if result is not None:
                self.summary.classified += 1
                self._latency_sums[0] += result.timing.inference_ms
                self._latency_sums[1] += result.timing.total_ms
                self._latest = result
            else:
                self.summary.bad_frames += 1

    def _present(self, frame: Frame) -> None:
        """Annotate ``frame`` with the newest result, write it, show it, handle keys."""
        image = frame.image
        if self.source.spec.kind in ("image", "folder"):
            image = fit_frame(image, self._size)  # tiny CIFAR pictures get a readable canvas
        with self._lock:
            latest = self._latest
        draw_overlay(image, self._overlay_info(latest, self.fps.tick()))
        self.sink.write(image)
        self.summary.frames += 1
        self._last_canvas, self._last_index = image, frame.index
        if self.window is not None:
            self.window.show(image)
            self._handle_keys(1)

    def _overlay_info(self, latest: ClassificationResult | None, fps: float, status: str = "") -> OverlayInfo:
        return OverlayInfo(categories=latest.categories if latest else None, fps=fps,
                           inference_ms=latest.timing.inference_ms if latest else None, model_name=self.clf.model_name,
                           backend_name=self.clf.backend_name, status=status, unknown=bool(latest and latest.unknown))

    def _handle_keys(self, delay_ms: int) -> None:
        if self.window is None:
            return
        action = key_action(self.window.poll(delay_ms))
        if self.window.closed or action == KEY_QUIT:
            self._stop("key")
        elif action == KEY_PAUSE:
            self.paused = not self.paused
            if self._last_canvas is not None:
                shown = self._last_canvas.copy()
                if self.paused:
                    draw_overlay(shown, self._overlay_info(self._latest, self.fps.fps, "PAUSED (space resumes)"))
                self.window.show(shown)
        elif action == KEY_SNAPSHOT and self._last_canvas is not None:
            path = save_snapshot(self._last_canvas, self.config.snapshot_dir, self._last_index)
            self.summary.snapshots.append(str(path))
            log.warning("snapshot saved: %s", path)

    def _usable(self, frame: Frame) -> bool:
        """Check (and normalize) ``frame.image``; a corrupt frame is logged, counted and never shown.

        The built-in sources already skip corrupt frames; this guards sources passed in by callers.
        After ``MAX_CORRUPT_FRAMES`` in a row the run ends, reported as incomplete.
        """
        try:
            frame.image = as_bgr(frame.image)
        except InvalidImageError as exc:
            log.warning("frame %d skipped: %s", frame.index, exc)
            self._record(frame, None, str(exc))
            self._corrupt_run += 1
            if self._corrupt_run >= MAX_CORRUPT_FRAMES:
                self.summary.incomplete = f"{self.source.spec}: {self._corrupt_run} corrupt frames in a row"
                log.warning(self.summary.incomplete)
                self._stop("end")
            return False
        self._corrupt_run = 0
        return True

    def _stop(self, why: str) -> None:
        if not self.stop.is_set():
            self.summary.stopped_by = why
            self.stop.set()

    def _frame_budget_left(self) -> bool:
        if self.config.max_frames is not None and self.summary.frames >= self.config.max_frames:
            self._stop("max-frames")
            return False
        return not self.stop.is_set()

    def _wait_while_paused(self) -> bool:
        """Pump keys while paused; True if the loop should skip this turn."""
        if self.paused and self.window is not None:
            self._handle_keys(30)
            return True
        return False

    # -- frame by frame
    def run_sync(self) -> None:
        still = self.source.spec.kind in ("image", "folder")
        while self._frame_budget_left():
            if self._wait_while_paused():
                continue
            frame = self.source.read()
            if frame is None:
                if self.source.ended:
                    break
                continue
            if not self._usable(frame):
                continue
            try:
                result = self.clf.classify(frame.image, color="bgr")
            except EdgeSDKError as exc:  # one bad frame (or one failed runtime call) never ends the loop
                log.warning("frame %d not classified: %s", frame.index, exc)
                self._record(frame, None, str(exc))
                self._failed_run += 1
                if self._failed_run >= MAX_CORRUPT_FRAMES:
                    self.summary.incomplete = f"the model failed on {self._failed_run} frames in a row: {exc}"
                    log.warning(self.summary.incomplete)
                    self._stop("end")
            else:
                self._failed_run = 0
                self._record(frame, result)
            self._present(frame)
            if still and self.window is not None:
                self._linger(self.config.interval_s)

    def _linger(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stop.is_set() and (self.paused or time.monotonic() < end):
            self._handle_keys(30)

    # -- live
    def run_live(self) -> None:
        pending: dict[float, Frame] = {}  # timestamp -> frame awaiting its result (for the log line)
        pending_lock = threading.Lock()

        def frame_for(timestamp_ms: float) -> Frame | None:
            with pending_lock:
                for ts in [t for t in pending if t < timestamp_ms]:
                    del pending[ts]  # dropped frames: no result will come
                return pending.pop(timestamp_ms, None)

        def on_result(result: ClassificationResult, _image: Any, timestamp_ms: float) -> None:
            frame = frame_for(timestamp_ms)
            if frame is not None:
                self._record(frame, result)

        def on_error(exc: Exception, _image: Any, timestamp_ms: float) -> None:
            frame = frame_for(timestamp_ms)
            log.warning("frame at %.0f ms not classified: %s", timestamp_ms, exc)
            if frame is not None:
                self._record(frame, None, str(exc))

        live = LiveClassifier(self.clf, on_result, error_callback=on_error)
        try:
            wait = 0.03 if self.window is not None else 0.5
            while self._frame_budget_left():
                if self._wait_while_paused():
                    continue
                frame = self.source.read(timeout=wait)
                if frame is None:
                    if self.source.ended:
                        break
                    self._handle_keys(1)
                    continue
                if not self._usable(frame):
                    continue
                with pending_lock:
                    pending[frame.timestamp_ms] = frame
                live.classify_async(frame.image, frame.timestamp_ms, color="bgr")
                self._present(frame)
            live.flush(timeout=10.0)  # the last frame's result still belongs in the log
        finally:
            live.close()
            self.summary.dropped += live.dropped

    def finish(self, seconds: float) -> DemoSummary:
        s = self.summary
        s.seconds = round(seconds, 4)
        s.fps = round(s.frames / seconds, 3) if seconds > 0 else 0.0
        s.dropped += self.source.dropped
        s.bad_frames += self.source.bad_frames
        s.incomplete = self.source.incomplete or s.incomplete
        s.reconnects = int(getattr(self.source, "reconnects", 0))
        if s.classified:
            s.mean_inference_ms = round(self._latency_sums[0] / s.classified, 4)
            s.mean_latency_ms = round(self._latency_sums[1] / s.classified, 4)
        if self.sink.path is None or self.sink.frames == 0:
            s.output = None
        return s


class SignalGuard:
    """SIGINT and SIGTERM during a run: a clean stop, never an exception in the middle of a frame.

    Entered (main thread only; elsewhere it does nothing), either signal raises
    ``KeyboardInterrupt`` until :meth:`arm` is called, so an interrupted start-up removes what it
    had begun to write. Once armed, a signal only calls ``stop``: the loop ends at its next check
    and the video, the log and the summary are finalized together, so they agree frame for frame.
    A third signal raises ``KeyboardInterrupt`` anyway (an escape hatch). The previous handlers are
    restored on exit.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._stop: Any = None
        self._previous: dict[int, Any] = {}
        self.received = 0

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def arm(self, stop: Any) -> None:
        """From now on a signal calls ``stop()`` instead of raising."""
        self._stop = stop

    def _handle(self, signum: int, _frame: object) -> None:
        self.received += 1
        if self._stop is None or self.received >= 3:
            raise KeyboardInterrupt
        self._stop()

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def run_demo(config: DemoConfig, *, classifier: Classifier | None = None,
             source: FrameSource | None = None, window: Window | None = None) -> DemoSummary:
    """Run the demo until the source ends, ``max_frames`` are shown, q/ESC, Ctrl+C or SIGTERM.

    ``classifier``/``source``/``window`` replace the ones the config describes
    (the caller keeps owning them). Every output path is checked before anything is opened. The
    output video and the JSONL log appear only when the run ends, complete (written to temporary
    names, checked, then renamed); a signal during the run stops it cleanly (see :class:`SignalGuard`),
    one during start-up raises ``KeyboardInterrupt`` and leaves no output. Raises
    :class:`OutputError` when an output cannot be written (nothing is left under its name then),
    :class:`SourceError`, :class:`ModelLoadError` and ``ValueError`` for bad options.
    """
    config.validate()
    with SignalGuard() as guard:
        summary = _run(config, guard, classifier, source, window)
    return summary


def _run(config: DemoConfig, guard: SignalGuard, classifier: Classifier | None, source: FrameSource | None,
         window: Window | None) -> DemoSummary:
    own_clf = classifier is None
    with contextlib.ExitStack() as stack:
        clf = classifier or Classifier(config.model, backend=config.backend, num_threads=config.threads,
                                       top_k=config.top_k, score_threshold=config.score_threshold)
        if own_clf:
            stack.callback(clf.close)
        if source is None:
            source = stack.enter_context(open_source(
                config.source, width=config.width, height=config.height, realtime=config.realtime,
                max_reconnects=config.reconnects, backoff_s=config.backoff_s))
        if window is None and not config.headless:
            window = Window()
            stack.callback(window.close)
        fh = stack.enter_context(atomic_open(config.log, "w", encoding="utf-8")) if config.log else None
        fps = config.output_fps or source.fps or 30.0
        demo = Demo(config, clf, source, window, VideoSink(config.output, fps, stack), JsonlLog(fh))
        guard.arm(lambda: demo._stop("signal"))  # outputs are finalized below, still under the guard
        start = time.perf_counter()
        elapsed: float | None = None
        try:
            if source.live:
                demo.run_live()
            else:
                demo.run_sync()
            elapsed = time.perf_counter() - start
            if window is not None and not demo.stop.is_set() and demo.summary.frames:
                demo._linger(float("inf"))  # the source ended: keep the last picture up until q/ESC
        except KeyboardInterrupt:  # a third signal, or one outside the main thread's guard
            demo._stop("signal")
            if elapsed is None:
                elapsed = time.perf_counter() - start
        summary = demo.finish(elapsed)
    return summary
