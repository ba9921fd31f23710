"""Peak memory of one big ``Classifier.classify_batch`` call (10,000 images by default).

Each model is measured in a fresh interpreter: RSS after loading the model and a warm-up batch of
8, then one ``classify_batch`` over ``--images`` random 32x32 uint8 pictures (a list of arrays, 3 KB
each), then the peak RSS of the process (``ru_maxrss``) and its RSS afterwards (what the runtime's
arena kept). ``--chunk N`` sets :attr:`edge_sdk.Classifier.batch_chunk` (``0``: the whole batch as
one chunk, which is what ``classify_batch`` did before it chunked). Usage:

    python -m benchmarks.batch_memory [--images 10000] [--chunk N] [--json] [MODEL ...]

Prints one line per model (or one JSON object) and names the CPU from /proc/cpuinfo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from cifar_edge.cli.formats import FORMATS

from .host import RSS_MB_SOURCE, cpu_name

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("edge_sdk/models/default_int8.tflite", f"models/default/export/{FORMATS['onnx-int8'].file_name}")

PROBE = r"""
import json, resource, sys, time
import numpy as np
from edge_sdk import Classifier
""" + RSS_MB_SOURCE + r"""
model, n, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
clf = Classifier(model)
if chunk >= 0:
    clf.batch_chunk = chunk or n
rng = np.random.default_rng(0)
clf.classify_batch(list(rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)))
images = list(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))
before = rss_mb()
t0 = time.perf_counter()
results = clf.classify_batch(images)
seconds = time.perf_counter() - t0
assert len(results) == n and all(r.top is not None for r in results)
print(json.dumps({
    "model": model, "backend": clf.backend_name, "images": n,
    "batch_chunk": getattr(clf, "batch_chunk", None),
    "rss_before_mb": round(before, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "rss_after_mb": round(rss_mb(), 1),
    "seconds": round(seconds, 2),
}))
"""


def measure(model: str, images: int, chunk: int) -> dict:
    """Run the probe for ``model`` in a fresh interpreter; return its figures."""
    proc = subprocess.run([sys.executable, "-c", PROBE, model, str(images), str(chunk)], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"batch_memory: {model}: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"default: {' '.join(DEFAULT_MODELS)}")
    parser.add_argument("--images", type=int, default=10_000, help="images in the one batch (default 10000)")
    parser.add_argument("--chunk", type=int, default=-1,
                        help="Classifier.batch_chunk to use (0: the whole batch at once; default: the SDK's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    rows = [measure(m, args.images, args.chunk) for m in (args.models or DEFAULT_MODELS)]
    result = {"cpu": cpu_name(), "cores": os.cpu_count(), "rows": rows}
    if args.json:
        print(json.dumps(result, allow_nan=False))
        return
    print(f"CPU: {result['cpu']} ({result['cores']} cores)")
    for r in rows:
        print(f"{r['backend']:<12} {Path(r['model']).name:<22} {r['images']:,} images, chunk {r['batch_chunk']}: "
              f"RSS {r['rss_before_mb']:.0f} MiB before, peak {r['peak_rss_mb']:.0f} MiB, "
              f"{r['rss_after_mb']:.0f} MiB after; {r['seconds']:.1f} s")


if __name__ == "__main__":
    main()
