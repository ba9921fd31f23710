#!/usr/bin/env python3
"""TensorFlow-free smoke test of the SDK on real CIFAR-10 images, and a cross-machine comparison.

Runs under any Python that can import ``edge_sdk`` with numpy, pillow, ``ai-edge-litert`` and
``onnxruntime`` (the host venv, or Debian arm64's python3.11 under qemu with ``PYTHONPATH`` set):

    python scripts/arm64_smoke.py run --data $CIFAR10_DIR --out x86_64.json
    python scripts/arm64_smoke.py compare x86_64.json arm64.json

``run`` classifies a fixed, seeded set of test JPEGs (``--per-class`` per class) with every
shipped model file (every format of ``cifar_edge.cli.formats``, in ``models/*/export/``, each on its
table's runtime: TFLite on LiteRT, ONNX on ONNX Runtime, one thread) through ``edge_sdk.Classifier`` and writes one JSON file.
``compare`` requires the same images and model files and identical top-1 predictions, and
reports the largest absolute probability difference per file (int8 kernels may differ slightly
across instruction sets). Exit status: 0 on success, 1 on a mismatch or failure, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMA = "cifar-edge-arm64-smoke/1"
DEFAULT_MODELS = ("resnet8", "default")
VERSIONED_PACKAGES = ("numpy", "pillow", "ai-edge-litert", "onnxruntime")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class SmokeError(Exception):
    """The smoke run or the comparison could not be done (bad data, bad JSON, missing model)."""


# --------------------------------------------------------------------------- images
def select_images(data_dir: str | os.PathLike[str], per_class: int, seed: int = 0) -> tuple[list[str], list[Path], list[int]]:
    """A seeded sample of ``per_class`` test images of every class: (class names, paths, labels).

    Classes are ``data_dir/test/<class>/`` in sorted order; each class draws from its sorted file
    list with its own ``random.Random(f"{seed}:{class}")``, so the sample is the same on every
    platform and Python 3 version.
    """
    if per_class < 1:
        raise SmokeError(f"per_class must be >= 1, got {per_class}")
    test_dir = Path(data_dir) / "test"
    if not test_dir.is_dir():
        raise SmokeError(f"no test/ folder in the CIFAR-10 image tree {data_dir!s} (set CIFAR10_DIR or --data)")
    classes = sorted(p.name for p in test_dir.iterdir() if p.is_dir())
    if not classes:
        raise SmokeError(f"{test_dir} has no class folders")
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        files = sorted(p for p in (test_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < per_class:
            raise SmokeError(f"{test_dir / name} holds {len(files)} images, fewer than {per_class} per class")
        picked = sorted(random.Random(f"{seed}:{name}").sample(range(len(files)), per_class))
        paths.extend(files[i] for i in picked)
        labels.extend([index] * per_class)
    return classes, paths, labels


def model_files(repo: Path = REPO, models: tuple[str, ...] = DEFAULT_MODELS) -> list[Path]:
    """Every shipped export file of ``models`` (each format of the export table): the int8 files must
    exist; a float32 file only where it is committed (``models/default`` commits its int8 files only,
    see .gitignore)."""
    from cifar_edge.cli.formats import FORMATS  # imported here: ``compare`` needs neither edge_sdk nor cifar_edge

    files = [(repo / "models" / m / "export" / f.file_name, f.name.endswith("-int8"))
             for m in models for f in FORMATS.values()]
    missing = [str(path) for path, required in files if required and not path.is_file()]
    if missing:
        raise SmokeError("shipped model file(s) missing: " + ", ".join(missing))
    return [path for path, _ in files if path.is_file()]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- facts
def machine_facts() -> dict[str, Any]:
    """Platform, CPU and package facts of the running interpreter."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cpu: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "CPU implementer", "CPU part", "Features", "flags", "Model") and key not in cpu:
                cpu[key] = value.strip() if key != "flags" else f"{len(value.split())} flags"
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "cpu_count": os.cpu_count(),
        "cpuinfo": cpu,
        "qemu_cpu": os.environ.get("QEMU_CPU"),
        "packages": versions,
    }


# --------------------------------------------------------------------------- run
def classify_file(model: Path, paths: list[Path], labels: list[int]) -> dict[str, Any]:
    """Classify ``paths`` with one model file through ``edge_sdk.Classifier`` (one thread)."""
    from edge_sdk import Classifier
    from cifar_edge.cli.formats import format_of_file

    fmt = format_of_file(model)
    if fmt is None:
        raise SmokeError(f"not an exported model file name: {model}")
    backend = fmt.runtime
    t0 = time.perf_counter()
    clf = Classifier(model, backend=backend, num_threads=1, top_k=10_000)
    t1 = time.perf_counter()
    results = clf.classify_batch([str(p) for p in paths])
    t2 = time.perf_counter()
    n_classes = len(clf.labels)
    probs: list[list[float]] = []
    for result in results:
        row = [0.0] * n_classes
        for cat in result.categories:
            row[cat.index] = cat.score
        probs.append(row)
    top1 = [result.categories[0].index for result in results]
    backend_name = clf.backend_name
    clf.close()
    return {
        "backend": backend_name,
        "sha256": _sha256(model.read_bytes()),
        "labels": list(clf.labels),
        "top1": top1,
        "probabilities": probs,
        "accuracy": sum(int(p == y) for p, y in zip(top1, labels)) / len(labels),
        "load_s": round(t1 - t0, 4),
        "classify_s": round(t2 - t1, 4),
        "ms_per_image": round(1e3 * (t2 - t1) / len(paths), 3),
    }


def run_smoke(
    data_dir: str | os.PathLike[str],
    per_class: int = 20,
    seed: int = 0,
    repo: Path = REPO,
    models: tuple[str, ...] = DEFAULT_MODELS,
) -> dict[str, Any]:
    """Classify the seeded sample with every shipped model file; the JSON-ready result."""
    from edge_sdk.inputs import to_rgb_array

    t0 = time.perf_counter()
    classes, paths, labels = select_images(data_dir, per_class, seed)
    files = model_files(repo, models)
    pixels = b"".join(to_rgb_array(str(p), 32, 32).tobytes() for p in paths)
    root = Path(data_dir)
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "machine": machine_facts(),
        "data": {
            "per_class": per_class,
            "seed": seed,
            "classes": classes,
            "images": [p.relative_to(root).as_posix() for p in paths],
            "labels": labels,
            "pixels_sha256": _sha256(pixels),
        },
        "files": {},
    }
    for model in files:
        out["files"][model.relative_to(repo).as_posix()] = classify_file(model, paths, labels)
    if "tensorflow" in sys.modules:
        raise SmokeError("tensorflow was imported during the smoke run; the SDK must not import it")
    out["tensorflow_imported"] = False
    out["total_s"] = round(time.perf_counter() - t0, 3)
    return out


# --------------------------------------------------------------------------- compare
@dataclass
class FileComparison:
    """One model file on the two machines."""

    file: str
    accuracy_a: float
    accuracy_b: float
    max_prob_diff: float
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


@dataclass
class Comparison:
    """The comparison of two smoke results: ``ok`` when every top-1 prediction agrees."""

    machine_a: str
    machine_b: str
    files: list[FileComparison]
    problems: list[str] = field(default_factory=list)
    pixels_identical: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems and all(f.ok for f in self.files)


def load_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a smoke JSON file written by ``run``."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SmokeError(f"cannot read smoke result {path}: {exc}") from exc
    if not isinstance(result, dict) or result.get("schema") != SCHEMA:
        raise SmokeError(f"{path} is not a {SCHEMA} smoke result")
    return result


def compare_results(a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    """Compare two smoke results: same images and files, identical top-1, max |probability| difference."""
    cmp = Comparison(a["machine"]["machine"], b["machine"]["machine"], [])
    if a["data"]["images"] != b["data"]["images"]:
        cmp.problems.append("the two runs classified different image sets (different --per-class, --seed or data)")
        return cmp
    cmp.pixels_identical = a["data"]["pixels_sha256"] == b["data"]["pixels_sha256"]
    if not cmp.pixels_identical:
        cmp.problems.append("the decoded input pixels differ between the two machines (JPEG decoding differs)")
    only = sorted(set(a["files"]) ^ set(b["files"]))
    if only:
        cmp.problems.append("model files present in one run only: " + ", ".join(only))
    images = a["data"]["images"]
    for name in sorted(set(a["files"]) & set(b["files"]), key=list(a["files"]).index):
        fa, fb = a["files"][name], b["files"][name]
        if fa["sha256"] != fb["sha256"]:
            cmp.problems.append(f"{name}: different model file contents on the two machines")
        diff = max(
            (abs(x - y) for ra, rb in zip(fa["probabilities"], fb["probabilities"]) for x, y in zip(ra, rb)),
            default=0.0,
        )
        fc = FileComparison(name, fa["accuracy"], fb["accuracy"], diff)
        labels = fa["labels"]
        for i, (pa, pb) in enumerate(zip(fa["top1"], fb["top1"])):
            if pa != pb:
                fc.mismatches.append({"image": images[i], "a": labels[pa], "b": labels[pb],
                                      "p_a": fa["probabilities"][i][pa], "p_b": fb["probabilities"][i][pb]})
        if len(fa["top1"]) != len(fb["top1"]):
            cmp.problems.append(f"{name}: {len(fa['top1'])} vs {len(fb['top1'])} predictions")
        cmp.files.append(fc)
    return cmp


def format_comparison(cmp: Comparison) -> str:
    """A plain-text table of the comparison, then every problem and mismatch."""
    lines = [f"{'file':<44} {'acc ' + cmp.machine_a:>14} {'acc ' + cmp.machine_b:>14} {'top-1':>9} {'max |dp|':>10}"]
    for f in cmp.files:
        same = "same" if f.ok else f"{len(f.mismatches)} DIFF"
        lines.append(f"{f.file:<44} {f.accuracy_a:>14.3f} {f.accuracy_b:>14.3f} {same:>9} {f.max_prob_diff:>10.2e}")
    lines.append(f"decoded input pixels identical: {'yes' if cmp.pixels_identical else 'NO'}")
    for problem in cmp.problems:
        lines.append(f"problem: {problem}")
    for f in cmp.files:
        for m in f.mismatches:
            lines.append(f"mismatch: {f.file} {m['image']}: {cmp.machine_a} says {m['a']} ({m['p_a']:.4f}), "
                         f"{cmp.machine_b} says {m['b']} ({m['p_b']:.4f})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI
def _summary(result: dict[str, Any]) -> str:
    m = result["machine"]
    pkgs = " ".join(f"{k}={v}" for k, v in m["packages"].items())
    lines = [f"{m['machine']} Python {m['python']} ({m['platform']}); {pkgs}"]
    if m.get("qemu_cpu"):
        lines[0] += f"; QEMU_CPU={m['qemu_cpu']}"
    for name, f in result["files"].items():
        lines.append(f"  {name:<44} {f['backend']:<12} acc {f['accuracy']:.3f}  load {f['load_s']:.2f} s  "
                     f"{f['ms_per_image']:.2f} ms/img")
    lines.append(f"  {len(result['data']['images'])} images, {result['total_s']:.1f} s, tensorflow not imported")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``run`` or ``compare``; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="classify the seeded sample with every shipped model file, write JSON")
    run.add_argument("--data", default=os.environ.get("CIFAR10_DIR"),
                     help="CIFAR-10 image-folder tree with test/<class>/ (default: $CIFAR10_DIR)")
    run.add_argument("--out", required=True, help="JSON file to write")
    run.add_argument("--per-class", type=int, default=20, help="images per class (default 20)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--repo", default=str(REPO), help="repository holding models/ (default: this one)")
    run.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated models/<name>/export")
    run.add_argument("--quiet", action="store_true", help="print nothing on success")
    comp = sub.add_parser("compare", help="compare two JSON files written by run (e.g. x86_64 and arm64)")
    comp.add_argument("a")
    comp.add_argument("b")
    comp.add_argument("--json", help="also write the comparison here as JSON")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            if not args.data:
                parser.error("give --data or set CIFAR10_DIR to the CIFAR-10 image-folder tree")
            models = tuple(m for m in args.models.split(",") if m)
            result = run_smoke(args.data, args.per_class, args.seed, Path(args.repo), models)
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(json.dumps(result))
            tmp.replace(out)
            if not args.quiet:
                print(_summary(result))
            return 0
        cmp = compare_results(load_result(args.a), load_result(args.b))
        print(format_comparison(cmp))
        if args.json:
            Path(args.json).write_text(json.dumps({
                "ok": cmp.ok, "machines": [cmp.machine_a, cmp.machine_b], "problems": cmp.problems,
                "pixels_identical": cmp.pixels_identical,
                "files": [{"file": f.file, "accuracy": [f.accuracy_a, f.accuracy_b], "max_prob_diff": f.max_prob_diff,
                           "mismatches": f.mismatches} for f in cmp.files],
            }, indent=1))
        if not cmp.ok:
            print(f"arm64_smoke: FAILED: {cmp.machine_a} and {cmp.machine_b} disagree (see above)", file=sys.stderr)
            return 1
        print(f"arm64_smoke: OK: top-1 predictions identical on {cmp.machine_a} and {cmp.machine_b}")
        return 0
    except Exception as exc:  # a CLI: one clear line, non-zero exit
        print(f"arm64_smoke: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
