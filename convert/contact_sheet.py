"""A small PNG of the images whose top-1 flips: each picture enlarged, with Keras's answer and the file's."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cifar_edge.cli.atomic import write_bytes_atomic

#: pictures on one sheet (the first flips in image order), columns, and the size each is drawn at
MAX_TILES = 64
COLUMNS = 8
TILE = 96
CAPTION_LINES = 3
LINE_HEIGHT = 12


def contact_sheet(images: np.ndarray, flips: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> int:
    """Write a PNG of the flipped ``images`` (uint8 ``(N, H, W, 3)``, indexed by each flip's ``index``):
    the first :data:`MAX_TILES` of ``flips`` (entries of :func:`convert.parity.explain`), each captioned
    with its index and true label, Keras's top-1 and margin, and the file's top-1 and probability.
    Returns the number of pictures drawn. Raises ``OSError`` when the file cannot be written."""
    shown = list(flips)[:MAX_TILES]
    columns = max(1, min(COLUMNS, len(shown)))
    rows = max(1, -(-len(shown) // columns))
    cell_h = TILE + CAPTION_LINES * LINE_HEIGHT + 4
    sheet = Image.new("RGB", (columns * TILE, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for k, flip in enumerate(shown):
        x, y = (k % columns) * TILE, (k // columns) * cell_h
        tile = Image.fromarray(images[flip["index"]]).resize((TILE - 4, TILE - 4), Image.Resampling.NEAREST)
        sheet.paste(tile, (x + 2, y + 2))
        label = flip["label"] if flip["label"] is not None else "(none)"
        lines = (f"#{flip['index']} {label}"[:16],
                 f"K {flip['keras_top1'][:8]} m{flip['keras_margin']:.2f}",
                 f"F {flip['file_top1'][:8]} {flip['file_prob']:.2f}")
        for n, (text, colour) in enumerate(zip(lines, ("black", "darkgreen", "firebrick"))):
            draw.text((x + 2, y + TILE + n * LINE_HEIGHT), text, fill=colour, font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG", optimize=True)
    write_bytes_atomic(path, buffer.getvalue())
    return len(shown)
