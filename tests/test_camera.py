"""cifar-edge camera: the headless demo on videos built from real CIFAR test images, sources and errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cifar_edge.camera_demo.demo import DemoConfig, key_action, run_demo, save_snapshot
from cifar_edge.camera_demo.overlay import FpsMeter, OverlayInfo, draw_overlay
from cifar_edge.camera_demo.sources import (
    LiveSource,
    SourceSpec,
    VideoFileSource,
    open_source,
    parse_source,
)
from cifar_edge.camera_demo.synth import build_video, cifar_test_images
from edge_sdk import Classifier
from cifar_edge.cli.main import main
from cifar_edge.cli.errors import SourceError

SIZE = (320, 240)
HOLD = 5


@pytest.fixture(scope="module")
def clf() -> Classifier:
    with Classifier() as c:
        yield c


@pytest.fixture(scope="module")
def pictures(cifar10_dir) -> list[Path]:
    return cifar_test_images(cifar10_dir, per_class=1)  # one real test image per class


def decode(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def video(tmp_path_factory, pictures) -> tuple[Path, list[np.ndarray]]:
    """A 320x240 MP4: each CIFAR picture upscaled and held for HOLD frames; with its decoded frames."""
    path = tmp_path_factory.mktemp("video") / "cifar.mp4"
    n = build_video(pictures, path, size=SIZE, hold=HOLD, fps=10)
    frames = decode(path)
    assert n == len(pictures) * HOLD == len(frames)
    return path, frames


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def labels_of(result) -> list[str]:
    return [c.label for c in result.categories]


# --------------------------------------------------------------------------- the headless demo
def test_headless_demo_logs_every_frame_like_the_classifier_and_writes_an_annotated_video(
        tmp_path, video, clf, capsys):
    path, frames = video
    out, log = tmp_path / "out.mp4", tmp_path / "preds.jsonl"
    rc = main(["camera", "--source", str(path), "--headless", "--output", str(out), "--log", str(log), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == summary["classified"] == len(frames)
    assert summary["kind"] == "video" and summary["model"] == clf.model_name and summary["backend"] == clf.backend_name
    assert summary["dropped"] == 0 and summary["bad_frames"] == 0 and summary["incomplete"] is None

    records = read_jsonl(log)
    assert [r["frame"] for r in records] == list(range(len(frames)))
    assert [r["timestamp_ms"] for r in records] == pytest.approx([100.0 * i for i in range(len(frames))])
    for rec, frame in zip(records, frames):
        want = clf.classify(frame, color="bgr")
        assert [c["label"] for c in rec["top_k"]] == labels_of(want)
        assert [c["score"] for c in rec["top_k"]] == pytest.approx([c.score for c in want.categories], abs=1e-5)
        lat = rec["latency_ms"]
        assert lat["inference"] > 0 and lat["total"] >= lat["inference"]

    written = decode(out)
    assert len(written) == len(frames) and written[0].shape == (SIZE[1], SIZE[0], 3)
    three = clf.classify(frames[0], color="bgr").categories  # the panel's size for top-3 rows
    panel = draw_overlay(frames[0].copy(), OverlayInfo(three, 0.0, 1.0, clf.model_name, clf.backend_name))
    inside = (slice(panel.y, panel.y + panel.height), slice(panel.x, panel.x + panel.width))
    below = (slice(panel.y + panel.height + 4, SIZE[1]), slice(0, SIZE[0]))
    for got, src in zip(written[::HOLD], frames[::HOLD]):
        diff = np.abs(got.astype(int) - src.astype(int))
        assert diff[inside].mean() > 20, "no overlay drawn in the panel area"
        assert diff[below].mean() < 6, "the picture outside the panel should be unchanged (codec noise only)"


def test_max_frames_with_an_avi_output(tmp_path, video):
    path, _ = video
    out, log = tmp_path / "out.avi", tmp_path / "p.jsonl"
    summary = run_demo(DemoConfig(source=str(path), headless=True, output=str(out), log=str(log), max_frames=7))
    assert summary.frames == 7 and summary.stopped_by == "max-frames"
    assert len(read_jsonl(log)) == 7 and len(decode(out)) == 7
    assert not list(tmp_path.glob(".*.part*")), "temporary files left behind"


def test_realtime_video_runs_the_live_path_in_order(tmp_path, pictures, clf):
    path = tmp_path / "fast.mp4"
    build_video(pictures[:4], path, size=SIZE, hold=10, fps=40)  # 40 frames, one second
    frames = decode(path)
    log, out = tmp_path / "rt.jsonl", tmp_path / "rt.mp4"
    summary = run_demo(DemoConfig(source=str(path), headless=True, realtime=True, log=str(log), output=str(out)))
    records = read_jsonl(log)
    indices = [r["frame"] for r in records]
    assert records and indices == sorted(set(indices)) and indices[-1] <= len(frames) - 1
    assert summary.classified == len(records) <= summary.frames <= len(frames)
    assert len(decode(out)) == summary.frames
    for rec in records:
        assert [c["label"] for c in rec["top_k"]] == labels_of(clf.classify(frames[rec["frame"]], color="bgr"))


def test_folder_source_skips_a_corrupt_picture(tmp_path, pictures, clf):
    folder = tmp_path / "pics"
    folder.mkdir()
    for p in pictures[:3]:
        (folder / f"{p.parent.name}.jpg").write_bytes(p.read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    log, out = tmp_path / "f.jsonl", tmp_path / "f.mp4"
    summary = run_demo(DemoConfig(source=str(folder), headless=True, log=str(log), output=str(out)))
    assert summary.frames == 3 and summary.bad_frames == 1 and summary.incomplete is None
    records = read_jsonl(log)
    assert [Path(r["image"]).name for r in records] == ["airplane.jpg", "automobile.jpg", "bird.jpg"]
    for rec in records:
        assert [c["label"] for c in rec["top_k"]] == labels_of(clf.classify(rec["image"]))
    written = decode(out)
    assert len(written) == 3 and written[0].shape == (480, 640, 3)  # tiny pictures on the default canvas


def test_single_image_source(tmp_path, pictures, clf):
    log = tmp_path / "one.jsonl"
    summary = run_demo(DemoConfig(source=str(pictures[3]), headless=True, log=str(log)))
    (rec,) = read_jsonl(log)
    assert summary.frames == 1 and summary.kind == "image"
    assert [c["label"] for c in rec["top_k"]] == labels_of(clf.classify(pictures[3]))


# --------------------------------------------------------------------------- errors
def test_missing_source_is_a_clear_error(tmp_path, capsys):
    rc = main(["camera", "--source", str(tmp_path / "nope.mp4"), "--headless"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cifar-edge camera: error: source not found" in err and "nope.mp4" in err


def test_camera_that_does_not_exist_is_a_clear_error(capsys):
    rc = main(["camera", "--source", "57", "--headless"])
    assert rc == 2
    assert "cannot open camera 57" in capsys.readouterr().err


def test_truncated_mp4_cannot_be_opened(tmp_path, video, capsys):
    path, _ = video
    cut = tmp_path / "cut.mp4"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the MP4 index (moov) is at the end: nothing is playable
    rc = main(["camera", "--source", str(cut), "--headless", "--log", str(tmp_path / "x.jsonl")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cifar-edge camera: error: cannot open video" in err and "truncated" in err
    assert not (tmp_path / "x.jsonl").exists()


def test_truncated_avi_is_reported_after_its_readable_frames(tmp_path, pictures, capsys):
    full = tmp_path / "full.avi"
    total = build_video(pictures, full, size=SIZE, hold=HOLD, fps=10)
    cut = tmp_path / "cut.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    log, out = tmp_path / "cut.jsonl", tmp_path / "cut-out.avi"
    rc = main(["camera", "--source", str(cut), "--headless", "--log", str(log), "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "is truncated or corrupt" in err and f"of {total} frames" in err
    n = len(read_jsonl(log))
    assert 0 < n < total and len(decode(out)) == n


def test_unsupported_output_type(tmp_path, video, capsys):
    path, _ = video
    assert main(["camera", "--source", str(path), "--headless", "--output", str(tmp_path / "a.gif")]) == 2
    assert "use one of .mp4" in capsys.readouterr().err


def test_parse_source_kinds(tmp_path, video):
    path, _ = video
    assert parse_source("0") == SourceSpec("camera", 0)
    assert parse_source("rtsp://cam.local/stream").kind == "stream"
    assert parse_source("HTTP://host/video.mjpg").live
    assert parse_source(str(path)).kind == "video"
    assert parse_source(str(tmp_path)).kind == "folder"
    with pytest.raises(SourceError, match="no image files"):
        open_source(str(tmp_path))  # a folder without pictures


# --------------------------------------------------------------------------- live sources, with fake devices
class FakeCapture:
    """Plays a script: a frame number yields a frame, None a failed read; afterwards every read fails."""

    def __init__(self, script, delay=0.0):
        self.script = list(script)
        self.delay = delay
        self.released = False

    def isOpened(self):
        return True

    def read(self):
        if self.delay:
            time.sleep(self.delay)
        if not self.script:
            return False, None
        item = self.script.pop(0)
        if item is None:
            return False, None
        return True, np.full((48, 64, 3), item % 256, np.uint8)

    def get(self, prop):
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.released = True


def drain(source, limit=10.0) -> list[int]:
    seen, end = [], time.monotonic() + limit
    while not source.ended and time.monotonic() < end:
        frame = source.read(timeout=0.5)
        if frame is not None:
            seen.append(int(frame.image[0, 0, 0]))
    return seen


def test_live_source_reconnects_with_backoff_then_ends_cleanly():
    opened = []
    plan = [FakeCapture([1, 2, 3], delay=0.01), SourceError("still down"), FakeCapture([4, 5], delay=0.01)]

    def opener():
        item = plan.pop(0) if plan else SourceError("gone for good")
        opened.append(time.monotonic())
        if isinstance(item, Exception):
            raise item
        return item

    src = LiveSource(SourceSpec("stream", "rtsp://fake"), opener, max_reconnects=3, backoff_s=0.05)
    seen = drain(src)
    src.close()
    assert seen == sorted(seen) and seen[-1] == 5 and {1, 4} & set(seen)
    assert src.reconnects == 1 and src.ended
    assert "could not reconnect after 3 attempt(s)" in src.incomplete
    assert len(opened) == 1 + 2 + 3  # first open, two attempts (one fails), then three failing attempts
    gaps = np.diff(opened[3:])  # back-off doubles: 0.05, 0.1, 0.2 s
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19


def test_one_bad_frame_does_not_end_a_live_stream():
    src = LiveSource(SourceSpec("camera", 0), lambda: FakeCapture([1, None, 2, None, 3], delay=0.02),
                     max_reconnects=0)
    seen = drain(src)
    src.close()
    assert seen[-1] == 3 and seen == sorted(set(seen)) and len(seen) + src.dropped == 3  # none lost unseen
    assert src.reconnects == 0 and src.bad_frames == 2 and "could not reconnect" in src.incomplete  # the end


def test_live_source_keeps_only_the_newest_frame():
    src = LiveSource(SourceSpec("camera", 0), lambda: FakeCapture(range(300), delay=0.0005), max_reconnects=0)
    seen = []
    while not src.ended:
        frame = src.read(timeout=1.0)
        if frame is not None:
            seen.append(frame.index)
            time.sleep(0.01)  # a consumer slower than the device
    src.close()
    assert seen == sorted(set(seen)) and seen[-1] == 299
    assert src.dropped > 0 and len(seen) + src.dropped == 300


def test_demo_on_a_lost_stream_finishes_its_outputs(tmp_path):
    captures = iter([FakeCapture(range(20), delay=0.01)])
    # after 20 frames the stream "reconnects" to nothing: it opens but never delivers a frame
    src = LiveSource(SourceSpec("stream", "rtsp://fake"), lambda: next(captures, FakeCapture([])),
                     max_reconnects=2, backoff_s=0.01)
    log, out = tmp_path / "lost.jsonl", tmp_path / "lost.mp4"
    with src:
        summary = run_demo(DemoConfig(headless=True, log=str(log), output=str(out)), source=src)
    assert summary.incomplete and "could not reconnect" in summary.incomplete
    records = read_jsonl(log)
    assert 0 < len(records) <= summary.frames <= 20 and len(decode(out)) == summary.frames
    assert [r["frame"] for r in records] == sorted(r["frame"] for r in records)


def test_video_file_source_skips_an_undecodable_frame():
    class Counted(FakeCapture):
        def get(self, prop):
            return 4.0 if prop == cv2.CAP_PROP_FRAME_COUNT else 10.0

    src = VideoFileSource(SourceSpec("video", "fake.mp4"), Counted([1, None, 2, 3]))
    got = [src.read() for _ in range(4)]
    assert [int(f.image[0, 0, 0]) for f in got[:3]] == [1, 2, 3] and got[3] is None
    assert src.bad_frames == 1 and src.ended and src.incomplete is None


# --------------------------------------------------------------------------- small parts
def test_keys():
    assert key_action(ord("q")) == key_action(27) == key_action(ord("Q")) == "quit"
    assert key_action(ord(" ")) == "pause" and key_action(ord("s")) == "snapshot"
    assert key_action(-1) is None and key_action(ord("x")) is None
    assert key_action(0x100000 | ord("q")) == "quit"  # modifier bits some backends add


def test_snapshot_is_a_png(tmp_path, video):
    _, frames = video
    first = save_snapshot(frames[0], tmp_path / "snaps", 3)
    second = save_snapshot(frames[0], tmp_path / "snaps", 3)
    assert first != second and first.name.endswith("-f000003.png")
    with Image.open(second) as img:
        assert img.format == "PNG" and img.size == SIZE


def test_fps_meter_is_a_moving_average():
    meter = FpsMeter(window=4)
    assert meter.tick(0.0) == 0.0
    for t in (0.1, 0.2, 0.3, 0.4):
        meter.tick(t)
    assert meter.fps == pytest.approx(10.0)
    for t in (0.9, 1.4, 1.9, 2.4):  # slows to 2 FPS; the old frames leave the window
        meter.tick(t)
    assert meter.fps == pytest.approx(2.0)


def test_overlay_draws_labels_bars_and_stats(video, clf):
    _, frames = video
    frame = frames[0].copy()
    result = clf.classify(frame, color="bgr")
    rect = draw_overlay(frame, OverlayInfo(result.categories, 29.5, result.timing.inference_ms,
                                           clf.model_name, clf.backend_name))
    assert 0 < rect.width <= SIZE[0] and 0 < rect.height <= SIZE[1]
    changed = np.any(frame != frames[0], axis=2)
    assert changed[: rect.height, : rect.width].mean() > 0.5 and not changed[rect.height:, :].any()
    green = (frame[..., 1] > 150) & (frame[..., 0] < 120) & (frame[..., 2] < 120)  # the top-1 bar
    assert green[: rect.height, : rect.width].sum() > 50


def test_sigterm_stops_a_headless_run_and_keeps_its_outputs(tmp_path, video):
    import os
    import signal
    import subprocess
    import sys

    path, frames = video
    log, out = tmp_path / "term.jsonl", tmp_path / "term.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cifar_edge.cli", "camera", "--source", str(path), "--realtime", "--headless",
         "--log", str(log), "--output", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".term.jsonl.*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the log's temporary file appears once the run has started
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["stopped_by"] == "signal" and 0 < summary["frames"] < len(frames)
    assert len(read_jsonl(log)) == summary["classified"] > 0 and len(decode(out)) == summary["frames"]
    assert not [p for p in os.listdir(tmp_path) if ".part" in p]


class ScriptedWindow:
    """Stands in for the OpenCV window: records what is shown and "presses" scripted keys."""

    def __init__(self, keys):
        self.keys = list(keys)
        self.shown: list[np.ndarray] = []
        self.closed = False

    def show(self, image):
        self.shown.append(image.copy())

    def poll(self, delay_ms=1):
        return self.keys.pop(0) if self.keys else -1


def test_window_keys_pause_snapshot_and_quit(tmp_path, video):
    path, frames = video
    # after frame 0: no key; after frame 1: space (pause); while paused: s (snapshot of frame 1), space
    # (resume); after frame 2: no key; after frame 3: q
    window = ScriptedWindow([-1, ord(" "), ord("s"), ord(" "), -1, ord("q")])
    snaps = tmp_path / "snaps"
    summary = run_demo(DemoConfig(source=str(path), snapshot_dir=str(snaps), log=str(tmp_path / "k.jsonl")),
                       window=window)
    assert summary.stopped_by == "key" and summary.frames == 4 < len(frames)
    assert len(summary.snapshots) == 1 and Path(summary.snapshots[0]).parent == snaps
    assert summary.snapshots[0].endswith("-f000001.png")
    with Image.open(summary.snapshots[0]) as img:
        assert img.size == SIZE
    # the paused frame was re-shown with a PAUSED banner: it differs from the frame shown before it
    assert len(window.shown) >= 4 and np.any(window.shown[2] != window.shown[1])
    assert len(read_jsonl(tmp_path / "k.jsonl")) == 4


def test_bad_options_and_no_display_are_one_line_errors(video, monkeypatch, capsys):
    path, _ = video
    assert main(["camera", "--source", str(path), "--headless", "--max-frames", "0"]) == 2
    assert "cifar-edge camera: error: --max-frames must be >= 1" in capsys.readouterr().err
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["camera", "--source", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cifar-edge camera: error: no display" in err and "--headless" in err
