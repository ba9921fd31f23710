"""``cifar-edge predict``: the SDK from the command line (no TensorFlow needed), and the model options every
SDK command shares."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from edge_sdk.errors import InferenceError, InvalidImageError
from edge_sdk.images import IMAGE_SUFFIXES, image_files
from edge_sdk.resize import RESIZE_MODES

from .argtypes import int_range, probability
from .main import add_json_flag, emit, quiet_runtime, summary
from .terminal import safe_text

#: the most runtime threads an option may ask for
MAX_THREADS = 256


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend`` and ``--threads``: how every SDK command opens its model."""
    from edge_sdk.bundled import BUNDLED, DEFAULT
    from edge_sdk.runtimes import available_backends

    p.add_argument("--model", default=DEFAULT, metavar="NAME|FILE",
                   help=f"a bundled model ({', '.join(BUNDLED)}: see 'cifar-edge models') or a .tflite or .onnx file "
                        f"(default: {DEFAULT})")
    p.add_argument("--backend", choices=tuple(available_backends()), help="force a runtime")
    p.add_argument("--threads", type=int_range(1, MAX_THREADS), help="runtime threads (default: the runtime's choice)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    p = subparsers.add_parser("predict", help=summary("predict"))
    p.add_argument("images", nargs="+", metavar="IMAGE|FOLDER",
                   help="image files (jpg, png, bmp, webp, ...) or folders, searched recursively for them")
    add_model_options(p)
    p.add_argument("--top-k", type=int_range(1, 1000), default=3, help="categories per image (default 3)")
    p.add_argument("--score-threshold", type=probability, default=0.0,
                   help="drop categories below this probability, in [0, 1] (default 0)")
    p.add_argument("--resize", choices=RESIZE_MODES, help="override the model's resize mode")
    p.add_argument("--unknown-threshold", type=probability, metavar="P",
                   help="call a picture 'unknown' when its unknown score (the file's: certainty, or its best "
                        "probability) is below P (default: the model file's own threshold; 0 turns the verdict off)")
    add_json_flag(p)
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from edge_sdk.classifier import Classifier

    with quiet_runtime(args):
        clf = Classifier(args.model, backend=args.backend, num_threads=args.threads, top_k=args.top_k,
                         score_threshold=args.score_threshold, resize=args.resize,
                         unknown_threshold=args.unknown_threshold)
    results: list[dict[str, Any]] = []
    failed = 0
    paths, folders = _expand(args.images)
    for folder, count in folders.items():
        if not count:
            failed += 1
            message = f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}"
            print(f"cifar-edge predict: error: {safe_text(message)}", file=sys.stderr)
            results.append({"image": folder, "error": message})
    for path in paths:
        try:
            r = clf.classify(path)
        except (InvalidImageError, InferenceError) as exc:  # one bad picture never stops the others
            failed += 1
            print(f"cifar-edge predict: error: {safe_text(str(exc))}", file=sys.stderr)
            results.append({"image": path, "error": str(exc)})
            continue
        results.append({
            "image": path,
            "label": r.label,
            "unknown": r.unknown,
            "categories": [c._asdict() for c in r.categories],
            "timing_ms": {"preprocess": r.timing.preprocess_ms, "inference": r.timing.inference_ms,
                          "postprocess": r.timing.postprocess_ms},
        })
    out = {"model": str(clf.model_path), "model_name": clf.model_name, "backend": clf.backend_name,
           "images": len(paths), "folders": folders, "results": results}
    emit(out, args.json, _render)
    return 2 if failed else 0


def _expand(arguments: list[str]) -> tuple[list[str], dict[str, int]]:
    """The image paths to classify, in argument order (a folder's files sorted, from its whole tree),
    and the number of images found in each folder argument."""
    paths: list[str] = []
    folders: dict[str, int] = {}
    for argument in arguments:
        if os.path.isdir(argument):
            found = [str(p) for p in image_files(argument, recursive=True)]
            folders[argument] = len(found)
            paths.extend(found)
        else:
            paths.append(argument)
    return paths, folders


def _render(out: dict[str, Any]) -> str:
    lines = [f"model {out['model_name']} ({out['model']}) on {out['backend']}"]
    lines += [f"{folder}: {count} image(s)" for folder, count in out["folders"].items()]
    for r in out["results"]:
        if "error" in r:
            continue
        cats = ", ".join(f"{c['label']} {c['score']:.3f}" for c in r["categories"]) or "(no category above the threshold)"
        if r["unknown"]:
            cats = f"unknown (no known object; best guesses: {cats})"
        lines.append(f"{r['image']}: {cats}  [{r['timing_ms']['inference']:.2f} ms]")
    return "\n".join(lines)
