"""Turn any supported image input into an RGB uint8 array of the model's input size.

Accepted: a local file path (``str`` or ``Path``; a URL is refused), encoded bytes, a PIL image, or a numpy
array: uint8 ``HxWx3`` (RGB, or BGR with ``color="bgr"`` for OpenCV frames), ``HxW`` grayscale, ``HxWx4``
RGBA/BGRA, ``HxWx1``, or floats in [0, 1]. A path, its bytes and the PIL image ``Image.open`` returns for it
give the same pixels (EXIF-rotated and converted by :func:`~edge_sdk.images.to_rgb_image`); arrays carry no
EXIF and are taken as they are. An array or PIL image over :data:`~edge_sdk.images.MAX_IMAGE_PIXELS` pixels or
:data:`~edge_sdk.images.MAX_IMAGE_BYTES` bytes is refused before any copy.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from PIL import Image

from .errors import InvalidArgumentError, InvalidImageError
from .images import ALLOWED_FORMATS, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, describe, load_image, to_rgb_image
from .resize import check_resize_mode, resize_image, resize_pixels

COLORS = ("rgb", "bgr")
#: the URL schemes an image path is refused for (the SDK opens local files only)
URL_SCHEMES = ("http", "https", "ftp")
_URL = re.compile(rf"(?:{'|'.join(URL_SCHEMES)}):/", re.IGNORECASE)  # a Path made of a URL lost one slash
#: the channel order every SDK call assumes for a numpy array unless told (``color="bgr"`` for OpenCV frames)
DEFAULT_COLOR = "rgb"


def to_rgb_array(image: Any, height: int, width: int, *, resize: str = "stretch", color: str = DEFAULT_COLOR) -> np.ndarray:
    """An RGB uint8 ``(height, width, 3)`` array from any supported input.

    Raises :class:`InvalidImageError` for anything that is not a usable picture, whatever failed
    (:class:`InvalidArgumentError` for a ``color`` or a ``resize`` mode that does not exist,
    :data:`~edge_sdk.resize.RESIZE_MODES`).
    """
    if color not in COLORS:
        raise InvalidArgumentError(f"color must be 'rgb' or 'bgr', got {color!r}")
    check_resize_mode(resize)
    try:
        return _to_rgb_array(image, height, width, resize, color)
    except InvalidImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - out of memory for a big array, an odd ndarray subclass, a bad path object
        raise InvalidImageError(f"cannot use {type(image).__name__} as an image: {describe(exc)}") from exc


def _to_rgb_array(image: Any, height: int, width: int, resize: str, color: str) -> np.ndarray:
    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)):
        path = os.fspath(image) if isinstance(image, os.PathLike) else image
        if isinstance(path, str) and _URL.match(path):
            raise InvalidImageError(f"URLs are not supported; download the picture first: {path}")
        return load_image(image, height, width, resize)
    if isinstance(image, Image.Image):
        return _pil_to_rgb_array(image, height, width, resize)
    if isinstance(image, np.ndarray):
        pixels = _array_to_uint8(np.asarray(image))  # a plain ndarray (np.matrix cannot be 3-D)
        if pixels.shape[:2] != (height, width):
            # resize before any channel swap: 32x32 values are cheaper to reorder than a camera frame
            pixels = resize_pixels(pixels, height, width, resize)
        if pixels.ndim == 2:
            return np.repeat(pixels[:, :, None], 3, axis=2)
        return np.ascontiguousarray(pixels[:, :, 2::-1] if color == "bgr" else pixels)
    raise InvalidImageError(
        f"unsupported image type {type(image).__name__}: pass a file path, bytes, a PIL image or a numpy array")


def _pil_to_rgb_array(image: Image.Image, height: int, width: int, resize: str) -> np.ndarray:
    """Resize a PIL image of any mode, EXIF-rotated and converted exactly as a file is."""
    if image.width == 0 or image.height == 0:
        raise InvalidImageError(f"PIL image has no pixels (size {image.width}x{image.height})")
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise InvalidImageError(f"PIL image is too large: {image.width}x{image.height} pixels, more than the "
                                f"{MAX_IMAGE_PIXELS:,} allowed")
    if getattr(image, "tile", None) and image.format not in (*ALLOWED_FORMATS, "MPO"):
        # opened by the caller but not decoded yet: decoding it could run an external program (EPS: Ghostscript)
        raise InvalidImageError(f"PIL image of format {image.format} is not decoded by the SDK (it decodes "
                                f"{', '.join(ALLOWED_FORMATS)}); load or convert it yourself first")
    img = to_rgb_image(image, f"PIL image (mode {image.mode})")
    try:
        return resize_image(img, height, width, resize)
    except Exception as exc:  # noqa: BLE001 - any failure of one picture is that picture's error
        raise InvalidImageError(f"cannot resize PIL image of mode {image.mode}: {describe(exc)}") from exc


def _array_to_uint8(array: np.ndarray) -> np.ndarray:
    """Validate an image array; return uint8 ``HxW`` or ``HxWx3`` pixels in the caller's channel order."""
    if array.size == 0:
        raise InvalidImageError(f"image array is empty (shape {array.shape})")
    if array.ndim >= 2 and array.shape[0] * array.shape[1] > MAX_IMAGE_PIXELS:
        # before anything copies it: a broadcast (zero-stride) array can claim terabytes
        raise InvalidImageError(f"image array is too large: {array.shape[0]}x{array.shape[1]} pixels, more than the "
                                f"{MAX_IMAGE_PIXELS:,} allowed")
    if array.nbytes > MAX_IMAGE_BYTES:  # shape times item size: no copy is made to know it
        raise InvalidImageError(f"image array is too large: {array.nbytes:,} bytes ({array.dtype} of shape "
                                f"{array.shape}), more than the {MAX_IMAGE_BYTES:,} allowed")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidImageError(f"image array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")
    if array.dtype == np.bool_:
        raise InvalidImageError("boolean arrays are not images; pass uint8 pixels or floats in [0, 1]")
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InvalidImageError("image array contains NaN or infinite values")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise InvalidImageError(
                f"float image arrays must hold values in [0, 1], got {lo:g}..{hi:g} (pass uint8 for 0-255 pixels)")
        array = np.rint(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InvalidImageError(f"unsupported image dtype {array.dtype}: pass uint8 pixels (0-255) or floats in [0, 1]")
    return array if array.ndim == 2 else array[:, :, :3]
