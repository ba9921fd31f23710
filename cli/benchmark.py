"""``cifar-edge benchmark``: one model's load time, latency and throughput through the SDK
(:func:`edge_sdk.benchmark`), or with ``--all`` every file and installed runtime of a bundled model on this
host (:func:`benchmark_all`). No TensorFlow needed."""

from __future__ import annotations

import argparse
import platform
from typing import Any

from edge_sdk import host
from edge_sdk.benchmark import benchmark
from edge_sdk.bundled import BUNDLED, DEFAULT, bundled_file, variants
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


def benchmark_all(
    name: str,
    *,
    num_threads: int | None = None,
    runs: int = 200,
    warmup: int = 20,
    batch: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`edge_sdk.benchmark` every variant of bundled model ``name`` on this host (each file it ships on each
    installed runtime that runs it, :func:`edge_sdk.bundled.variants`) and mark the one a plain
    ``Classifier(name)`` opens (``chosen``). A variant that fails to load or run is listed with its ``error``.

    ``chosen_vs_fastest`` is the chosen variant's p50 classify latency over the fastest one's (1.0 when
    the host rule picked the fastest; figures within one run, so timing noise moves it a little).
    Raises :class:`ModelLoadError` for an unknown name, ``InvalidArgumentError`` for bad counts.
    """
    if runs < 1 or batch < 1 or warmup < 0:
        raise InvalidArgumentError("runs and batch must be >= 1 and warmup >= 0")
    chosen_path = bundled_file(name)
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
        "host": {"class": host.this_host(), "cpu": cpu_model(), "preference": list(host.preferred_suffixes())},
        "threads": num_threads,
        "chosen": {"file": chosen_path.name, "backend": chosen_backend},
        "fastest": None if fastest is None else {"file": fastest["file"], "backend": fastest["backend"]},
        "chosen_vs_fastest": ratio,
        "variants": rows,
    }


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name from ``cpuinfo`` (``/proc/cpuinfo``'s text; read here when None), else what
    :mod:`platform` knows. Raises nothing."""
    if cpuinfo is None:
        try:
            cpuinfo = host.CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("model name", "hardware", "cpu model") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()
