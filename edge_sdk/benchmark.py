"""Measure a model on this machine: load time, batch-1 latency percentiles, batched throughput, peak RSS."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

from .classifier import Classifier
from .errors import InvalidArgumentError

#: distinct random images the latency runs cycle through
IMAGE_POOL = 1024


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process in MiB; None where the platform has no ``resource`` (Windows)."""
    try:
        import resource  # POSIX only: imported here so that ``import edge_sdk`` works everywhere
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
