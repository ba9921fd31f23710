"""cifar-edge gui: the real Tk window on a virtual X server (Xvfb), driven through its buttons' functions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from edge_sdk import Classifier

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def display() -> str:
    """A private Xvfb display for this module (``scripts/test.sh`` installs xvfb when it is missing)."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed: apt-get install xvfb (scripts/test.sh does this) to run the GUI tests")
    old = os.environ.get("DISPLAY")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as fh:
            number = fh.readline().strip()  # Xvfb picks a free display and writes its number when ready
        if not number:
            pytest.fail(f"Xvfb did not start (exit status {proc.poll()})")
        os.environ["DISPLAY"] = f":{number}"
        yield os.environ["DISPLAY"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old


@pytest.fixture(scope="module")
def clf() -> Classifier:
    with Classifier(top_k=3) as c:
        yield c


@pytest.fixture
def app(display, clf):
    from cifar_edge.camera_demo.gui import ClassifierApp, new_root

    root = new_root()
    app = ClassifierApp(root, clf)
    root.update()
    yield app
    root.destroy()


@pytest.fixture(scope="module")
def cat(cifar10_dir) -> Path:
    return min((cifar10_dir / "test" / "cat").glob("*.jpg"))


def test_open_through_the_button_then_classify_shows_the_sdk_answer(app, clf, cat, monkeypatch, tmp_path):
    monkeypatch.setattr(app._filedialog, "askopenfilename", lambda **kw: str(cat))
    assert str(app.classify_button.cget("state")) == "disabled"
    app.open_button.invoke()  # the "Open image…" button, its file dialog answered with a CIFAR cat
    assert app.image_path == str(cat) and app.image.size == (32, 32)
    assert str(app.classify_button.cget("state")) == "normal"
    app.classify_button.invoke()
    app.root.update()
    want = clf.classify(cat)
    assert app.shown_labels() == [c.label for c in want.categories] and len(want.categories) == 3
    scores = [app.bars.itemcget(f"score{i}", "text") for i in range(3)]
    assert scores == [f"{100 * c.score:.1f}%" for c in want.categories]
    bar_widths = [app.bars.coords(f"bar{i}")[2] - app.bars.coords(f"bar{i}")[0] for i in range(3)
                  if app.bars.find_withtag(f"bar{i}")]
    assert bar_widths == sorted(bar_widths, reverse=True) and bar_widths[0] > 0
    assert "latency" in app.latency.cget("text") and "ms" in app.latency.cget("text")
    assert app.picture.cget("image")  # the picture is shown

    shot = app.screenshot(tmp_path / "gui.png")
    with Image.open(shot) as img:
        assert img.format == "PNG"
        assert img.width >= 300 and img.height >= 300
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 50  # a rendered window, not a blank grab


def test_a_bad_file_shows_an_error_in_the_window(app, cat, tmp_path):
    assert app.open_image(cat) and app.classify() is not None
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture")
    assert app.open_image(bad) is False
    app.root.update()
    assert "cannot decode image" in app.status.cget("text") and str(app.status.cget("fg")) == "#b00020"
    assert app.image is None and app.shown_labels() == [] and app.latency.cget("text") == ""
    assert str(app.classify_button.cget("state")) == "disabled"
    assert app.classify() is None and "open an image first" in app.status.cget("text")
    assert app.open_image(tmp_path / "missing.png") is False
    assert "not found" in app.status.cget("text")
    assert app.open_image(cat)  # the window still works afterwards
    assert app.classify().top is not None


def test_a_large_picture_is_scaled_to_fit(app, tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (1600, 900), (200, 40, 40)).save(big)
    assert app.open_image(big)
    app.root.update()
    assert app._photo.width() == 320 and app._photo.height() == 180
    assert app.classify() is not None and len(app.shown_labels()) == 3


def test_gui_command_saves_a_screenshot(display, cat, tmp_path):
    shot = tmp_path / "cli-gui.png"
    proc = subprocess.run([sys.executable, "-m", "cifar_edge.cli", "gui", str(cat), "--screenshot", str(shot)],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "DISPLAY": display})
    assert proc.returncode == 0, proc.stderr
    with Image.open(shot) as img:
        assert img.format == "PNG" and img.width > 300
    bad = subprocess.run([sys.executable, "-m", "cifar_edge.cli", "gui", str(tmp_path / "nope.jpg"),
                          "--screenshot", str(tmp_path / "bad.png")],
                         capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "DISPLAY": display})
    assert bad.returncode == 2 and (tmp_path / "bad.png").exists()


def test_gui_without_a_display_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "cifar_edge.cli", "gui"], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)
    assert proc.returncode == 2
    assert "cifar-edge gui: error: cannot open a window" in proc.stderr and "display" in proc.stderr


def test_camera_window_opens_on_the_display(display, tmp_path, cifar10_dir):
    """The real OpenCV window (not --headless) shows and records frames on the X display."""
    import cv2

    from cifar_edge.camera_demo.demo import DemoConfig, run_demo
    from cifar_edge.camera_demo.synth import build_video, cifar_test_images

    video = tmp_path / "w.avi"
    build_video(cifar_test_images(cifar10_dir)[:2], video, hold=4)
    summary = run_demo(DemoConfig(source=str(video), max_frames=6, output=str(tmp_path / "w-out.avi")))
    assert summary.frames == 6 and summary.stopped_by == "max-frames"
    cap = cv2.VideoCapture(str(tmp_path / "w-out.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    cap.release()
