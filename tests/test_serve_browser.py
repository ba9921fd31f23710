"""cifar-edge serve in headless Chromium (Debian's ``chromium``): the page shows the live annotated stream
(frames change, the overlay's label bars drawn on them), its top-3 labels and FPS, and classifies an uploaded
picture through its form. Set ``CIFAR_EDGE_SERVE_SCREENSHOT=docs/serve.png`` to keep the screenshot."""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from benchmarks.serve_load import start_server
from cifar_edge.camera_demo.synth import build_video, cifar_test_images
from edge_sdk.spec import CIFAR10_CLASSES

from cdp import Chromium, find_chromium

TOKEN = "browser-test-token-0123456789"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.fail("headless Chromium is needed for the page test: apt-get install -y chromium")
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory, cifar10_dir):
    """A 320x240 MP4 of one real test picture per class, each held 1 s (10 frames at 10 FPS)."""
    path = tmp_path_factory.mktemp("serve-video") / "cifar.mp4"
    build_video(cifar_test_images(cifar10_dir, per_class=1), path, size=(320, 240), hold=10, fps=10)
    return path


def stream_box(browser: Chromium) -> tuple[int, int, int, int]:
    """The stream <img>'s box in the viewport, in whole pixels (left, top, right, bottom)."""
    r = browser.evaluate("(() => { const r = document.getElementById('stream').getBoundingClientRect();"
                         " return [r.left, r.top, r.right, r.bottom]; })()")
    return tuple(round(v) for v in r)  # type: ignore[return-value]


def overlay_bar_pixels(frame: np.ndarray) -> int:
    """Pixels of the overlay's green score bars ((80, 200, 80) RGB, JPEG-blurred) in the frame's top-left panel."""
    h, w = frame.shape[:2]
    panel = frame[: h // 2, : w * 3 // 4].astype(int)
    r, g, b = panel[..., 0], panel[..., 1], panel[..., 2]
    return int(((g > 150) & (r < 140) & (b < 140) & (g - r > 60)).sum())


def test_the_page_shows_the_annotated_stream_its_labels_and_classifies_an_upload(chromium, video, tmp_path,
                                                                                cifar10_dir):
    picture = sorted((cifar10_dir / "test" / "ship").glob("*.jpg"))[0]
    with start_server(["--model", "edge", "--source", str(video), "--token", TOKEN]) as server, \
            Chromium(chromium, tmp_path / "profile") as browser:
        browser.navigate(f"{server.url}?access_token={TOKEN}")
        browser.wait_for("document.getElementById('stream').naturalWidth > 0")
        browser.wait_for("document.querySelectorAll('#top li').length === 3")
        assert browser.wait_for("document.getElementById('model').textContent").startswith("edge on ")
        fps_text = browser.wait_for("(t => t !== 'FPS -' && t)(document.getElementById('fps').textContent)")
        assert fps_text.startswith("FPS ") and float(fps_text.split()[1]) > 0
        labels = browser.evaluate("[...document.querySelectorAll('#top .label')].map(e => e.textContent)")
        assert len(labels) == 3 and set(labels) <= set(CIFAR10_CLASSES)

        browser.set_file("#file", picture)  # the upload form, as a user would use it
        browser.evaluate("document.getElementById('form').requestSubmit()")
        browser.wait_for("document.querySelectorAll('#result li').length === 3")
        result = browser.evaluate("[...document.querySelectorAll('#result .label')].map(e => e.textContent)")
        assert set(result) <= set(CIFAR10_CLASSES)
        assert browser.evaluate("document.getElementById('error').textContent") == ""

        shots = []
        for _ in range(2):
            browser.wait_for("document.getElementById('stream').complete !== undefined")
            png = browser.screenshot()
            shots.append(png)
            browser.evaluate("new Promise(r => setTimeout(r, 1500))")
        left, top, right, bottom = stream_box(browser)
        assert right - left >= 300 and bottom - top >= 220  # the 320x240 stream is laid out at full size
        frames = [np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[top:bottom, left:right] for png in shots]
        assert np.abs(frames[0].astype(int) - frames[1].astype(int)).mean() > 2.0, "the stream did not change"
        for frame in frames:
            assert overlay_bar_pixels(frame) > 30, "no overlay score bar drawn on the streamed frame"
            assert frame.std() > 10  # a picture, not a blank box
        keep = os.environ.get("CIFAR_EDGE_SERVE_SCREENSHOT")
        (tmp_path / "serve.png").write_bytes(shots[1])
        if keep:
            shutil.copyfile(tmp_path / "serve.png", keep)
