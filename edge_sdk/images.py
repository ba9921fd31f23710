"""Decode image files into RGB uint8 arrays of a given size: the SDK's file and bytes inputs and the data layer's
image folders alike, so a picture is decoded the same way in training and in deployment. Only the formats of
:data:`ALLOWED_FORMATS` are decoded (never one for which Pillow runs an external program), and every failure while
decoding, applying the EXIF orientation or converting the mode raises :class:`~edge_sdk.errors.InvalidImageError`.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError

from .errors import InvalidImageError
from .resize import check_resize_mode, draft_scale, resize_image

#: larger pictures are refused before decoding (decompression-bomb guard): 64 megapixels covers any camera
MAX_IMAGE_PIXELS = 64_000_000
#: ... and pictures (files, arrays, camera frames) whose decoded pixels take more bytes than this: a
#: 64-megapixel RGBA or 32-bit picture fits, a 64-megapixel float32 RGB array (768 MB) does not.
MAX_IMAGE_BYTES = 256 * 1024 * 1024
#: rows of a wide (16/32-bit) picture converted to 8 bits at a time: the extra memory stays a few MB
_CONVERT_BLOCK_PIXELS = 1 << 20

#: The only formats decoded, by Pillow format name: decoded in-process by Pillow's own libraries.
#: PPM covers PBM/PGM/PNM; JPEG includes MPO (multi-picture JPEG). Everything else (EPS, PSD, ICO,
#: PCX, TGA, ...) is refused as unknown without being tried.
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "AVIF", "PPM")

#: File suffixes of those formats: what a folder of pictures is scanned for.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm",
                  ".avif")


def image_files(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """The image files (by :data:`IMAGE_SUFFIXES`) in ``folder``, or in its whole tree when ``recursive``,
    sorted by path. Raises ``OSError`` if the folder cannot be listed."""
    entries = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    return sorted(p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


_ORIENTATION = 0x0112  # the EXIF tag
_WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16- and 32-bit grayscale


def open_rgb(source: str | os.PathLike[str] | bytes, draft: tuple[int, int, str] | None = None) -> Image.Image:
    """Decode a file path or encoded bytes into an RGB PIL image (EXIF orientation applied; grayscale, palette,
    RGBA/LA, CMYK and 16-bit images converted). Pictures over :data:`MAX_IMAGE_PIXELS` are refused from their
    header. ``draft=(height, width, mode)``: the picture is only needed at that size, so a JPEG may decode at a
    reduced scale (:func:`~edge_sdk.resize.draft_scale`). Raises :class:`InvalidImageError` naming the file and the
    problem, whatever fails (a format outside :data:`ALLOWED_FORMATS`, a corrupt header, pixels or EXIF block, an
    unreadable file)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = "<bytes>"
        if len(source) == 0:
            raise InvalidImageError("image data is empty (0 bytes)")
        stream: io.BytesIO | Path = io.BytesIO(bytes(source))
    else:
        name = str(source)
        stream = Path(source)
        _check_file(stream)
    try:
        with _open_header(stream, name) as img:
            check_decoded_size(img.width, img.height, _bytes_per_pixel(img.mode), name)
            if img.width == 0 or img.height == 0:
                raise InvalidImageError(f"image has no pixels ({img.width}x{img.height}): {name}")
            if draft is not None and img.format == "JPEG":
                scale = draft_scale(img.height, img.width, *draft)
                if scale < 0.5:
                    img.draft(None, (max(1, int(img.width * scale + 0.999)), max(1, int(img.height * scale + 0.999))))
            img.load()
            return to_rgb_image(img, name)
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as exc:  # raised while loading by formats that pick a size then
        raise InvalidImageError(f"image is too large to decode safely: {name}: {exc}") from exc
    except PermissionError as exc:
        raise InvalidImageError(f"cannot read image file {name}: permission denied") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImageError(f"cannot decode image {name}: not a known image format (or a corrupt header); "
                                f"the SDK decodes {', '.join(ALLOWED_FORMATS)}") from exc
    except Exception as exc:  # any decoder failure (OSError, SyntaxError, struct.error, RuntimeError, MemoryError...)
        raise InvalidImageError(f"cannot decode image {name}: {describe(exc)}") from exc


def describe(exc: BaseException) -> str:
    """A short description of a decoder exception: its message, with the type for non-I/O errors."""
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    text = str(exc).strip() or name
    return text if isinstance(exc, (OSError, SyntaxError, ValueError)) else f"{name}: {text}"


def _check_file(path: Path) -> None:
    """Raise :class:`InvalidImageError` unless ``path`` is a non-empty regular file (a FIFO or device is refused
    before it is opened: reading one could block forever)."""
    try:
        if not path.exists():
            raise InvalidImageError(f"image file not found: {path}")
        if not path.is_file():
            raise InvalidImageError(f"not an image file (a folder or device): {path}")
        if path.stat().st_size == 0:
            raise InvalidImageError(f"image file is empty (0 bytes): {path}")
    except OSError as exc:  # a name too long, a folder on the way that may not be searched
        raise InvalidImageError(f"cannot read image file {path}: {exc.strerror or exc}") from exc


def _open_header(stream: io.BytesIO | Path, name: str) -> Image.Image:
    """``Image.open`` (reads the header only), with Pillow's own bomb check mapped to our error. Pillow's global
    ``MAX_IMAGE_PIXELS`` is left alone; its warning is silenced: :func:`check_decoded_size` says it more clearly."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(stream, formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"image is too large to decode safely (more than {MAX_IMAGE_PIXELS:,} pixels; "
                                f"decompression-bomb guard): {name}") from exc


def check_decoded_size(width: int, height: int, bytes_per_pixel: int, name: str) -> None:
    """Raise :class:`InvalidImageError` naming ``name`` for a picture over :data:`MAX_IMAGE_PIXELS` pixels or
    :data:`MAX_IMAGE_BYTES` decoded bytes (the one cap of files, arrays and camera frames)."""
    if width * height > MAX_IMAGE_PIXELS:
        raise InvalidImageError(f"image is too large to decode safely: {width}x{height} pixels, more than the "
                                f"{MAX_IMAGE_PIXELS:,} allowed (decompression-bomb guard): {name}")
    if width * height * bytes_per_pixel > MAX_IMAGE_BYTES:
        raise InvalidImageError(f"image is too large to decode safely: {width}x{height} pixels of {bytes_per_pixel} "
                                f"bytes, more than the {MAX_IMAGE_BYTES:,} bytes allowed: {name}")


def _bytes_per_pixel(mode: str) -> int:
    try:
        descr = ImageMode.getmode(mode)
    except KeyError:
        return 4  # an unknown mode: the widest Pillow has
    return max(1, np.dtype(descr.typestr).itemsize * len(descr.bands))


def to_rgb_image(img: Image.Image, name: str = "PIL image") -> Image.Image:
    """Any PIL image as a new RGB image, EXIF-rotated when it carries an orientation (the one rule of every input
    kind); 16/32-bit grayscale keeps its top 8 bits (no clipping at 255). Raises :class:`InvalidImageError` naming
    ``name`` when anything fails (a corrupt EXIF block, pixels that do not load, an unsupported mode)."""
    try:
        # exif_transpose copies even an upright picture: only called when there is something to turn
        turned = img.getexif().get(_ORIENTATION, 1) in range(2, 9)
        oriented = (ImageOps.exif_transpose(img) or img) if turned else img
        rgb = _convert_rgb(oriented)
        return rgb.copy() if rgb is img else rgb  # always a copy: the caller may close the original
    except InvalidImageError:
        raise
    except Exception as exc:
        raise InvalidImageError(f"cannot convert image {name} (mode {img.mode}) to RGB: {describe(exc)}") from exc


def _convert_rgb(img: Image.Image) -> Image.Image:
    if img.mode in _WIDE_GRAY_MODES:
        img = _wide_gray_to_l(img)
    if img.mode in ("P", "PA") and "transparency" in img.info:
        img = img.convert("RGBA")
    return img if img.mode == "RGB" else img.convert("RGB")


def _wide_gray_to_l(img: Image.Image) -> Image.Image:
    """16/32-bit grey to 8 bits, a band of rows at a time (never a widened copy of the whole picture):
    16-bit keeps its top 8 bits; 32-bit ``I`` is clipped at 0 and keeps its top 8 of 16 bits when a value
    exceeds 255 (else it is taken as it is), saturating at 255."""
    width, height = img.size
    shift = 8
    if img.mode == "I":
        shift = 8 if img.getextrema()[1] > 255 else 0
    out = np.empty((height, width), np.uint8)
    rows = max(1, _CONVERT_BLOCK_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        band = np.asarray(img.crop((0, top, width, min(top + rows, height))))
        if img.mode == "I":
            band = np.clip(band, 0, 255 << shift) >> shift
        else:
            band = band >> shift
        out[top : top + band.shape[0]] = band
    return Image.fromarray(out)


def load_image(source: str | os.PathLike[str] | bytes, height: int, width: int, mode: str = "stretch") -> np.ndarray:
    """Decode ``source`` and return an RGB uint8 array of shape (height, width, 3), framed by ``mode``
    (:data:`~edge_sdk.resize.RESIZE_MODES`). A large JPEG decodes at a reduced scale (DCT scaling,
    :func:`~edge_sdk.resize.draft_scale`). Raises :class:`InvalidImageError` as :func:`open_rgb`,
    :class:`InvalidArgumentError` for an unknown mode."""
    check_resize_mode(mode)
    img = open_rgb(source, draft=(height, width, mode))
    try:
        return resize_image(img, height, width, mode)
    finally:
        img.close()
