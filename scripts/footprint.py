"""Import time and memory of the SDK with one runtime, versus importing TensorFlow.

Each figure comes from a fresh interpreter, so imports are cold for Python (warm for the OS
file cache: run it twice and take the second). Usage, with the Python of the environment to
measure (e.g. a venv holding only ``.[litert]`` or ``.[onnx]``):

    python scripts/footprint.py --model MODEL [--tensorflow]

Prints one JSON object: import seconds, RSS after import, RSS after loading the model and
classifying one image, and the same for ``import tensorflow`` when asked.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

PROBE = r"""
import json, resource, sys, time
def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
t0 = time.perf_counter()
exec(sys.argv[1])
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


def probe(statement: str, model: str = "") -> dict:
    """Run ``statement`` (and optionally a classification) in a fresh interpreter; return its figures."""
    proc = subprocess.run([sys.executable, "-c", PROBE, statement, model], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model to load and run once after the import")
    parser.add_argument("--tensorflow", action="store_true", help="also measure `import tensorflow`")
    parser.add_argument("--repeat", type=int, default=3, help="fresh interpreters per figure; the fastest is kept")
    args = parser.parse_args()
    runs = [probe("import edge_sdk", args.model) for _ in range(args.repeat)]
    result = {"python": sys.executable, "edge_sdk": min(runs, key=lambda r: r["import_s"])}
    if args.tensorflow:
        tf_runs = [probe("import tensorflow") for _ in range(args.repeat)]
        result["tensorflow"] = min(tf_runs, key=lambda r: r["import_s"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
