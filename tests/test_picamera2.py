"""--source picamera2[:N]: the Raspberry Pi camera through a fake ``picamera2`` module put in ``sys.modules``.

The fake follows Picamera2's API as the demo uses it (``Picamera2(camera_num=N)``,
``global_camera_info()``, ``create_video_configuration``, ``configure``, ``start``, ``capture_array``,
``stop``, ``close``) and its colour convention: an ``"RGB888"`` array holds each pixel as B, G, R.
"""

from __future__ import annotations

import json
import sys
import time
import types

import numpy as np
import pytest
from PIL import Image

from cifar_edge.camera_demo.picam import APT_PACKAGE, PIXEL_FORMAT, parse_picamera2
from cifar_edge.camera_demo.sources import SourceSpec, open_source, parse_source
from edge_sdk import BackendUnavailableError, Classifier
from cifar_edge.cli.main import main
from cifar_edge.cli.errors import SourceError


class FakePicamera2:
    """One fake camera; the class keeps what every test looks at (instances, the cameras attached)."""

    cameras: list[dict] = [{"Model": "imx708", "Num": 0}, {"Model": "imx219", "Num": 1}]
    instances: list[FakePicamera2] = []
    open_error: Exception | None = None
    start_error: Exception | None = None
    picture: np.ndarray | None = None  # RGB pixels the camera sees; None: a frame counter in every pixel
    fail_after: int | None = None  # capture_array raises after this many frames (the first camera only)

    def __init__(self, camera_num: int = 0) -> None:
        if FakePicamera2.open_error is not None:
            raise FakePicamera2.open_error
        self.camera_num = camera_num
        self.config: dict | None = None
        self.started = self.closed = False
        self.frames = 0
        self.first = not FakePicamera2.instances
        FakePicamera2.instances.append(self)

    @staticmethod
    def global_camera_info() -> list[dict]:
        return FakePicamera2.cameras

    def create_video_configuration(self, main: dict | None = None, **_: object) -> dict:
        return {"main": {"format": "XBGR8888", "size": (1280, 720), **(main or {})},
                "controls": {"FrameDurationLimits": (40000, 40000)}}  # 25 frames per second

    def configure(self, config: dict) -> None:
        self.config = config

    def start(self) -> None:
        if FakePicamera2.start_error is not None:
            raise FakePicamera2.start_error
        self.started = True

    def capture_array(self, name: str = "main") -> np.ndarray:
        assert self.started and name == "main" and self.config["main"]["format"] == "RGB888"
        time.sleep(0.005)
        if self.first and self.fail_after is not None and self.frames >= self.fail_after:
            raise RuntimeError("Camera frontend has timed out!")
        self.frames += 1
        width, height = self.config["main"]["size"]
        if self.picture is not None:
            return np.ascontiguousarray(self.picture[:, :, ::-1])  # RGB888: B, G, R in memory
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0], frame[..., 1], frame[..., 2] = 200, self.frames % 256, 10  # B, G, R
        return frame

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch) -> type[FakePicamera2]:
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    for name, value in (("instances", []), ("open_error", None), ("start_error", None), ("picture", None),
                        ("fail_after", None), ("cameras", list(FakePicamera2.cameras))):
        monkeypatch.setattr(FakePicamera2, name, value)
    return FakePicamera2


def drain(source, frames: int, limit: float = 10.0) -> list:
    seen, end = [], time.monotonic() + limit
    while len(seen) < frames and not source.ended and time.monotonic() < end:
        frame = source.read(timeout=0.5)
        if frame is not None:
            seen.append(frame)
    return seen


def test_parse_picamera2_and_its_camera_number():
    assert parse_source("picamera2") == SourceSpec("picamera2", 0)
    assert parse_source("picamera2:1") == SourceSpec("picamera2", 1)
    assert str(parse_source("picamera2:1")) == "picamera2:1" and parse_source("picamera2").live
    assert parse_picamera2("0") is None and parse_picamera2("clip.mp4") is None
    for bad in ("picamera2:", "picamera2:x", "picamera2:-1"):
        with pytest.raises(SourceError, match="give picamera2 or picamera2:N"):
            parse_source(bad)


def test_frames_come_from_the_numbered_camera_in_bgr_order(fake_picamera2):
    with open_source("picamera2:1", width=320, height=240) as source:
        frames = drain(source, 3)
        camera = fake_picamera2.instances[0]
        assert source.spec.kind == "picamera2" and source.live and source.fps == pytest.approx(25.0)
    assert camera.camera_num == 1 and camera.config["main"] == {"format": PIXEL_FORMAT, "size": (320, 240)}
    assert len(frames) == 3 and [f.index for f in frames] == sorted({f.index for f in frames})
    for frame in frames:
        assert frame.image.shape == (240, 320, 3) and frame.image.dtype == np.uint8
        # RGB888 is B, G, R in memory: passed on as the BGR frames the pipeline expects, not swapped
        assert frame.image[0, 0, 0] == 200 and frame.image[0, 0, 2] == 10
    assert camera.closed and not camera.started  # close() stopped and closed the camera


def test_the_default_size_is_asked_for_without_width_and_height(fake_picamera2):
    with open_source("picamera2") as source:
        assert drain(source, 1)[0].image.shape == (480, 640, 3)
    assert fake_picamera2.instances[0].camera_num == 0


def test_the_demo_classifies_the_pi_camera_in_the_right_colours(fake_picamera2, cifar10_dir, tmp_path, capsys):
    path = next((cifar10_dir / "test" / "ship").glob("*.jpg"))
    rgb = np.asarray(Image.open(path).convert("RGB"))
    fake_picamera2.picture = rgb
    log = tmp_path / "pi.jsonl"
    rc = main(["camera", "--source", "picamera2", "--model", "edge", "--headless", "--max-frames", "3",
               "--width", "32", "--height", "32", "--log", str(log), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "picamera2" and summary["source"] == "picamera2:0" and summary["frames"] == 3
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records
    with Classifier("edge") as clf:
        right = clf.classify(rgb).categories
        swapped = clf.classify(rgb[:, :, ::-1].copy()).categories  # what a red/blue mix-up would give
    assert [c.score for c in right] != pytest.approx([c.score for c in swapped], abs=1e-3)
    for record in records:
        assert [c["label"] for c in record["top_k"]] == [c.label for c in right]
        assert [c["score"] for c in record["top_k"]] == pytest.approx([c.score for c in right], abs=1e-5)


def test_a_camera_that_is_not_there(fake_picamera2, capsys):
    with pytest.raises(SourceError, match=r"no such Raspberry Pi camera \(2 camera\(s\) found, picamera2:0 to "
                                          r"picamera2:1"):
        open_source("picamera2:5")
    fake_picamera2.cameras = []
    assert main(["camera", "--source", "picamera2", "--headless"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot open picamera2:0: no such Raspberry Pi camera (libcamera finds no camera" in err
    assert not fake_picamera2.instances


def test_a_camera_that_fails_to_open_or_start(fake_picamera2, capsys):
    fake_picamera2.open_error = RuntimeError("Camera __init__ sequence did not complete.")
    assert main(["camera", "--source", "picamera2:1", "--headless"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot open picamera2:1: RuntimeError: Camera __init__ sequence did not complete." in err
    fake_picamera2.open_error = None
    fake_picamera2.start_error = RuntimeError("Failed to start camera: Device or resource busy")
    with pytest.raises(SourceError, match="cannot start picamera2:0 at 64x48: RuntimeError: Failed to start camera"):
        open_source("picamera2", width=64, height=48)
    assert fake_picamera2.instances[0].closed  # the camera that would not start was closed


def test_a_camera_that_stops_delivering_is_reopened(fake_picamera2):
    fake_picamera2.fail_after = 4
    with open_source("picamera2", width=32, height=32, max_reconnects=2, backoff_s=0.01) as source:
        frames = drain(source, 8)
        assert source.reconnects == 1
    first, second = fake_picamera2.instances
    assert first.frames == 4 and first.closed and second.closed and second.frames >= 1
    assert len(frames) >= 2 and [f.index for f in frames] == sorted({f.index for f in frames})


def test_without_picamera2_the_error_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # as where the package is not installed
    with pytest.raises(BackendUnavailableError, match=f"sudo apt install -y {APT_PACKAGE}"):
        open_source("picamera2")
    assert main(["camera", "--source", "picamera2", "--headless"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the Python module 'picamera2' is needed for --source picamera2" in err
    assert "Raspberry Pi OS: sudo apt install -y python3-picamera2" in err and "--system-site-packages" in err


def test_a_picamera2_without_libcamera_says_to_use_the_system_packages(tmp_path, monkeypatch):
    """picamera2 from pip in a venv that does not see Raspberry Pi OS's libcamera bindings."""
    package = tmp_path / "picamera2"
    package.mkdir()
    (package / "__init__.py").write_text("import libcamera\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    with pytest.raises(BackendUnavailableError, match=r"cannot be imported \(ModuleNotFoundError: No module named "
                                                      r"'libcamera'\).*--system-site-packages"):
        open_source("picamera2")
    assert "picamera2" not in sys.modules
