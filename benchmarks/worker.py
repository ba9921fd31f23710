"""One measurement process: one model file on one runtime with one thread count; prints one JSON object.

    python -m benchmarks.worker --model models/default/export/model_int8.tflite --threads 1
    python -m benchmarks.worker --model models/default/best.keras --threads 2 --accuracy

Each configuration runs in a fresh process so that peak RSS is that of a
process holding only the SDK (or Keras) and that one model. For SDK models it
measures, in this order: load time; throughput of ``classify_batch`` at
``--batch``; peak RSS; then batch-1 latency of ``Classifier.classify`` on a
32x32 uint8 array and of the runtime's own call (a second interpreter or
session of the same file, fed the same already-encoded tensor), alternating
blocks of the two so that both see the same machine state. Their median
ratio is the SDK's overhead. ``--sdk-path`` runs another checkout's
``edge_sdk`` (the suite's before/after comparison).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

BLOCKS = 10


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50/p90/p99 and mean of durations given in seconds, in milliseconds."""
    ms = np.asarray(samples_s) * 1e3
    return {f"p{p}": round(float(np.percentile(ms, p)), 4) for p in (50, 90, 99)} | {"mean": round(float(ms.mean()), 4)}


def time_calls(fn: Callable[[], Any], n: int) -> list[float]:
    """Durations in seconds of ``n`` calls of ``fn``."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def alternate(first: Callable[[], Any], second: Callable[[], Any], runs: int, warmup: int) -> tuple[list, list]:
    """Time ``runs`` calls of each, in alternating blocks, after ``warmup`` calls of each."""
    time_calls(first, warmup)
    time_calls(second, warmup)
    a: list[float] = []
    b: list[float] = []
    per_block = max(1, runs // BLOCKS)
    while len(a) < runs:
        a += time_calls(first, per_block)
        b += time_calls(second, per_block)
    return a, b


def throughput(fn: Callable[[], Any], batch: int, min_s: float = 0.5) -> float:
    """Images per second of ``fn`` (one call classifies ``batch`` images), over at least ``min_s`` seconds."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_s and calls >= 3:
            return calls * batch / elapsed


def bare_runtime(path: Path, backend: str, threads: int) -> tuple[Callable[[np.ndarray], Any], dict[str, Any]]:
    """The runtime's own API on ``path``, independent of the SDK: (call on an input tensor, input details)."""
    if backend == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return (lambda x: session.run(None, {name: x})[0]), {"dtype": np.dtype(np.float32), "quantization": None}
    if backend == "litert":
        from ai_edge_litert.interpreter import Interpreter
    elif backend == "tflite-runtime":
        from tflite_runtime.interpreter import Interpreter
    else:
        raise SystemExit(f"benchmarks.worker: no bare call for backend {backend!r}")
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def call(x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    dtype = np.dtype(inp["dtype"])
    return call, {"dtype": dtype, "quantization": None if dtype == np.float32 else inp["quantization"]}


def runtime_tensor(clf: Any, image: np.ndarray) -> np.ndarray:
    """The tensor the model takes for uint8 ``image``, from the SDK's own encoder (``Classifier.encode``),
    so the bare call is fed exactly what the SDK feeds its runtime. Checkouts from before ``encode``
    existed (``--sdk-path``) quantize their ``preprocess`` output with their own ``quantize``."""
    if hasattr(clf, "encode"):
        return clf.encode(image)
    from edge_sdk.runtimes.base import quantize

    x, backend = clf.preprocess(image), clf._backend
    return x if backend.input_quantization is None else quantize(x, *backend.input_quantization, backend.input_dtype)


def test_images(data: str | None, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 test images and labels (the whole split when ``limit`` is 0, else a stratified subset)."""
    from cifar_edge.train.data import load_split, stratified_indices

    test = load_split("test", data)
    if limit and limit < len(test):
        idx = stratified_indices(test.labels, limit, 0)
        return test.images[idx], test.labels[idx]
    return test.images, test.labels


def measure_sdk(args: argparse.Namespace) -> dict[str, Any]:
    """Load time, throughput, peak RSS, SDK vs bare latency and (optionally) accuracy through the SDK."""
    from edge_sdk import Classifier

    start = time.perf_counter()
    clf = Classifier(args.model, backend=args.backend, num_threads=args.threads)
    load_ms = 1e3 * (time.perf_counter() - start)
    h, w = clf.spec.input_size
    rng = np.random.default_rng(0)
    batch = list(rng.integers(0, 256, size=(args.batch, h, w, 3), dtype=np.uint8))
    images_per_s = throughput(lambda: clf.classify_batch(batch), args.batch)
    image = batch[0]
    clf.classify(image)
    rss = peak_rss_mb()  # before the second (bare) runtime instance exists

    bare, details = bare_runtime(Path(args.model), clf.backend_name, args.threads)
    tensor = runtime_tensor(clf, image)
    sdk_s, bare_s = alternate(lambda: clf.classify(image), lambda: bare(tensor), args.runs, args.warmup)
    result = {
        "backend": clf.backend_name,
        "load_ms": round(load_ms, 2),
        "latency_ms": percentiles(sdk_s),
        "runtime_latency_ms": percentiles(bare_s),
        "sdk_overhead_ratio": round(float(np.median(sdk_s) / np.median(bare_s)), 4),
        "sdk_overhead_us": round(1e6 * float(np.median(sdk_s) - np.median(bare_s)), 2),
        "throughput_images_per_s": round(images_per_s, 1),
        "peak_rss_mb": round(rss, 1),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }
    if args.accuracy:
        images, labels = test_images(args.data, args.accuracy_limit)
        top1 = [r.top.index for i in range(0, len(images), 256) for r in clf.classify_batch(list(images[i : i + 256]))]
        result["accuracy"] = round(float(np.mean(np.asarray(top1) == labels)), 4)
        result["accuracy_images"] = int(len(labels))
    return result


def measure_keras(args: argparse.Namespace) -> dict[str, Any]:
    """The same figures for a ``.keras`` model on TensorFlow (a compiled ``tf.function``; no SDK)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    from cifar_edge.train.training import load_keras_model  # the project's loader (a quantization-aware model too)
    from edge_sdk.spec import PreprocessSpec

    start = time.perf_counter()
    model = load_keras_model(args.model)
    spec_file = Path(args.model).with_name("spec.json")
    spec = PreprocessSpec.from_json(spec_file.read_text()) if spec_file.is_file() else PreprocessSpec()
    h, w = spec.input_size
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    one = spec.normalize(np.random.default_rng(0).integers(0, 256, size=(1, h, w, 3), dtype=np.uint8))
    predict(one)
    load_ms = 1e3 * (time.perf_counter() - start)
    batch = spec.normalize(np.random.default_rng(1).integers(0, 256, size=(args.batch, h, w, 3), dtype=np.uint8))
    images_per_s = throughput(lambda: predict(batch).numpy(), args.batch)
    time_calls(lambda: predict(one).numpy(), args.warmup)
    samples = time_calls(lambda: predict(one).numpy(), args.runs)
    result = {
        "backend": f"keras {keras.__version__} / tensorflow {tf.__version__}",
        "load_ms": round(load_ms, 2),
        "latency_ms": percentiles(samples),
        "throughput_images_per_s": round(images_per_s, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    if args.accuracy:
        images, labels = test_images(args.data, args.accuracy_limit)
        probs = np.concatenate([predict(spec.normalize(images[i : i + 256])).numpy() for i in range(0, len(images), 256)])
        result["accuracy"] = round(float(np.mean(probs.argmax(1) == labels)), 4)
        result["accuracy_images"] = int(len(labels))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--backend", help="force a runtime (litert, tflite-runtime, onnxruntime)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=300, help="batch-1 latency samples (each of SDK and bare)")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--accuracy", action="store_true", help="also measure test accuracy")
    p.add_argument("--accuracy-limit", type=int, default=0, help="test images (0: the whole split)")
    p.add_argument("--data", help="CIFAR-10 location (default: $CIFAR10_DIR, the cache)")
    p.add_argument("--sdk-path", help="import edge_sdk from this folder (another checkout)")
    args = p.parse_args(argv)
    if args.sdk_path:
        sys.path.insert(0, args.sdk_path)
    result = measure_keras(args) if args.model.endswith(".keras") else measure_sdk(args)
    print(json.dumps({"model": args.model, "threads": args.threads} | result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
