"""``cifar-edge predict`` and ``benchmark``: the SDK from the command line (no TensorFlow needed)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from edge_sdk.errors import InferenceError, InvalidArgumentError, InvalidImageError
from edge_sdk.images import IMAGE_SUFFIXES, image_files
from edge_sdk.resize import RESIZE_MODES

from .argtypes import int_range, probability
from .main import add_json_flag, emit, quiet_runtime, summary
from .terminal import safe_text

#: the most runtime threads an option may ask for
MAX_THREADS = 256


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` and ``benchmark`` subcommands."""
    register_predict(subparsers)
    register_benchmark(subparsers)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend`` and ``--threads``: how every SDK command opens its model."""
    from edge_sdk.bundled import BUNDLED, DEFAULT
    from edge_sdk.runtimes import available_backends

    p.add_argument("--model", default=DEFAULT, metavar="NAME|FILE",
                   help=f"a bundled model ({', '.join(BUNDLED)}: see 'cifar-edge models') or a .tflite or .onnx file "
                        f"(default: {DEFAULT})")
    p.add_argument("--backend", choices=tuple(available_backends()), help="force a runtime")
    p.add_argument("--threads", type=int_range(1, MAX_THREADS), help="runtime threads (default: the runtime's choice)")


def register_predict(subparsers: argparse._SubParsersAction) -> None:
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
                   help="call a picture 'unknown' when its best probability is below P (default: the model "
                        "file's own threshold; 0 turns the verdict off)")
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


def register_benchmark(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``benchmark`` subcommand."""
    p = subparsers.add_parser("benchmark", help=summary("benchmark"))
    p.add_argument("name", nargs="?", metavar="NAME|FILE", help="the model to measure (the same as --model)")
    add_model_options(p)
    p.add_argument("--all", action="store_true",
                   help="measure every file and installed runtime of a bundled model on this host and mark the one "
                        "Classifier(NAME) opens")
    p.add_argument("--batch", type=int_range(1, 4096), default=64, help="batch size for the throughput figure (default 64)")
    p.add_argument("--runs", type=int_range(1, 10_000_000), default=200, help="timed batch-1 calls (default 200)")
    p.add_argument("--warmup", type=int_range(0, 10_000_000), default=20, help="untimed calls first (default 20)")
    add_json_flag(p)
    p.set_defaults(func=run_benchmark, model=None)  # None: not given (NAME or the default model)


def run_benchmark(args: argparse.Namespace) -> int:
    from edge_sdk.benchmark import benchmark, benchmark_all
    from edge_sdk.bundled import BUNDLED

    model = _benchmark_model(args)
    if args.all:
        if model not in BUNDLED:
            raise InvalidArgumentError(f"--all measures a bundled model ({', '.join(BUNDLED)}), not {model!r}")
        if args.backend:
            raise InvalidArgumentError("--all measures every installed runtime; leave --backend out")
        with quiet_runtime(args):
            result = benchmark_all(model, num_threads=args.threads, runs=args.runs, warmup=args.warmup,
                                   batch=args.batch)
        emit(result, args.json, render_benchmark_all)
        return 0
    with quiet_runtime(args):
        result = benchmark(model, backend=args.backend, num_threads=args.threads, runs=args.runs,
                           warmup=args.warmup, batch=args.batch)
    emit(result, args.json, render_benchmark)
    return 0


def _benchmark_model(args: argparse.Namespace) -> str:
    """The model ``benchmark`` measures: the positional NAME or ``--model`` (both only when they agree)."""
    from edge_sdk.bundled import DEFAULT

    if args.name is not None and args.model is not None and args.model != args.name:
        raise InvalidArgumentError(f"two models given: {args.name!r} and --model {args.model!r}; give one")
    return args.name or args.model or DEFAULT


def render_benchmark_all(r: dict[str, Any]) -> str:
    """The text report of one :func:`edge_sdk.benchmark.benchmark_all` result (``cifar-edge benchmark NAME --all``)."""
    host = r["host"]
    lines = [f"{r['model']} on {host['cpu']} ({host['class']}: {' before '.join(host['preference'])}), "
             f"threads {r['threads'] or 'default'}",
             f"  {'file':<22} {'backend':<14} {'classify p50':>12} {'runtime p50':>12} {'images/s':>10}"]
    for v in r["variants"]:
        mark = "  <- Classifier(" + repr(r["model"]) + ")" if v["chosen"] else ""
        if "error" in v:
            lines.append(f"  {v['file']:<22} {v['backend']:<14} error: {v['error']}{mark}")
            continue
        lines.append(f"  {v['file']:<22} {v['backend']:<14} {v['latency_ms']['p50']:>9.3f} ms "
                     f"{v['runtime_latency_ms']['p50']:>9.3f} ms {v['throughput_images_per_s']:>10,.0f}{mark}")
    if r["chosen_vs_fastest"] is not None:
        lines.append(f"chosen {r['chosen']['file']} on {r['chosen']['backend']}: {r['chosen_vs_fastest']:.2f}x the "
                     f"fastest ({r['fastest']['file']} on {r['fastest']['backend']})")
    return "\n".join(lines)


def render_benchmark(r: dict[str, Any]) -> str:
    """The text report of one :func:`edge_sdk.benchmark` result (what ``cifar-edge benchmark`` prints)."""
    lat, bare = r["latency_ms"], r["runtime_latency_ms"]
    rss = "unknown on this platform" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.1f} MiB"
    return "\n".join([
        f"model {r['model_name']} ({r['model']}, {r['file_bytes']:,} bytes) on {r['backend']}, threads {r['threads'] or 'default'}",
        f"load            {r['load_ms']:.1f} ms",
        f"classify (b=1)  p50 {lat['p50']:.3f}  p90 {lat['p90']:.3f}  p99 {lat['p99']:.3f} ms  ({r['runs']} runs)",
        f"runtime only    p50 {bare['p50']:.3f}  p90 {bare['p90']:.3f}  p99 {bare['p99']:.3f} ms  (SDK overhead x{r['sdk_overhead_ratio']}, {r['sdk_overhead_us']:+.1f} us per call)",
        f"throughput      {r['throughput_images_per_s']:,.0f} images/s at batch {r['batch']}",
        f"peak RSS        {rss}",
    ])
