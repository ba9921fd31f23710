"""Build test videos from real pictures: each image upscaled and held for several frames.

Used by the tests and by :mod:`cifar_edge.camera_demo.bench_headless`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cifar_edge.cli.errors import OutputError

from ._cv2 import cv2
from .sources import load_bgr

CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


def cifar_test_images(cifar_dir: str | os.PathLike[str], per_class: int = 1, split: str = "test") -> list[Path]:
    """The first ``per_class`` images of every class folder under ``cifar_dir/split``, interleaved by class."""
    root = Path(cifar_dir) / split
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    if not classes:
        raise FileNotFoundError(f"no class folders under {root}")
    per = [sorted(c.glob("*.jpg"))[:per_class] for c in classes]
    return [files[i] for i in range(per_class) for files in per if i < len(files)]


def build_video(
    images: Sequence[str | os.PathLike[str] | np.ndarray],
    out: str | os.PathLike[str],
    *,
    size: tuple[int, int] = (320, 240),
    hold: int = 5,
    fps: float = 10.0,
) -> int:
    """Write ``images`` (paths or BGR arrays) to ``out`` (.mp4 or .avi), each stretched to ``size`` (w, h) for ``hold`` frames.

    Returns the number of frames written.
    """
    cv = cv2()
    out = Path(out)
    codec = CODECS.get(out.suffix.lower())
    if codec is None:
        raise OutputError(f"build_video writes {', '.join(CODECS)}, not {out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv.VideoWriter(str(out), cv.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        raise OutputError(f"cannot write video {out}")
    frames = 0
    try:
        for item in images:
            img = item if isinstance(item, np.ndarray) else load_bgr(item)
            big = cv.resize(img, size, interpolation=cv.INTER_LINEAR)
            for _ in range(hold):
                writer.write(big)
                frames += 1
    finally:
        writer.release()
    return frames
