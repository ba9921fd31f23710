"""Framing and resampling: how a picture of any size becomes the model's ``H x W`` pixels.

:data:`RESIZE_MODES` is the one definition of the modes (the spec, the SDK, the data layer and the command line
read it) and :func:`framing` the one place that says what each does; two resamplers then apply it:
:func:`resize_image` for PIL images (decoded files: Pillow's antialiased bilinear filter) and
:func:`resize_pixels` for numpy arrays (camera frames: OpenCV's sampled tent filter, :func:`_cv2_shrink`, close to
Pillow's filter at a cost that does not grow with the frame, where ``cv2`` imports, else Pillow's resize; crops are
views, the frame is not copied). Both weigh the whole area a target pixel covers, so neither aliases on large frames
as MediaPipe's resize does (one bilinear sample per target pixel). :func:`draft_scale` lets a large JPEG decode at
1/2, 1/4 or 1/8 of its size when that still leaves twice the target's pixels.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from .errors import InvalidArgumentError

#: ``stretch`` scales the whole picture to the input (its aspect ratio changes); ``center-crop`` keeps the largest
#: centred region of the input's aspect ratio; ``letterbox`` fits the whole picture inside, bars of :data:`LETTERBOX_FILL`.
RESIZE_MODES = ("stretch", "center-crop", "letterbox")
#: grey of the letterbox bars (as Ultralytics' letterbox)
LETTERBOX_FILL = 114
#: Pillow's ``reducing_gap``: a box reduction first when shrinking more than this factor
REDUCING_GAP = 3.0
#: a JPEG is decoded at a reduced scale only while it keeps this many times the target's side
DRAFT_MARGIN = 2.0
#: OpenCV's path samples a grid of this many points per target pixel and side (16 samples per pixel, whatever the
#: frame's size): on the real photos as accurate as every source pixel; 2 per side lost 10 points (docs/open-world.md)
SAMPLES_PER_SIDE = 4
_TENT = np.array([0.25, 0.5, 0.25], np.float32)  # the [1, 2, 1] / 4 blur of :func:`_cv2_shrink`


def check_resize_mode(mode: Any) -> None:
    """Raise :class:`InvalidArgumentError` unless ``mode`` is one of :data:`RESIZE_MODES`."""
    if mode not in RESIZE_MODES:
        raise InvalidArgumentError(f"resize mode must be one of {', '.join(RESIZE_MODES)}; got {mode!r}")


def framing(src_h: int, src_w: int, height: int, width: int,
            mode: str) -> tuple[tuple[int, int, int, int] | None, tuple[int, int]]:
    """How ``mode`` puts a ``src_h x src_w`` picture into ``height x width``: the box ``(top, left, crop_h, crop_w)`` to
    cut out first (None: the whole picture) and the size to resample that to (inside the target for ``letterbox``,
    which fills the bars with :data:`LETTERBOX_FILL`). Raises :class:`InvalidArgumentError` for an unknown mode."""
    check_resize_mode(mode)
    if mode == "center-crop":
        return crop_box(src_h, src_w, height, width), (height, width)
    if mode == "letterbox":
        return None, fit_size(src_h, src_w, height, width)
    return None, (height, width)


def crop_box(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``(top, left, crop_h, crop_w)``: the largest centred region of ``src`` with the aspect ratio of ``height x width``."""
    if src_w * height > src_h * width:  # wider than the target: crop the sides
        crop_h, crop_w = src_h, max(1, round(src_h * width / height))
    else:
        crop_h, crop_w = max(1, round(src_w * height / width)), src_w
    return (src_h - crop_h) // 2, (src_w - crop_w) // 2, crop_h, crop_w


def fit_size(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int]:
    """The size of ``src`` scaled to fit inside ``height`` x ``width`` (letterbox), at least 1x1."""
    scale = min(height / src_h, width / src_w)
    return max(1, min(height, round(src_h * scale))), max(1, min(width, round(src_w * scale)))


def draft_scale(src_h: int, src_w: int, height: int, width: int, mode: str) -> float:
    """The smallest share of the source size a decoder may produce for this resize: the target's
    side times :data:`DRAFT_MARGIN` over the source's, per the mode (1.0: decode in full)."""
    if mode == "letterbox":
        scale = min(height / src_h, width / src_w)
    else:  # stretch and center-crop both need every axis at the target's scale
        scale = max(height / src_h, width / src_w)
    return min(1.0, DRAFT_MARGIN * scale)


def resize_image(img: Image.Image, height: int, width: int, mode: str = "stretch") -> np.ndarray:
    """An RGB PIL image framed by ``mode`` (:func:`framing`) and resized to a uint8 ``(height, width, 3)`` array."""
    box, size = framing(img.height, img.width, height, width, mode)
    if box is not None:
        top, left, crop_h, crop_w = box
        img = img.crop((left, top, left + crop_w, top + crop_h))
    return _letterbox(np.asarray(_pil_resize(img, *size), dtype=np.uint8), height, width)


def _pil_resize(img: Image.Image, height: int, width: int) -> Image.Image:
    if img.size == (width, height):
        return img
    # reducing_gap: a box reduction first when shrinking a lot (640x480 -> 32x32: 0.5 ms, not 1.2), a few grey levels off
    return img.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP)


def resize_pixels(pixels: np.ndarray, height: int, width: int, mode: str = "stretch") -> np.ndarray:
    """A uint8 ``HxW`` or ``HxWxC`` array framed by ``mode`` (:func:`framing`) and resized to ``height`` x
    ``width`` (channels kept as they are), antialiased; the crop is a view, the frame is not copied."""
    box, size = framing(*pixels.shape[:2], height, width, mode)
    if box is not None:
        top, left, crop_h, crop_w = box
        pixels = pixels[top:top + crop_h, left:left + crop_w]
    return _letterbox(_resize_array(pixels, *size), height, width)


def _resize_array(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    if pixels.shape[:2] == (height, width):
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] == 1:  # OpenCV drops a single channel's axis: work on HxW
        return _resize_array(pixels[:, :, 0], height, width)[:, :, None]
    if pixels.ndim == 3 and pixels.strides[1] != pixels.shape[2] * pixels.itemsize:
        pixels = np.ascontiguousarray(pixels)  # e.g. the RGB view of an RGBA frame: packed pixels first
    cv2 = opencv()
    if cv2 is None:
        return np.asarray(_pil_resize(Image.fromarray(np.ascontiguousarray(pixels)), height, width), dtype=np.uint8)
    if height > pixels.shape[0] or width > pixels.shape[1]:  # enlarging (a tiny picture): plain bilinear
        return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_LINEAR)
    return _cv2_shrink(cv2, pixels, height, width)


def _cv2_shrink(cv2: Any, pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """A tent filter one target pixel wide on each side, as Pillow's antialiased bilinear: a grid of
    :data:`SAMPLES_PER_SIDE` nearest samples per target pixel and side (an area average when the source is smaller),
    a 2x2 average, a [1, 2, 1] blur and a 2x2 average (box * tent * box); all but the first step on the small grid."""
    k = SAMPLES_PER_SIDE
    sample = cv2.INTER_NEAREST_EXACT if pixels.shape[0] >= k * height and pixels.shape[1] >= k * width else cv2.INTER_AREA
    half = cv2.resize(cv2.resize(pixels, (k * width, k * height), interpolation=sample), (2 * width, 2 * height),
                      interpolation=cv2.INTER_AREA)
    # not GaussianBlur: it wakes OpenCV's thread pool, whose spinning worker slows the model (docs/open-world.md)
    half = cv2.sepFilter2D(half, -1, _TENT, _TENT, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(half, (width, height), interpolation=cv2.INTER_AREA)


def _letterbox(inner: np.ndarray, height: int, width: int) -> np.ndarray:
    """``inner`` centred on a ``height x width`` canvas of :data:`LETTERBOX_FILL` (as it is when it fills it)."""
    if inner.shape[:2] == (height, width):
        return inner
    out = np.full((height, width, *inner.shape[2:]), LETTERBOX_FILL, np.uint8)
    top, left = (height - inner.shape[0]) // 2, (width - inner.shape[1]) // 2
    out[top:top + inner.shape[0], left:left + inner.shape[1]] = inner
    return out


@lru_cache(maxsize=1)
def opencv() -> Any:
    """The ``cv2`` module when it can be imported (the ``camera`` extra), else None; looked up once."""
    try:
        import cv2  # noqa: PLC0415 - optional: the [camera] extra
    except Exception:  # noqa: BLE001 - not installed, or a broken install (missing libGL): Pillow serves
        return None
    needed = ("resize", "sepFilter2D", "INTER_AREA", "INTER_LINEAR", "INTER_NEAREST_EXACT", "BORDER_REFLECT")
    return cv2 if all(hasattr(cv2, name) for name in needed) else None
