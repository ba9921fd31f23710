"""edge_sdk.LiveClassifier: asynchronous, frame-dropping, in-order classification of a live stream."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Classifier, LiveClassifier
from edge_sdk.errors import ClosedError, InvalidArgumentError, InvalidArgumentTypeError

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow


@pytest.fixture(scope="module")
def clf() -> Classifier:
    with Classifier() as c:
        yield c


@pytest.fixture(scope="module")
def frames(cifar10_dir) -> list[np.ndarray]:
    """Real CIFAR test pictures as BGR frames, two per class."""
    from PIL import Image

    paths = [p for c in sorted((cifar10_dir / "test").iterdir()) for p in sorted(c.glob("*.jpg"))[:2]]
    return [np.ascontiguousarray(np.asarray(Image.open(p).convert("RGB"))[:, :, ::-1]) for p in paths]


class GatedClassifier:
    """A real Classifier whose classify waits until the test opens the gate: the worker stays busy on demand."""

    def __init__(self, clf: Classifier) -> None:
        self.clf = clf
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)
        self.seen: list[int] = []

    def classify(self, image, *, color="rgb"):
        self.started.release()
        assert self.gate.wait(10), "the test never opened the gate"
        self.seen.append(id(image))
        return self.clf.classify(image, color=color)


class Collector:
    def __init__(self) -> None:
        self.results: list[tuple[float, object, np.ndarray]] = []
        self.threads: set[str] = set()

    def __call__(self, result, frame, timestamp_ms) -> None:
        self.results.append((timestamp_ms, result, frame))
        self.threads.add(threading.current_thread().name)

    @property
    def timestamps(self) -> list[float]:
        return [r[0] for r in self.results]


def test_frames_submitted_while_busy_are_dropped_and_newest_wins(clf, frames):
    gated, got = GatedClassifier(clf), Collector()
    live = LiveClassifier(gated, got)
    live.classify_async(frames[0], 0, color="bgr")
    assert gated.started.acquire(timeout=10)  # the worker holds frame 0
    for ts in range(1, 10):  # nine more frames while the model is busy
        live.classify_async(frames[ts], ts * 33, color="bgr")
    assert live.busy and live.dropped == 8  # frames 1..8 replaced by their successors; 9 waits
    gated.gate.set()
    assert live.flush(timeout=10)
    assert got.timestamps == [0, 9 * 33]  # the frame in flight, then the newest one
    assert live.submitted == 10 and live.processed == 2 and live.dropped == 8
    for ts, result, frame in got.results:
        want = clf.classify(frames[int(ts) // 33], color="bgr")
        assert [c.label for c in result.categories] == [c.label for c in want.categories]
        np.testing.assert_array_equal(frame, frames[int(ts) // 33])
    assert got.threads and threading.current_thread().name not in got.threads  # delivered on the worker
    live.close()
    assert not live.running and live.closed


def test_results_arrive_in_timestamp_order_and_match_sync_classify(clf, frames):
    got = Collector()
    with LiveClassifier(clf, got) as live:
        for i in range(200):  # submitted as fast as the loop runs: some are dropped
            live.classify_async(frames[i % len(frames)], 1000.0 + i * 0.5, color="bgr")
        assert live.flush(timeout=30)
        assert live.processed + live.dropped == live.submitted == 200
    ts = got.timestamps
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert ts[-1] == 1000.0 + 199 * 0.5  # the newest frame is never lost
    for t, result, _ in got.results:
        i = round((t - 1000.0) / 0.5)
        want = clf.classify(frames[i % len(frames)], color="bgr")
        assert [c.index for c in result.categories] == [c.index for c in want.categories]


def test_timestamps_must_increase(clf, frames):
    with LiveClassifier(clf, Collector()) as live:
        live.classify_async(frames[0], 100, color="bgr")
        with pytest.raises(InvalidArgumentError, match="timestamps must increase"):
            live.classify_async(frames[1], 100, color="bgr")
        with pytest.raises(ValueError, match="timestamps must increase"):
            live.classify_async(frames[1], 50, color="bgr")
        live.classify_async(frames[1], 101, color="bgr")
        assert live.submitted == 2


def test_close_joins_the_worker_and_refuses_new_frames(clf, frames):
    gated, got = GatedClassifier(clf), Collector()
    live = LiveClassifier(gated, got)
    live.classify_async(frames[0], 1, color="bgr")
    assert gated.started.acquire(timeout=10)
    live.classify_async(frames[1], 2)  # waits behind frame 1: dropped by close
    threading.Timer(0.2, gated.gate.set).start()
    live.close()  # waits for the frame in flight, then joins
    assert not live.running and live.closed
    assert got.timestamps == [1] and live.dropped == 1
    with pytest.raises(ClosedError, match="closed"):  # an EdgeSDKError and a RuntimeError
        live.classify_async(frames[2], 3, color="bgr")
    live.close()  # idempotent
    assert clf.classify(frames[0]).top is not None  # a caller's classifier stays open


def test_leaving_the_with_block_delivers_the_waiting_frame(clf, frames):
    # The README's loop ends with the with block: the last frame (waiting behind a busy worker) must
    # be delivered, not silently dropped as an explicit close() does.
    gated, got = GatedClassifier(clf), Collector()
    with LiveClassifier(gated, got) as live:
        live.classify_async(frames[0], 1, color="bgr")
        assert gated.started.acquire(timeout=10)
        live.classify_async(frames[1], 2, color="bgr")  # waits while frame 1 is in flight
        threading.Timer(0.2, gated.gate.set).start()
    assert got.timestamps == [1, 2] and live.dropped == 0 and live.closed


def test_leaving_the_with_block_by_an_exception_closes_at_once(clf, frames):
    gated, got = GatedClassifier(clf), Collector()
    with pytest.raises(KeyError):
        with LiveClassifier(gated, got) as live:
            live.classify_async(frames[0], 1, color="bgr")
            assert gated.started.acquire(timeout=10)
            live.classify_async(frames[1], 2, color="bgr")
            threading.Timer(0.2, gated.gate.set).start()
            raise KeyError("caller's bug")
    assert got.timestamps == [1] and live.dropped == 1 and live.closed


def test_a_bad_frame_or_a_failing_callback_never_stops_the_stream(clf, frames):
    errors: list[tuple[float, str]] = []
    got = Collector()
    calls = []

    def flaky(result, frame, ts):
        calls.append(ts)
        if ts == 2:
            raise RuntimeError("callback bug")
        got(result, frame, ts)

    with LiveClassifier(clf, flaky, error_callback=lambda exc, f, ts: errors.append((ts, str(exc)))) as live:
        for ts, frame in enumerate([np.zeros((0, 0, 3), np.uint8), frames[0], frames[1], frames[2]], start=1):
            live.classify_async(frame, ts, color="bgr")
            assert live.flush(timeout=10)
        assert live.errors == 1 and live.processed == 3 and live.running
    assert [ts for ts, _ in errors] == [1] and "empty" in errors[0][1]
    assert calls == [2, 3, 4] and got.timestamps == [3, 4]


def test_builds_and_owns_a_classifier_from_keyword_arguments(frames):
    got = Collector()
    live = LiveClassifier(None, got, top_k=2)
    live.classify_async(frames[0], 0, color="bgr")
    assert live.flush(timeout=10)
    assert len(got.results[0][1].categories) == 2
    owned = live.classifier
    live.close()
    with pytest.raises(Exception, match="closed"):
        owned.classify(frames[0])
    with pytest.raises(InvalidArgumentTypeError, match="result_callback"):  # also a TypeError
        LiveClassifier(None)
    with pytest.raises(InvalidArgumentTypeError, match="not both"):
        LiveClassifier(owned, got, top_k=2)


def test_live_mode_keeps_edge_sdk_free_of_opencv_and_tensorflow():
    code = ("import sys\nfrom edge_sdk import LiveClassifier\n"
            "print(','.join(m for m in ('cv2', 'tensorflow', 'tkinter') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_one_colour_default_rgb_for_classify_and_classify_async(clf, frames):
    import inspect

    defaults = {inspect.signature(f).parameters["color"].default
                for f in (Classifier.classify, Classifier.classify_batch, Classifier.encode, LiveClassifier.classify_async)}
    assert defaults == {"rgb"}
    rgb = np.ascontiguousarray(frames[4][:, :, ::-1])
    got = Collector()
    with LiveClassifier(clf, got) as live:
        live.classify_async(rgb, 1)  # no colour given: taken as RGB, as classify takes it
        assert live.flush(timeout=10)
    want, swapped = clf.classify(rgb), clf.classify(rgb, color="bgr")
    assert [c.score for c in want.categories] != [c.score for c in swapped.categories]  # the order matters here
    assert [(c.index, c.score) for c in got.results[0][1].categories] == [(c.index, c.score) for c in want.categories]
