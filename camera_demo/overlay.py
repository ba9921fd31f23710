"""Draw the demo's annotations onto a BGR frame: top-k bars, FPS, inference time, model and backend."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_sdk.classifier import Category

from ._cv2 import cv2

DEFAULT_CANVAS = (640, 480)  # (width, height) for still images and the minimum readable overlay


class FpsMeter:
    """Frames per second as a moving average over the last ``window`` frame intervals."""

    def __init__(self, window: int = 30) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._times: deque[float] = deque(maxlen=window + 1)

    def tick(self, now: float | None = None) -> float:
        """Record one frame (at ``now``, default the monotonic clock) and return the current FPS."""
        self._times.append(time.perf_counter() if now is None else now)
        return self.fps

    @property
    def fps(self) -> float:
        """Frames per second over the window; 0.0 until two frames were seen."""
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


#: the overlay's verdict for a picture the model calls unknown
UNKNOWN_TEXT = "no known object"


@dataclass(frozen=True)
class OverlayInfo:
    """What one frame shows. ``categories`` None means no result yet; ``unknown``: the model sees none of
    its classes (the categories are then shown as guesses under a "no known object" line); ``fps`` None:
    not measured yet."""

    categories: Sequence[Category] | None
    fps: float | None
    inference_ms: float | None
    model_name: str
    backend_name: str
    status: str = ""  # e.g. "PAUSED"
    unknown: bool = False


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int


def fit_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (width, height), aspect kept, centred on black; unchanged if it already fits."""
    width, height = size
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    cv = cv2()
    # Pixel-art upscaling keeps tiny CIFAR pictures honest; area averaging for downscaling.
    interp = cv.INTER_NEAREST if scale >= 4 else (cv.INTER_LINEAR if scale >= 1 else cv.INTER_AREA)
    resized = cv.resize(image, (new_w, new_h), interpolation=interp)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    x0, y0 = (width - new_w) // 2, (height - new_h) // 2
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return canvas


def draw_overlay(frame: np.ndarray, info: OverlayInfo) -> Rect:
    """Draw the annotation panel in the top-left corner of ``frame`` (in place); return its rectangle."""
    cv = cv2()
    h, w = frame.shape[:2]
    scale = min(max(min(w / 640, h / 480), 0.7), 2.5)  # readable down to 320x240
    font, thick = cv.FONT_HERSHEY_SIMPLEX, max(1, round(scale * 1.2))
    font_scale = 0.55 * scale
    line = max(12, round(24 * scale))
    pad = max(4, round(8 * scale))
    label_w = round(110 * scale)
    bar_w = round(120 * scale)
    panel_w = min(w, pad * 3 + label_w + bar_w + round(70 * scale))

    rows: list[tuple[str, float | None]] = []
    if info.categories is None:
        rows.append(("waiting for the first result", None))
    elif not info.categories:
        rows.append(("no class above the threshold", None))
    else:
        if info.unknown:
            rows.append((UNKNOWN_TEXT, None))
        rows.extend((("?" + c.label) if info.unknown else c.label, c.score) for c in info.categories)
    infer = f"{info.inference_ms:.1f} ms" if info.inference_ms is not None else "-"
    fps = f"{info.fps:5.1f}" if info.fps else "    -"  # not measured before the second frame
    footer = [f"FPS {fps}   inference {infer}", f"{info.model_name} | {info.backend_name}"]
    if info.status:
        footer.append(info.status)
    panel_h = min(h, pad * 2 + line * (len(rows) + len(footer)))

    roi = frame[0:panel_h, 0:panel_w]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken: readable on any picture
    y = pad
    for text, score in rows:
        base = y + round(line * 0.72)
        cv.putText(frame, text[:18], (pad, base), font, font_scale, (255, 255, 255), thick, cv.LINE_AA)
        if score is not None:
            x0 = pad * 2 + label_w
            top, bottom = y + round(line * 0.2), y + round(line * 0.85)
            cv.rectangle(frame, (x0, top), (x0 + bar_w, bottom), (90, 90, 90), 1)
            filled = round(bar_w * float(np.clip(score, 0.0, 1.0)))
            if filled:
                cv.rectangle(frame, (x0, top), (x0 + filled, bottom), (80, 200, 80), -1)
            cv.putText(frame, f"{100 * score:5.1f}%", (x0 + bar_w + pad, base), font, font_scale,
                       (255, 255, 255), thick, cv.LINE_AA)
        y += line
    for text in footer:
        color = (0, 200, 255) if text == info.status else (220, 220, 220)
        cv.putText(frame, text, (pad, y + round(line * 0.72)), font, font_scale * 0.9, color, thick, cv.LINE_AA)
        y += line
    return Rect(0, 0, panel_w, panel_h)
