"""Pixels (issue 24, class 2): wide pictures are decoded without widening copies, and one cap on decoded bytes as
well as pixels holds for files, arrays and camera frames (a frame over it is refused and counted, never written)."""

from __future__ import annotations

import io
import tracemalloc

import cv2
import numpy as np
import pytest
from PIL import Image
from test_faults import ScriptedCapture, camera, fake_device, video_file  # noqa: F401 (a fixture)

from cifar_edge.camera_demo import sources
from cifar_edge.camera_demo.sources import SourceSpec, as_bgr, open_capture
from edge_sdk.errors import InvalidImageError
from cifar_edge.cli.errors import SourceError
from edge_sdk.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, load_image, open_rgb
from edge_sdk.inputs import to_rgb_array

MiB = 1024 * 1024


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


def numpy_peak(fn) -> tuple[int, object]:
    """(peak bytes numpy and Python allocated while ``fn`` ran, its result)."""
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_a_16_bit_picture_is_converted_without_widened_copies():
    side = 3000  # 9 megapixels: an int64 copy would be 72 MB
    grey = (np.arange(side * side, dtype=np.uint32).reshape(side, side) % 65536).astype(np.uint16)
    data = png(grey)
    assert len(data) < 40 * MiB and Image.open(io.BytesIO(data)).mode == "I;16"
    peak, image = numpy_peak(lambda: open_rgb(data))  # Pillow's own pixels are not traced: copies in numpy are
    np.testing.assert_array_equal(np.asarray(image)[:, :, 0], (grey >> 8).astype(np.uint8))  # the top 8 bits
    extra = peak - len(data)  # the encoded bytes are copied once into a stream
    assert extra < 2 * side * side, f"{extra / MiB:.0f} MiB of copies for a {side * side / 1e6:.0f} MP picture"


@pytest.mark.parametrize("mode, values, expected", [
    ("I;16B", [0, 255, 256, 65535], [0, 0, 1, 255]),
    ("I", [-5, 0, 200, 255], [0, 0, 200, 255]),  # all within 0-255: taken as they are
    ("I", [-5, 256, 65535, 1 << 20], [0, 1, 255, 255]),  # wider: the top 8 of 16 bits, saturated
])
def test_wide_grey_modes_keep_their_meaning(mode, values, expected):
    dtype = {"I;16B": ">u2", "I": "<i4"}[mode]
    image = Image.frombytes(mode, (len(values), 1), np.array([values], dtype=dtype).tobytes())
    got = np.asarray(to_rgb_array(image, 1, len(values)))[0, :, 0]
    assert got.tolist() == expected


def test_an_array_over_the_byte_cap_is_refused_before_it_is_copied():
    side = 5000  # 25 megapixels, under the pixel cap; as float32 RGB 300 MB, over the byte cap
    assert side * side < MAX_IMAGE_PIXELS and side * side * 3 * 4 > MAX_IMAGE_BYTES
    claimed = np.broadcast_to(np.float32(0.5), (side, side, 3))  # zero strides: claims 300 MB, holds 4 bytes
    with pytest.raises(InvalidImageError, match=f"more than the {MAX_IMAGE_BYTES:,} allowed"):
        to_rgb_array(claimed, 32, 32)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidImageError):
            to_rgb_array(claimed, 32, 32)
        assert tracemalloc.get_traced_memory()[1] < MiB
    finally:
        tracemalloc.stop()
    assert to_rgb_array(np.broadcast_to(np.float32(0.5), (2000, 2000, 3)), 32, 32).shape == (32, 32, 3)


def test_a_picture_file_over_either_cap_is_refused_from_its_header(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGBA", (9000, 8000)).save(path)  # 72 MP: over the pixel cap
    with pytest.raises(InvalidImageError, match="pixels, more than"):
        load_image(path, 32, 32)


# --------------------------------------------------------------------------- camera frames
BIG = np.broadcast_to(np.uint8(7), (9000, 9000, 3))  # 81 MP, 243 MB claimed, nothing held


def test_a_frame_over_the_cap_is_a_bad_frame():
    with pytest.raises(InvalidImageError, match="too large"):
        as_bgr(BIG)
    with pytest.raises(InvalidImageError, match="too large"):
        as_bgr(np.broadcast_to(np.uint8(7), (12000, 12000)))  # grey: its BGR copy would be 432 MB
    assert as_bgr(np.zeros((48, 64, 3), np.uint8)).shape == (48, 64, 3)


def test_frames_over_the_cap_are_counted_and_never_written_to_the_video(tmp_path, capsys, monkeypatch, video_file):
    script = [1, BIG, 2, BIG, 3]
    fake_device(monkeypatch, ScriptedCapture(script, frame_count=len(script)))
    run = camera(tmp_path, capsys, video_file)
    assert run.rc == 0, run.err
    assert run.summary["frames"] == len(run.records) == run.written == 3
    assert run.summary["bad_frames"] == 2


class Announcing:
    """A capture that opens and announces frames of ``width`` x ``height``."""

    def __init__(self, width: float, height: float) -> None:
        self.size = {cv2.CAP_PROP_FRAME_WIDTH: width, cv2.CAP_PROP_FRAME_HEIGHT: height}
        self.released = False

    def isOpened(self) -> bool:
        return True

    def get(self, prop: int) -> float:
        return self.size.get(prop, 0.0)

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        self.released = True


def test_a_stream_announcing_frames_over_the_cap_is_refused_at_open(monkeypatch):
    opened: list[Announcing] = []

    def capture(width, height):
        def make(*_args):
            opened.append(Announcing(width, height))
            return opened[-1]
        return make

    monkeypatch.setattr(sources.cv2(), "VideoCapture", capture(12000, 12000))
    with pytest.raises(SourceError, match="too large"):
        open_capture(SourceSpec("stream", "http://user:secret@camera.local/feed"))
    assert opened[-1].released
    monkeypatch.setattr(sources.cv2(), "VideoCapture", capture(640, 480))
    assert open_capture(SourceSpec("stream", "http://camera.local/feed")) is opened[-1]
    monkeypatch.setattr(sources.cv2(), "VideoCapture", capture(float("nan"), 0))  # size unknown: opened
    assert open_capture(SourceSpec("stream", "http://camera.local/feed")) is opened[-1]
