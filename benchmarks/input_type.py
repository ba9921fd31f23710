"""Two TFLite files of one model against each other: the int8-input export and its uint8-input variant.

    python -m benchmarks.input_type INT8.tflite UINT8.tflite [--data PATH] [--limit N] [--runs 2000] [--threads 1] [--json]

Classifies the CIFAR-10 test images (``--limit`` of them, stratified) with both files through
:class:`edge_sdk.Classifier` and reports each file's accuracy, the top-1 agreement of the two
files and their largest probability difference; then times batch-1 ``Classifier.classify`` on a
uint8 image (encode + LiteRT invoke + ranking) of the two files interleaved in one process, so the
ratio holds whatever else the machine runs. Needs the SDK with LiteRT and the data layer (no
TensorFlow). Raises ``EdgeSDKError`` subclasses for a bad model or data folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Sequence

import numpy as np

from .host import cpu_name


def compare(paths: Sequence[str], images: np.ndarray, labels: np.ndarray, runs: int, threads: int) -> dict[str, Any]:
    """Accuracy, agreement and interleaved batch-1 latency of the files at ``paths`` on ``images``."""
    from edge_sdk import Classifier

    classifiers = [Classifier(path, num_threads=threads) for path in paths]
    probs = [c.probabilities_batch(images) for c in classifiers]
    for clf in classifiers:  # warm-up
        for _ in range(20):
            clf.classify(images[0])
    times: list[list[float]] = [[] for _ in classifiers]
    for i in range(runs):
        image = images[i % len(images)]
        for clf, spent in zip(classifiers, times):
            start = time.perf_counter()
            clf.classify(image)
            spent.append((time.perf_counter() - start) * 1e3)
    return {
        "cpu": cpu_name(), "threads": threads, "images": len(images), "runs": runs,
        "top1_agreement": float((probs[0].argmax(1) == probs[1].argmax(1)).mean()),
        "max_abs_prob_diff": float(np.abs(probs[0] - probs[1]).max()),
        "files": [{"path": str(path), "input_dtype": str(clf._backend.input_dtype),
                   "accuracy": float((p.argmax(1) == labels).mean()), "classify_p50_ms": statistics.median(t)}
                  for path, clf, p, t in zip(paths, classifiers, probs, times)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs=2, metavar="FILE.tflite")
    parser.add_argument("--data", help="CIFAR-10 (default: $CIFAR10_DIR, the cache, or a download)")
    parser.add_argument("--limit", type=int, help="test images, stratified (default all)")
    parser.add_argument("--runs", type=int, default=2000, help="timed batch-1 calls per file (default 2000)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from edge_sdk.errors import EdgeSDKError
    from cifar_edge.train.data import resolve_source, stratified_indices

    try:
        test = resolve_source(args.data, progress=False).load("test")
        if args.limit and args.limit < len(test):
            test = test.subset(stratified_indices(test.labels, args.limit, 0))
        result = compare(args.files, test.images, test.labels, args.runs, args.threads)
    except EdgeSDKError as exc:
        print(f"input_type: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"CPU: {result['cpu']}, {result['threads']} thread(s), {result['runs']} interleaved batch-1 calls per file")
    print(f"top-1 agreement {result['top1_agreement']:.4%} on {result['images']:,} test images, "
          f"max |dp| {result['max_abs_prob_diff']:.2e}")
    for f in result["files"]:
        print(f"{f['input_dtype']:<6} accuracy {f['accuracy']:.4f}  classify p50 {f['classify_p50_ms']:.3f} ms  {f['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
