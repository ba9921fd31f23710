"""``cifar-edge benchmark``: measure a model through the SDK on this machine (:func:`benchmark`: load time,
batch-1 latency percentiles, batched throughput, peak RSS), or with ``--all`` every file and installed runtime of
a bundled model on this host (:func:`benchmark_all`). No TensorFlow needed."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import fastest
from edge_sdk.bundled import BUNDLED, DEFAULT, bundled_file, ranked
from edge_sdk.classifier import Classifier
from edge_sdk.errors import EdgeSDKError, InvalidArgumentError
from edge_sdk.runtimes import installed_backends

from .argtypes import int_range
from .main import add_json_flag, emit, quiet_runtime, summary
from .predict import add_model_options


def register(subparsers: argparse._SubParsersAction) -> None:
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
    if args.name is not None and args.model is not None and args.model != args.name:
        raise InvalidArgumentError(f"two models given: {args.name!r} and --model {args.model!r}; give one")
    return args.name or args.model or DEFAULT


def render_benchmark_all(r: dict[str, Any]) -> str:
    """The text report of one :func:`benchmark_all` result (``cifar-edge benchmark NAME --all``)."""
    host = r["host"]
    lines = [f"{r['model']} on {host['cpu']} ({host['machine']}), threads {r['threads'] or 'default'}; "
             f"Classifier({r['model']!r}) opens {r['chosen']['file']}: {host['pick']}",
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
    """The text report of one :func:`benchmark` result (what ``cifar-edge benchmark`` prints)."""
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


#: distinct random images the latency runs cycle through
IMAGE_POOL = 1024


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process in MiB; None where the platform has no ``resource`` (Windows)."""
    try:
        import resource  # POSIX only: imported here so that the command imports everywhere
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms)
    return {f"p{p}": round(float(np.percentile(arr, p)), 4) for p in (50, 90, 99)} | {
        "mean": round(float(arr.mean()), 4)
    }


def benchmark(
    model: str | os.PathLike[str] | None = None,
    *,
    backend: str | None = None,
    num_threads: int | None = None,
    runs: int = 200,
    warmup: int = 20,
    batch: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """Benchmark ``model`` (default: the bundled model) through the SDK on random 32x32 images.

    Latency is one ``Classifier.classify`` call on a uint8 image (preprocess,
    inference, postprocess) and, separately, the runtime's own call alone on the
    already-encoded tensor (for an int8 model: int8 in, int8 out); the SDK overhead is
    their p50 ratio (``sdk_overhead_ratio``) and difference in microseconds
    (``sdk_overhead_us``). Throughput is ``classify_batch`` at ``batch``. Raises
    ``ValueError`` for bad counts and what :class:`Classifier` raises.
    """
    if runs < 1 or batch < 1 or warmup < 0:
        raise InvalidArgumentError("runs and batch must be >= 1 and warmup >= 0")
    t0 = time.perf_counter()
    clf = Classifier(model, backend=backend, num_threads=num_threads)
    load_ms = 1e3 * (time.perf_counter() - t0)
    h, w = clf.spec.input_size
    rng = np.random.default_rng(seed)
    # a pool of images reused in turn: memory does not grow with runs
    images = rng.integers(0, 256, size=(max(min(runs, IMAGE_POOL), batch), h, w, 3), dtype=np.uint8)

    tensor = clf.encode(images[0])
    runtime = clf._backend  # the bare runtime call on the encoded tensor, for the SDK overhead
    for i in range(warmup):
        clf.classify(images[i % len(images)])
        runtime.invoke(tensor)
    # the two calls alternate, so that both see the same machine (other processes, clock speed)
    sdk_ms, bare_ms = [], []
    for i in range(runs):
        start = time.perf_counter()
        clf.classify(images[i % len(images)])
        middle = time.perf_counter()
        runtime.invoke(tensor)
        end = time.perf_counter()
        sdk_ms.append(1e3 * (middle - start))
        bare_ms.append(1e3 * (end - middle))

    batch_images = list(images[:batch])
    clf.classify_batch(batch_images)
    rounds = max(1, min(20, 2000 // batch))
    start = time.perf_counter()
    for _ in range(rounds):
        clf.classify_batch(batch_images)
    elapsed = time.perf_counter() - start

    sdk = _percentiles(sdk_ms)
    bare = _percentiles(bare_ms)
    return {
        "model": str(clf.model_path),
        "model_name": clf.model_name,
        "backend": clf.backend_name,
        "threads": num_threads,
        "file_bytes": clf.model_path.stat().st_size,
        "load_ms": round(load_ms, 2),
        "latency_ms": sdk,
        "runtime_latency_ms": bare,
        "sdk_overhead_ratio": round(sdk["p50"] / bare["p50"], 3) if bare["p50"] > 0 else None,
        "sdk_overhead_us": round(1e3 * (sdk["p50"] - bare["p50"]), 1),
        "batch": batch,
        "throughput_images_per_s": round(rounds * batch / elapsed, 1),
        "runs": runs,
        "peak_rss_mb": None if (rss := peak_rss_mb()) is None else round(rss, 1),
    }


def benchmark_all(
    name: str,
    *,
    num_threads: int | None = None,
    runs: int = 200,
    warmup: int = 20,
    batch: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`benchmark` every variant of bundled model ``name`` on this host (each file it ships on each
    installed runtime that runs it, :func:`variants`) and mark the one a plain ``Classifier(name)`` opens
    (``chosen``; ``host.pick`` says whether that order was measured now, read from the cache file, or is the
    file order). A variant that fails to load or run is listed with its ``error``.

    ``chosen_vs_fastest`` is the chosen variant's p50 classify latency over the fastest one's (1.0 when
    the measured pick is the fastest here too; figures within one run, so timing noise moves it a little).
    Raises :class:`ModelLoadError` for an unknown name, ``InvalidArgumentError`` for bad counts.
    """
    if runs < 1 or batch < 1 or warmup < 0:
        raise InvalidArgumentError("runs and batch must be >= 1 and warmup >= 0")
    chosen_path = bundled_file(name)
    pick = ranked(name)[1]
    chosen_backend = next(iter(installed_backends(chosen_path.suffix)), None)
    rows: list[dict[str, Any]] = []
    for path, backend in variants(name):
        try:
            row = benchmark(path, backend=backend, num_threads=num_threads, runs=runs, warmup=warmup, batch=batch,
                            seed=seed)
        except EdgeSDKError as exc:  # one runtime that cannot run the file does not stop the others
            row = {"model": str(path), "backend": backend, "error": str(exc)}
        row["file"] = path.name
        row["chosen"] = path == chosen_path and backend == chosen_backend
        rows.append(row)
    timed = [r for r in rows if "error" not in r]
    fastest = min(timed, key=lambda r: r["latency_ms"]["p50"], default=None)
    chosen = next((r for r in timed if r["chosen"]), None)
    ratio = (round(chosen["latency_ms"]["p50"] / fastest["latency_ms"]["p50"], 3)
             if chosen is not None and fastest is not None and fastest["latency_ms"]["p50"] > 0 else None)
    return {
        "model": name,
        "host": {"cpu": cpu_model(), "machine": platform.machine(), "pick": pick},
        "threads": num_threads,
        "chosen": {"file": chosen_path.name, "backend": chosen_backend},
        "fastest": None if fastest is None else {"file": fastest["file"], "backend": fastest["backend"]},
        "chosen_vs_fastest": ratio,
        "variants": rows,
    }


def variants(name: str) -> list[tuple[Path, str]]:
    """Every way this installation can run bundled model ``name``: ``(file, backend)`` for each file present whose
    runtime is installed and each installed backend that runs it, the file ``Classifier(name)`` opens first.
    Raises :class:`ModelLoadError` for an unknown name."""
    return [(path, backend) for path in ranked(name)[0] for backend in installed_backends(path.suffix)]


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name from ``cpuinfo`` (``/proc/cpuinfo``'s text; read here when None), else what
    :mod:`platform` knows. Raises nothing."""
    if cpuinfo is None:
        try:
            cpuinfo = fastest.CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("model name", "hardware", "cpu model") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()
