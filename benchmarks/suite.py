"""The benchmark suite: every shipped model x format x available runtime, in fresh processes.

    python -m benchmarks [--repeats 3] [--baseline-ref REF] [--out benchmarks] [--quick]

Writes ``OUT/results.json`` and ``OUT/RESULTS.md``. Each configuration (model
file, runtime, thread count) runs ``--repeats`` times in a fresh process (see
:mod:`benchmarks.worker`); the report gives the median of each figure over
those runs. Also measured: import time and memory of ``edge_sdk`` with each
runtime vs ``import tensorflow`` (:mod:`benchmarks.footprint`), the headless
camera pipeline (:mod:`cifar_edge.camera_demo.bench_headless`), and with
``--baseline-ref`` the SDK path of an older commit against this checkout,
interleaved in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from cifar_edge.cli.atomic import write_text_atomic
from edge_sdk.bundled import DEFAULT, bundled_path
from cifar_edge.cli.formats import FORMATS

from . import footprint
from .host import cpu_name
from .report import PLOT_FILE, latency_accuracy_points, render

REPO = Path(__file__).resolve().parents[1]
#: a shipped model's quantization-aware fine-tune (train/qat.py), inside its folder: the source of its export
QAT_SOURCE = "qat/best.keras"
FILES = {  # format -> (file inside a model folder, runtime): the Keras source, then the export table's formats
    "keras": ("best.keras", "keras"),
    **{f.name: (f"export/{f.file_name}", f.runtime) for f in FORMATS.values()},
}
#: formats a shipped model folder may leave out of git (models/default commits its int8 exports only)
FLOAT_EXPORTS = tuple(f.name for f in FORMATS.values() if not f.name.endswith("-int8"))
PACKAGES = ("numpy", "pillow", "ai-edge-litert", "tflite-runtime", "onnxruntime", "tensorflow-cpu", "tensorflow",
            "keras", "opencv-python", "opencv-python-headless")
SUMMARY_KEYS = ("load_ms", "sdk_overhead_ratio", "sdk_overhead_us", "throughput_images_per_s", "peak_rss_mb")


def machine() -> dict[str, Any]:
    """CPU model, cores, OS, Python and the versions of the packages measured."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "arch": platform.machine(), "os": platform.platform(),
            "python": platform.python_version(), "packages": versions}


def configurations(models: list[str], formats: list[str]) -> list[dict[str, str]]:
    """Every (model, format, runtime) to measure; a TFLite file also on tflite-runtime when it is installed."""
    runtimes_for = {"litert": ["litert"] + (["tflite-runtime"] if importlib.util.find_spec("tflite_runtime") else [])}
    out = []
    for model in models:
        for fmt in formats:
            rel, runtime = FILES[fmt]
            path = REPO / "models" / model / rel
            if fmt == "keras" and (path.parent / QAT_SOURCE).is_file():  # the model the shipped int8 files come from
                path = path.parent / QAT_SOURCE
            if not path.is_file() and fmt not in FLOAT_EXPORTS:
                raise SystemExit(f"benchmarks: {path} is missing (shipped models are committed under models/)")
            if not path.is_file():  # models/default commits its int8 exports only (README, "Shipped models")
                print(f"benchmarks: skipping {path.relative_to(REPO)}: not committed", file=sys.stderr)
                continue
            for rt in runtimes_for.get(runtime, [runtime]):
                out.append({"model": model, "format": fmt, "runtime": rt, "path": str(path),
                            "bytes": path.stat().st_size})
    return out


def run_worker(path: str, runtime: str, threads: int, opts: argparse.Namespace, *, accuracy: bool = False,
               sdk_path: str | None = None) -> dict[str, Any]:
    """One fresh measurement process; its JSON result."""
    cmd = [sys.executable, "-m", "benchmarks.worker", "--model", path, "--threads", str(threads),
           "--runs", str(opts.runs), "--warmup", str(opts.warmup), "--batch", str(opts.batch)]
    if runtime != "keras":
        cmd += ["--backend", runtime]
    if accuracy:
        cmd += ["--accuracy", "--accuracy-limit", str(opts.accuracy_limit)] + (["--data", opts.data] if opts.data else [])
    if sdk_path:
        cmd += ["--sdk-path", sdk_path]
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"benchmarks: {' '.join(cmd)} failed:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every figure over repeated runs (nested latency dictionaries included)."""
    out: dict[str, Any] = {"repeats": len(runs)}
    for key in SUMMARY_KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = round(statistics.median(values), 4)
    for key in ("latency_ms", "runtime_latency_ms"):
        if key in runs[0]:
            out[key] = {k: round(statistics.median(r[key][k] for r in runs), 4) for k in runs[0][key]}
    return out


def measure_models(configs: list[dict[str, str]], opts: argparse.Namespace) -> list[dict[str, Any]]:
    """Every configuration x thread count, repeated; accuracy once per configuration (last thread count)."""
    results = []
    for cfg in configs:
        entry: dict[str, Any] = dict(cfg) | {"threads": {}}
        for threads in opts.threads:
            runs = []
            for rep in range(opts.repeats):
                with_accuracy = rep == 0 and threads == opts.threads[-1] and opts.accuracy_limit >= 0
                run = run_worker(cfg["path"], cfg["runtime"], threads, opts, accuracy=with_accuracy)
                if "accuracy" in run:
                    entry["accuracy"], entry["accuracy_images"] = run["accuracy"], run["accuracy_images"]
                runs.append(run)
            entry["threads"][str(threads)] = median_of(runs)
            print(f"  {cfg['model']:8s} {cfg['format']:11s} {cfg['runtime']:12s} {threads} thread(s): "
                  f"p50 {entry['threads'][str(threads)]['latency_ms']['p50']:.3f} ms", file=sys.stderr)
        results.append(entry)
    return results


def baseline_checkout(ref: str, dest: Path) -> Path:
    """Extract ``edge_sdk`` as of git ``ref`` into ``dest``; return the folder to put on ``sys.path``."""
    archive = dest / "edge_sdk.tar"
    with open(archive, "wb") as fh:
        proc = subprocess.run(["git", "archive", ref, "edge_sdk"], cwd=REPO, stdout=fh, stderr=subprocess.PIPE, text=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmarks: cannot read edge_sdk at {ref!r}: {proc.stderr.decode().strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def before_after(ref: str, opts: argparse.Namespace) -> dict[str, Any]:
    """SDK latency and overhead of the default int8 model, 1 thread: ``ref``'s edge_sdk vs this checkout, interleaved."""
    path = str(bundled_path(DEFAULT, ".tflite"))  # the bundled default int8 TFLite (a test keeps it equal to models/default's)
    before, after = [], []
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".baseline-", dir=opts.out) as tmp:
        sdk = str(baseline_checkout(ref, Path(tmp)))
        for _ in range(opts.repeats):
            before.append(run_worker(path, "litert", 1, opts, sdk_path=sdk))
            after.append(run_worker(path, "litert", 1, opts))
    return {"ref": ref, "model": "default int8 TFLite (LiteRT, 1 thread)", "before": median_of(before),
            "after": median_of(after)}


def measure_imports(opts: argparse.Namespace) -> dict[str, Any]:
    """``import edge_sdk`` + first classification with each runtime, and ``import tensorflow``."""
    onnx_int8 = FORMATS["onnx-int8"]
    model = next((m for m in opts.models.split(",") if (REPO / "models" / m / "export" / onnx_int8.file_name).is_file()),
                 "default")  # the first measured model with an int8 ONNX file
    out = {
        "edge_sdk + LiteRT (default int8 .tflite)": footprint.fastest("edge_sdk", str(bundled_path(DEFAULT, ".tflite")), opts.repeats),
        f"edge_sdk + ONNX Runtime ({model} int8 .onnx)": footprint.fastest(
            "edge_sdk", str(REPO / "models" / model / "export" / onnx_int8.file_name), opts.repeats),
    }
    if importlib.util.find_spec("tensorflow"):
        out["tensorflow"] = footprint.fastest("tensorflow", "", opts.repeats)
    return out


def measure_camera(opts: argparse.Namespace) -> dict[str, Any]:
    """Headless camera pipeline FPS on a 640x480 video (see :mod:`cifar_edge.camera_demo.bench_headless`), made in a
    temporary folder under ``--out`` (nothing is written outside it) and removed afterwards."""
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".camera-", dir=opts.out) as tmp:
        video = Path(tmp) / "bench-640x480.mp4"
        cmd = [sys.executable, "-m", "cifar_edge.camera_demo.bench_headless", "--video", str(video), "--json",
               "--repeats", str(opts.repeats), "--threads", *map(str, opts.threads)]
        if opts.camera_frames:
            cmd += ["--max-frames", str(opts.camera_frames)]
        if opts.data:
            cmd += ["--data", opts.data]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"benchmarks: the camera benchmark failed:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_open_world(opts: argparse.Namespace) -> dict[str, Any]:
    """The bundled models on the real-photo folder (when it is there) and the camera-frame path of ``edge``."""
    from . import frame_path, real_photos

    out: dict[str, Any] = {"frame_path": frame_path.measure("edge", opts.runs)}
    data = Path(opts.real_photos)
    if data.is_dir():
        out["real_photos"] = [real_photos.measure(name, data, None, 1) for name in ("default", "edge")]
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO / "benchmarks"), help="folder for results.json and RESULTS.md")
    p.add_argument("--models", default="resnet8,default", help="shipped model folders under models/")
    p.add_argument("--formats", default=",".join(FILES), help=f"of: {', '.join(FILES)}")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per configuration (median reported)")
    p.add_argument("--runs", type=int, default=300, help="batch-1 latency samples per process")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--batch", type=int, default=64, help="batch size of the throughput figure")
    p.add_argument("--accuracy-limit", type=int, default=0,
                   help="test images for accuracy (0: all 10,000; -1: skip accuracy)")
    p.add_argument("--camera-frames", type=int, default=0, help="frames of the camera benchmark (0: the whole video)")
    p.add_argument("--baseline-ref", help="git commit whose edge_sdk is measured against this checkout")
    p.add_argument("--data", help="CIFAR-10 location (default: $CIFAR10_DIR, the cache)")
    p.add_argument("--real-photos", default=str(REPO.parent / "shared" / "datasets" / "real-photos"),
                   help="real-photo folder (test/<class>/ and unknown/); skipped when absent")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: resnet8, 1 thread, 1 repeat, few samples, 200 test images, 30 camera frames")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.models, opts.threads, opts.repeats, opts.runs, opts.warmup = "resnet8", [1], 1, 20, 3
        opts.accuracy_limit = opts.accuracy_limit or 200
        opts.camera_frames = opts.camera_frames or 30
    unknown = set(opts.formats.split(",")) - set(FILES)
    if unknown or opts.repeats < 1 or opts.runs < 1:
        p.error(f"unknown format(s) {', '.join(sorted(unknown))}" if unknown else "--repeats and --runs must be >= 1")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = dt.datetime.now(dt.timezone.utc)
    configs = configurations(opts.models.split(","), opts.formats.split(","))
    print(f"benchmarks: {len(configs)} configurations x threads {opts.threads} x {opts.repeats} repeats", file=sys.stderr)
    results = {
        "machine": machine(),
        "started": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: getattr(opts, k) for k in ("threads", "repeats", "runs", "warmup", "batch", "accuracy_limit")},
        "tflite_runtime_installed": importlib.util.find_spec("tflite_runtime") is not None,
        "models": measure_models(configs, opts),
    }
    if opts.baseline_ref:
        print(f"benchmarks: before/after against {opts.baseline_ref}", file=sys.stderr)
        results["before_after"] = before_after(opts.baseline_ref, opts)
    print("benchmarks: import footprint", file=sys.stderr)
    results["imports"] = measure_imports(opts)
    print("benchmarks: camera pipeline", file=sys.stderr)
    results["camera"] = measure_camera(opts)
    print("benchmarks: real photos and the camera-frame path", file=sys.stderr)
    results.update(measure_open_world(opts))
    results["wall_s"] = round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1)
    out = Path(opts.out)
    points = latency_accuracy_points(results)
    if points:
        from cifar_edge.train.plots import plot_latency_accuracy

        plot_latency_accuracy(points, out / PLOT_FILE, title=f"{results['machine']['cpu']}, {opts.threads[0]} thread")
        results["plot"] = PLOT_FILE  # beside RESULTS.md, which links it
        results["plot_path"] = str(out / PLOT_FILE)
    write_text_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    write_text_atomic(out / "RESULTS.md", render(results))
    print(f"benchmarks: wrote {out / 'RESULTS.md'} and {out / 'results.json'} in {results['wall_s']} s", file=sys.stderr)
    return 0
