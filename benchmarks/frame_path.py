"""The camera-frame path: what classifying a frame costs next to the model alone, and next to MediaPipe.

    python -m benchmarks.frame_path [MODEL] [--runs 300] [--json]

A camera gives the SDK a large BGR array. :meth:`edge_sdk.Classifier.classify` frames it (the
model's resize mode), shrinks it with an antialiasing filter (:func:`edge_sdk.resize.resize_pixels`: a
sampled tent filter with OpenCV when ``cv2`` imports, else Pillow), swaps the channels of the small result and runs
the model. Timed, one thread, median of ``--runs`` calls after a warm-up: a 32x32 RGB array (the
model alone, nothing to resize), a 640x480 and a 1920x1080 BGR frame (a smooth synthetic scene),
and, when ``mediapipe`` is installed, MediaPipe Tasks' ImageClassifier on the same 640x480 frame
with the model's TFLite file (the given ``.tflite``, or a bundled name's: its input is uint8, which
MediaPipe takes; it refuses int8-input tensors). The ratios to the
32x32 time are the figures to compare across machines; the CPU is named in the output.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from edge_sdk.bundled import BUNDLED, bundled_path
from edge_sdk.classifier import Classifier
from edge_sdk.resize import opencv

from .host import cpu_name

FRAMES = {"640x480": (480, 640), "1920x1080": (1080, 1920)}


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth synthetic BGR frame: coarse random colour blobs upscaled bicubically, plus mild noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (9, 12, 3), np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), np.int16)
    return np.clip(smooth + rng.integers(-6, 7, smooth.shape), 0, 255).astype(np.uint8)


def median_ms(call: Callable[[], Any], runs: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def mediapipe_ms(tflite_file: Path | None, frame_bgr: np.ndarray, runs: int) -> float | None:
    """MediaPipe ImageClassifier's median time on ``frame_bgr`` (as the RGB image it takes), or None without it
    (or without a TFLite file)."""
    if importlib.util.find_spec("mediapipe") is None or tflite_file is None or not tflite_file.is_file():
        return None
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(tflite_file)), max_results=3)
    rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
    with vision.ImageClassifier.create_from_options(options) as classifier:
        return median_ms(lambda: classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)), runs)


def measure(model: str, runs: int) -> dict[str, Any]:
    """Per-frame times of ``model`` (a file or bundled name) on one thread (module docstring)."""
    with Classifier(model, num_threads=1) as clf:
        h, w = clf.spec.input_size
        small = scene(h, w)[:, :, ::-1].copy()
        result: dict[str, Any] = {"model": model, "file": clf.model_path.name, "resize": clf.spec.resize,
                                  "cpu": cpu_name(), "opencv": opencv() is not None, "runs": runs,
                                  "ms": {f"{h}x{w}": median_ms(lambda: clf.classify(small), runs)}}
        for name, (fh, fw) in FRAMES.items():
            frame = scene(fh, fw)
            result["ms"][name] = median_ms(lambda: clf.classify(frame, color="bgr"), runs)
    base = result["ms"][f"{h}x{w}"]
    result["ratio_to_model_input"] = {k: round(v / base, 2) for k, v in result["ms"].items()}
    tflite = bundled_path(model, ".tflite") if model in BUNDLED else Path(model)
    tflite = tflite if tflite.suffix == ".tflite" else None
    result["mediapipe_file"] = tflite.name if tflite else None
    result["mediapipe_640x480_ms"] = mediapipe_ms(tflite, scene(*FRAMES["640x480"]), runs)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frame_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="edge", help="model file or bundled name (default edge)")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    r = measure(args.model, args.runs)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"{r['model']} ({r['file']}, resize {r['resize']}, OpenCV {'yes' if r['opencv'] else 'no'}) on {r['cpu']}, 1 thread:")
        for k, v in r["ms"].items():
            print(f"  {k:>10}: {v:.3f} ms  ({r['ratio_to_model_input'][k]:.2f}x the model input)")
        if r["mediapipe_640x480_ms"] is not None:
            print(f"  MediaPipe ImageClassifier, 640x480, {r['mediapipe_file']}: {r['mediapipe_640x480_ms']:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
