"""Live-stream mode (as MediaPipe's ``LIVE_STREAM``): classify frames asynchronously, newest first.

>>> from edge_sdk import LiveClassifier
>>> def on_result(result, frame, timestamp_ms):
...     print(timestamp_ms, result.top)
>>> with LiveClassifier(None, on_result, num_threads=2) as live:   # None: the bundled model
...     for ts, frame in camera_frames():                           # BGR numpy frames
...         live.classify_async(frame, ts, color="bgr")             # returns at once

One worker thread classifies; ``classify_async`` only hands it the frame. A frame submitted while the
worker is busy replaces the one waiting, so the worker always takes the newest frame and a slow model never
makes the stream fall behind (each replaced frame counts in :attr:`LiveClassifier.dropped`). Timestamps must
increase strictly and results are delivered in timestamp order, on the worker thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .classifier import ClassificationResult, Classifier
from .errors import ClosedError, InvalidArgumentError, InvalidArgumentTypeError
from .inputs import DEFAULT_COLOR

log = logging.getLogger(__name__)

#: ``result_callback(result, frame, timestamp_ms)``: called on the worker thread for each classified frame.
ResultCallback = Callable[[ClassificationResult, Any, float], None]
#: ``error_callback(exception, frame, timestamp_ms)``: called when classifying one frame failed.
ErrorCallback = Callable[[Exception, Any, float], None]


class LiveClassifier:
    """Asynchronous, frame-dropping, order-preserving classification of a live stream.

    ``classifier`` is a :class:`~edge_sdk.Classifier` (which the caller keeps owning), or a model path / ``None``
    for the bundled model, in which case ``classifier_kwargs`` (``num_threads``, ``top_k``, ...) build one that
    :meth:`close` also closes. ``result_callback(result, frame, timestamp_ms)`` receives every result;
    ``error_callback(exc, frame, timestamp_ms)`` every per-frame failure (without it a bad frame is logged and
    skipped: one bad frame never stops the stream). Raises :class:`InvalidArgumentTypeError` without a
    ``result_callback``, or given a Classifier and arguments to build one, and what :class:`Classifier` raises.
    """

    def __init__(
        self,
        classifier: Classifier | str | os.PathLike[str] | None = None,
        result_callback: ResultCallback | None = None,
        *,
        error_callback: ErrorCallback | None = None,
        **classifier_kwargs: Any,
    ) -> None:
        if result_callback is None:
            raise InvalidArgumentTypeError("LiveClassifier needs a result_callback(result, frame, timestamp_ms)")
        if hasattr(classifier, "classify"):
            if classifier_kwargs:
                raise InvalidArgumentTypeError(f"pass either a Classifier or the arguments to build one, not both "
                                               f"({', '.join(classifier_kwargs)})")
            self.classifier = classifier
            self._owns_classifier = False
        else:
            self.classifier = Classifier(classifier, **classifier_kwargs)
            self._owns_classifier = True
        self._result_callback = result_callback
        self._error_callback = error_callback
        self._cond = threading.Condition()
        self._pending: tuple[Any, float, str] | None = None  # the one frame waiting for the worker
        self._busy = False  # the worker is classifying or delivering a frame
        self._closing = False
        self._closed = False
        self._last_timestamp: float | None = None
        self.submitted = self.processed = self.dropped = self.errors = 0  # frames accepted, done, replaced, failed
        self._worker = threading.Thread(target=self._run, name="cifar-edge-live", daemon=True)
        self._worker.start()

    def classify_async(self, frame: Any, timestamp_ms: float, color: str = DEFAULT_COLOR) -> None:
        """Queue ``frame`` for classification and return at once; a frame still waiting from an earlier call is
        dropped in favour of this one. ``frame`` is any image the SDK accepts (numpy arrays are copied, so the
        caller may reuse its buffer), RGB unless ``color="bgr"`` (OpenCV frames). Raises :class:`ClosedError`
        after :meth:`close`, :class:`InvalidArgumentError` unless ``timestamp_ms`` exceeds the previous one.
        """
        if isinstance(frame, np.ndarray):
            frame = frame.copy()
        with self._cond:
            if self._closing:
                raise ClosedError("this LiveClassifier is closed")
            if self._last_timestamp is not None and not timestamp_ms > self._last_timestamp:
                raise InvalidArgumentError(
                    f"timestamps must increase: got {timestamp_ms} ms after {self._last_timestamp} ms")
            self._last_timestamp = timestamp_ms
            self.submitted += 1
            if self._pending is not None:
                self.dropped += 1
            self._pending = (frame, timestamp_ms, color)
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        """True while a frame is being classified or waits for the worker."""
        with self._cond:
            return self._busy or self._pending is not None

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted frame has been delivered; False if ``timeout`` (s) ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._pending is None, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closing)
                if self._closing:
                    # A frame still waiting at close is dropped, not classified.
                    if self._pending is not None:
                        self.dropped += 1
                        self._pending = None
                    self._cond.notify_all()
                    return
                frame, timestamp_ms, color = self._pending
                self._pending = None
                self._busy = True
            try:
                self._process(frame, timestamp_ms, color)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _process(self, frame: Any, timestamp_ms: float, color: str) -> None:
        try:
            result = self.classifier.classify(frame, color=color)
        except Exception as exc:  # one bad frame never stops the stream
            self.errors += 1
            if self._error_callback is not None:
                self._call(self._error_callback, exc, frame, timestamp_ms)
            else:
                log.warning("frame at %s ms not classified: %s", timestamp_ms, exc)
            return
        self.processed += 1
        self._call(self._result_callback, result, frame, timestamp_ms)

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # a failing callback must not kill the worker
            log.exception("LiveClassifier callback %r failed", callback)

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting frames, let the frame in flight finish, drop the waiting one, join the worker.

        Closes the classifier too when this object built it. Calling it again does nothing.
        """
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout)
            if self._worker.is_alive():
                return  # timed out: the frame in flight is still running; close() again to wait more
        self._closed = True
        if self._owns_classifier:
            self.classifier.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has stopped the worker."""
        return self._closed

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._worker.is_alive()

    def __enter__(self) -> LiveClassifier:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        """Leaving the ``with`` block normally delivers every accepted frame (the last one included)
        before closing; leaving it through an exception closes at once, dropping a waiting frame."""
        if exc_type is None:
            self.flush()
        self.close()

    def __repr__(self) -> str:
        return (f"LiveClassifier({self.classifier!r}, submitted={self.submitted}, processed={self.processed}, "
                f"dropped={self.dropped}, errors={self.errors})")
