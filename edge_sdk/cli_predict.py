"""``cifar-edge predict``: classify image files with the SDK (no TensorFlow needed)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .cli import add_json_flag, emit
from .errors import InvalidImageError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    p = subparsers.add_parser("predict", help="classify image files with a .tflite or .onnx model")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (jpg, png, bmp, webp, ...)")
    p.add_argument("--model", help="a .tflite or .onnx model (default: the bundled int8 default model)")
    p.add_argument("--backend", choices=("litert", "tflite-runtime", "tf-lite", "onnxruntime"), help="force a runtime")
    p.add_argument("--top-k", type=int, default=3, help="categories per image (default 3)")
    p.add_argument("--score-threshold", type=float, default=0.0, help="drop categories below this probability")
    p.add_argument("--threads", type=int, help="runtime threads (default: the runtime's choice)")
    p.add_argument("--resize", choices=("stretch", "center-crop"), help="override the model's resize mode")
    add_json_flag(p)
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from .classifier import Classifier

    clf = Classifier(args.model, backend=args.backend, num_threads=args.threads, top_k=args.top_k,
                     score_threshold=args.score_threshold, resize=args.resize)
    results: list[dict[str, Any]] = []
    failed = 0
    for path in args.images:
        try:
            r = clf.classify(path)
        except InvalidImageError as exc:
            failed += 1
            print(f"cifar-edge predict: error: {exc}", file=sys.stderr)
            results.append({"image": path, "error": str(exc)})
            continue
        results.append({
            "image": path,
            "categories": [c._asdict() for c in r.categories],
            "timing_ms": {"preprocess": r.timing.preprocess_ms, "inference": r.timing.inference_ms,
                          "postprocess": r.timing.postprocess_ms},
        })
    out = {"model": str(clf.model_path), "model_name": clf.model_name, "backend": clf.backend_name, "results": results}
    emit(out, args.json, _render)
    return 2 if failed else 0


def _render(out: dict[str, Any]) -> str:
    lines = [f"model {out['model_name']} ({out['model']}) on {out['backend']}"]
    for r in out["results"]:
        if "error" in r:
            continue
        cats = ", ".join(f"{c['label']} {c['score']:.3f}" for c in r["categories"]) or "(no category above the threshold)"
        lines.append(f"{r['image']}: {cats}  [{r['timing_ms']['inference']:.2f} ms]")
    return "\n".join(lines)
