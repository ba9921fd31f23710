"""The upscaled-photo proxy: how a model does on smooth, full-size pictures resized by the SDK.

    python -m benchmarks.photo_proxy MODEL [MODEL ...] [--data PATH] [--limit N] [--json]

What a webcam or a phone photo gives the SDK is a large, smooth picture that the SDK shrinks to
the model's 32x32 input; the training copy is 32x32 JPEG q75 (blocky). With no photographs on
these machines, the proxy stands in for them: each CIFAR-10 test image is upscaled 4-8x
(bicubic, the factor drawn per image), softened with a mild Gaussian blur (radius 0.5-1.5 output
pixels, as a camera's optics and demosaicing do), saved as a high-quality JPEG file, and
classified from its path by :class:`edge_sdk.Classifier`: decode, the SDK's own resize, the
model's encoder. The proxy is seeded, so every model sees the same files.

Only the SDK (numpy + pillow + a runtime) is needed. Raises ``EdgeSDKError`` subclasses for a
bad model or data folder (CLI: one line, exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageFilter

from edge_sdk.classifier import Classifier
from edge_sdk.errors import EdgeSDKError

SCALES = (4, 8)  # upscale factor range (inclusive), drawn per image
BLUR_RADIUS = (0.5, 1.5)  # Gaussian blur radius range in output pixels
JPEG_QUALITY = 92


def test_images(data: str | os.PathLike[str], limit: int | None = None) -> list[tuple[Path, int, str]]:
    """``(path, class index, class name)`` of ``data/test/<class>/*``, the first ``limit // classes``
    of each class (all when ``limit`` is ``None``), classes in CIFAR-10's order when they are its own.

    Raises ``EdgeSDKError`` when ``data/test`` holds no class folders.
    """
    from edge_sdk.spec import CIFAR10_CLASSES

    root = Path(data) / "test"
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        raise EdgeSDKError(f"no class folders under {root}; pass --data pointing at an image-folder tree")
    if sorted(classes) == sorted(CIFAR10_CLASSES):
        classes = list(CIFAR10_CLASSES)
    per_class = None if limit is None else max(1, limit // len(classes))
    items = []
    for index, name in enumerate(classes):
        files = sorted(f for f in (root / name).iterdir() if f.is_file())[:per_class]
        items.extend((f, index, name) for f in files)
    return items


def make_proxy(src: Path, dst: Path, rng: np.random.Generator) -> None:
    """Write ``src`` upscaled, blurred and JPEG-encoded to ``dst`` (see the module docstring)."""
    with Image.open(src) as img:
        img = img.convert("RGB")
    scale = int(rng.integers(SCALES[0], SCALES[1] + 1))
    radius = float(rng.uniform(*BLUR_RADIUS))
    big = img.resize((img.width * scale, img.height * scale), Image.Resampling.BICUBIC)
    big = big.filter(ImageFilter.GaussianBlur(radius))
    big.save(dst, "JPEG", quality=JPEG_QUALITY)


def build_proxy(items: Sequence[tuple[Path, int, str]], folder: Path, seed: int = 0) -> list[Path]:
    """Proxy files for ``items`` in ``folder`` (created), in the same order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (src, _, name) in enumerate(items):
        dst = folder / f"{k:05d}_{name}.jpg"
        make_proxy(src, dst, rng)
        paths.append(dst)
    return paths


def accuracy(model: str | os.PathLike[str], paths: Sequence[Path], labels: Sequence[int]) -> dict[str, Any]:
    """Top-1 accuracy of ``model`` on image files ``paths`` through ``Classifier.classify(path)``.

    A file the SDK cannot read counts as wrong and is reported, never fatal.
    """
    correct, failed = 0, []
    start = time.perf_counter()
    with Classifier(model, top_k=1) as clf:
        names = clf.labels
        for path, label in zip(paths, labels):
            try:
                top = clf.classify(path).top
            except EdgeSDKError as exc:
                failed.append(f"{path.name}: {exc}")
                continue
            correct += top is not None and top.label == names[label]
    return {"model": str(model), "images": len(paths), "accuracy": correct / max(len(paths), 1),
            "failed": failed, "seconds": round(time.perf_counter() - start, 1)}


def evaluate(models: Sequence[str], data: str, limit: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Plain and proxy accuracy of each model on the same images (proxy files in a temporary folder)."""
    items = test_images(data, limit)
    labels = [label for _, label, _ in items]
    originals = [path for path, _, _ in items]
    with tempfile.TemporaryDirectory(prefix="photo-proxy-") as tmp:
        proxies = build_proxy(items, Path(tmp), seed)
        rows = []
        for model in models:
            plain = accuracy(model, originals, labels)
            proxy = accuracy(model, proxies, labels)
            rows.append({"model": str(model), "images": len(items), "plain_accuracy": plain["accuracy"],
                         "proxy_accuracy": proxy["accuracy"], "gap": plain["accuracy"] - proxy["accuracy"],
                         "failed": plain["failed"] + proxy["failed"]})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photo_proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help=".tflite / .onnx model files")
    parser.add_argument("--data", default=os.environ.get("CIFAR10_DIR"), help="image-folder tree (default $CIFAR10_DIR)")
    parser.add_argument("--limit", type=int, help="test images, spread evenly over the classes (default all 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        if not args.data:
            raise EdgeSDKError("no data: pass --data or set CIFAR10_DIR")
        if args.limit is not None and args.limit < 1:
            raise EdgeSDKError(f"--limit must be at least 1, got {args.limit}")
        rows = evaluate(args.models, args.data, args.limit, args.seed)
    except EdgeSDKError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"rows": rows}))
    else:
        print(f"{'model':<50} {'images':>7} {'plain':>7} {'proxy':>7} {'gap':>6}")
        for r in rows:
            print(f"{r['model']:<50} {r['images']:>7} {r['plain_accuracy']:>7.4f} {r['proxy_accuracy']:>7.4f} "
                  f"{100 * r['gap']:>5.1f}p")
    return 0


if __name__ == "__main__":
    sys.exit(main())
