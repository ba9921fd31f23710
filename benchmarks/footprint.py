"""Import time and memory of the SDK with one runtime, versus importing TensorFlow.

Each figure comes from a fresh interpreter, so imports are cold for Python (warm for the OS
file cache: run it twice and take the second). Usage, with the Python of the environment to
measure (e.g. a venv holding only ``.[litert]`` or ``.[onnx]``):

    python -m benchmarks.footprint --model MODEL [--tensorflow]

Prints one JSON object: import seconds, RSS after import, RSS after loading the model and
classifying one image, and the same for ``import tensorflow`` when asked.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from .host import RSS_MB_SOURCE

PROBE = r"""
import importlib, json, sys, time
""" + RSS_MB_SOURCE + r"""
t0 = time.perf_counter()
importlib.import_module(sys.argv[1])
t1 = time.perf_counter()
out = {"import_s": round(t1 - t0, 3), "rss_after_import_mb": round(rss_mb(), 1)}
if sys.argv[2]:
    import numpy as np
    from edge_sdk import Classifier
    t2 = time.perf_counter()
    clf = Classifier(sys.argv[2])
    clf.classify(np.zeros((32, 32, 3), np.uint8))
    out["load_and_first_classify_s"] = round(time.perf_counter() - t2, 3)
    out["backend"] = clf.backend_name
    out["rss_after_classify_mb"] = round(rss_mb(), 1)
out["tensorflow_imported"] = "tensorflow" in sys.modules
print(json.dumps(out))
"""


def probe(module: str, model: str = "") -> dict:
    """Import ``module`` (and optionally classify once with ``model``) in a fresh interpreter; return its figures."""
    proc = subprocess.run([sys.executable, "-c", PROBE, module, model], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fastest(module: str, model: str = "", repeat: int = 3) -> dict:
    """The run with the fastest import among ``repeat`` fresh interpreters."""
    return min((probe(module, model) for _ in range(repeat)), key=lambda r: r["import_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model to load and run once after the import")
    parser.add_argument("--tensorflow", action="store_true", help="also measure `import tensorflow`")
    parser.add_argument("--repeat", type=int, default=3, help="fresh interpreters per figure; the fastest is kept")
    args = parser.parse_args()
    result = {"python": sys.executable, "edge_sdk": fastest("edge_sdk", args.model, args.repeat)}
    if args.tensorflow:
        result["tensorflow"] = fastest("tensorflow", "", args.repeat)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
