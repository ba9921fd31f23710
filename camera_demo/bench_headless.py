"""Headless demo throughput: decode + preprocess + inference + overlay + encode, per thread count.

    python -m cifar_edge.camera_demo.bench_headless --video /tmp/bench640.mp4 --threads 1 2 [--model M] [--json]

When ``--video`` does not exist it is built first from CIFAR-10 test images
(``--data`` or ``$CIFAR10_DIR``), each upscaled to ``--size`` and held for
``--hold`` frames. Every run writes the annotated video (to a temporary
folder) so encoding is part of the measured time; the model load is not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from edge_sdk.classifier import Classifier
from cifar_edge.cli.argtypes import dimensions, int_range, positive_int
from cifar_edge.cli.terminal import strict_json

from .demo import DemoConfig, run_demo
from .synth import build_video, cifar_test_images


def ensure_video(path: Path, data: str | None, size: tuple[int, int], images: int, hold: int, fps: float) -> int:
    """Build the benchmark video if it is missing; return its frame count."""
    if path.exists():
        return -1
    root = data or os.environ.get("CIFAR10_DIR")
    if not root:
        raise SystemExit("bench_headless: the video does not exist; pass --data or set CIFAR10_DIR to build it")
    per_class = -(-images // 10)
    pictures = cifar_test_images(root, per_class=per_class)[:images]
    return build_video(pictures, path, size=size, hold=hold, fps=fps)


def bench(video: Path, model: str | None, threads: int, repeats: int, max_frames: int | None) -> dict[str, Any]:
    """Run the headless demo ``repeats`` times with ``threads`` runtime threads; report the median run."""
    runs = []
    with Classifier(model, num_threads=threads) as clf, tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            cfg = DemoConfig(source=str(video), headless=True, output=str(Path(tmp) / f"out{i}.mp4"),
                             max_frames=max_frames, threads=threads)
            runs.append(run_demo(cfg, classifier=clf))
        fps = [r.fps for r in runs]
        best = sorted(runs, key=lambda r: r.fps)[len(runs) // 2]
        return {"threads": threads, "model": clf.model_name, "backend": clf.backend_name, "frames": best.frames,
                "fps_median": round(statistics.median(fps), 2), "fps_runs": fps,
                "mean_inference_ms": best.mean_inference_ms, "mean_latency_ms": best.mean_latency_ms,
                "seconds": best.seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", default=str(Path(tempfile.gettempdir()) / "cifar-edge-bench-640x480.mp4"))
    p.add_argument("--data", help="CIFAR-10 folder to build the video from (default $CIFAR10_DIR)")
    p.add_argument("--model", help="model file (default: the bundled int8 model)")
    p.add_argument("--threads", type=int_range(1, 256), nargs="+", default=[1, 2])
    p.add_argument("--size", type=dimensions(), default="640x480", help="WxH of a video built here (default 640x480)")
    p.add_argument("--images", type=positive_int, default=100, help="CIFAR pictures in a video built here")
    p.add_argument("--hold", type=positive_int, default=3, help="frames per picture in a video built here")
    p.add_argument("--repeats", type=positive_int, default=3)
    p.add_argument("--max-frames", type=positive_int)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    w, h = args.size
    video = Path(args.video)
    built = ensure_video(video, args.data, (w, h), args.images, args.hold, 30.0)
    if built > 0:
        print(f"built {video}: {built} frames at {w}x{h}", file=sys.stderr)
    results = [bench(video, args.model, t, args.repeats, args.max_frames) for t in args.threads]
    out = {"video": str(video), "cpus": os.cpu_count(), "results": results}
    if args.json:
        print(strict_json(out))
    else:
        for r in results:
            print(f"threads {r['threads']}: {r['fps_median']:.1f} FPS over {r['frames']} frames (runs {r['fps_runs']}), "
                  f"mean inference {r['mean_inference_ms']:.2f} ms, classify {r['mean_latency_ms']:.2f} ms "
                  f"[{r['model']} on {r['backend']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
