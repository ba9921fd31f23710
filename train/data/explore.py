"""Data exploration: per-split statistics and a labelled image grid (seeds 000 and 003)."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cifar_edge.cli.atomic import atomic_path
from cifar_edge.cli.errors import DatasetError
from edge_sdk.spec import CIFAR10_CLASSES

from .dataset import ImageSet


def pixel_stats(images: np.ndarray, chunk: int = 4096) -> dict[str, Any]:
    """Min, max and per-channel mean/std (0-255 scale) of uint8 images, in float64, chunked."""
    n_pixels = images.shape[0] * images.shape[1] * images.shape[2]
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].reshape(-1, 3).astype(np.float64)
        total += block.sum(axis=0)
        total_sq += np.square(block).sum(axis=0)
    mean = total / n_pixels
    std = np.sqrt(np.maximum(total_sq / n_pixels - mean**2, 0.0))
    return {
        "min": int(images.min()),
        "max": int(images.max()),
        "mean": [round(float(v), 4) for v in mean],
        "std": [round(float(v), 4) for v in std],
        "mean_01": [round(float(v) / 255, 6) for v in mean],
        "std_01": [round(float(v) / 255, 6) for v in std],
    }


def split_stats(data: ImageSet, first: int = 20) -> dict[str, Any]:
    """Counts per class, pixel statistics, shape and the first labels of one split."""
    head = data.labels[:first].tolist()
    return {
        "images": len(data),
        "shape": list(data.images.shape),
        "dtype": str(data.images.dtype),
        "per_class": data.class_counts(),
        "pixels": pixel_stats(data.images),
        "first_labels": head,
        "first_label_names": [data.class_names[i] for i in head],
        "skipped_files": len(data.skipped),
        "from_cache": data.from_cache,
    }


def label_order_report(class_names: tuple[str, ...]) -> dict[str, Any]:
    """Whether the class order is CIFAR-10's official one (index = position)."""
    official = tuple(class_names) == CIFAR10_CLASSES
    return {
        "class_names": list(class_names),
        "official_cifar10_order": official,
        "mismatches": []
        if official
        else [
            {"index": i, "found": name, "official": CIFAR10_CLASSES[i] if i < len(CIFAR10_CLASSES) else None}
            for i, name in enumerate(class_names)
            if i >= len(CIFAR10_CLASSES) or name != CIFAR10_CLASSES[i]
        ],
    }


def image_grid(data: ImageSet, n: int = 36, *, scale: int = 3, seed: int = 0) -> Image.Image:
    """A grid of ``n`` randomly chosen images, upscaled ``scale`` times, each captioned with its class."""
    if n < 1:
        raise DatasetError(f"the grid needs at least 1 image, got {n}")
    n = min(n, len(data))
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w = data.images.shape[1] * scale, data.images.shape[2] * scale
    caption = 14
    pad = 4
    grid = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + caption + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=11)
    for k, i in enumerate(idx):
        r, c = divmod(k, cols)
        x, y = pad + c * (w + pad), pad + r * (h + caption + pad)
        tile = Image.fromarray(data.images[i]).resize((w, h), Image.Resampling.NEAREST)
        grid.paste(tile, (x, y))
        draw.text((x + w / 2, y + h + 1), data.class_names[data.labels[i]], fill="black", font=font, anchor="mt")
    return grid


def save_png(image: Image.Image, path: str | os.PathLike[str]) -> None:
    """Save ``image`` as PNG atomically (complete file or none)."""
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")
