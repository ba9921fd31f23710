"""Real photos: how a model does on ordinary photographs, and how well it says "unknown" to the rest.

    python -m benchmarks.real_photos MODEL [MODEL ...] [--data DIR] [--resize MODE,...] [--unknown-half 1] [--json]

``--data`` (default ``../shared/datasets/real-photos`` beside the repository) holds photos of the
model's classes in ``test/<class>/`` (some classes only) and photos of other things in
``unknown/``. Each photo goes through :class:`edge_sdk.Classifier` from its file (decode, the SDK's
framing and resize, the model's encoder), once per framing mode. Reported per model and mode:
top-1 accuracy over the photos (micro) and the mean of the per-class accuracies (macro), and the
open-set figures of :func:`cifar_edge.train.open_set.open_set_metrics` (AUROC of the file's unknown
score, known vs unknown; the shares rejected at the model's own threshold; unknown still
labelled at 90% of known kept). ``--unknown-half 1`` measures on the half of ``unknown/`` that
``cifar-edge train --outliers`` leaves out (the shipped models trained on half 0).

Only the SDK is needed (numpy + pillow + a runtime). Raises ``EdgeSDKError`` subclasses for a bad
model or folder (CLI: one line, exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge_sdk.classifier import Classifier
from edge_sdk.errors import EdgeSDKError
from cifar_edge.cli.errors import DatasetError
from edge_sdk.images import image_files
from edge_sdk.resize import RESIZE_MODES

from cifar_edge.train.open_set import open_set_metrics, outlier_photo_files, unknown_folder

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "real-photos"


def known_photos(data: Path, labels: Sequence[str]) -> list[tuple[Path, int]]:
    """``(path, class index)`` of every photo in ``data/test/<class>/`` whose class the model knows.
    Raises :class:`DatasetError` when there is none."""
    test = data / "test"
    if not test.is_dir():
        raise DatasetError(f"{data} has no test/ folder of class folders")
    photos = [(p, labels.index(d.name)) for d in sorted(test.iterdir()) if d.is_dir() and d.name in labels
              for p in image_files(d)]
    if not photos:
        raise DatasetError(f"no photos of the model's classes ({', '.join(labels)}) under {test}")
    return photos


def measure(model: str, data: Path, mode: str | None, unknown_half: int | None) -> dict[str, Any]:
    """The real-photo figures of one model file or bundled name, framed by ``mode`` (None: the file's own)."""
    with Classifier(model, resize=mode) as clf:
        photos = known_photos(data, clf.labels)
        labels = np.array([label for _, label in photos])
        probs = clf.probabilities_batch([path for path, _ in photos])
        predicted = probs.argmax(axis=1)
        per_class = {clf.labels[c]: float((predicted[labels == c] == c).mean()) for c in np.unique(labels)}
        result: dict[str, Any] = {
            "model": model, "file": clf.model_path.name, "resize": clf.spec.resize, "photos": len(photos),
            "accuracy": float((predicted == labels).mean()), "macro_accuracy": float(np.mean(list(per_class.values()))),
            "per_class_accuracy": per_class,
        }
        folder = unknown_folder(data)
        if folder is not None:
            unknown = clf.probabilities_batch(outlier_photo_files(folder, unknown_half))
            result["open_set"] = {**open_set_metrics(probs, unknown, clf.spec.unknown_threshold, clf.spec.unknown_score),
                                  "unknown_half": unknown_half}
    return result


def render(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`measure` rows."""
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = ["| model | resize | photos | top-1 (micro) | top-1 (macro) | unknown score | AUROC | unknown rejected "
             "| known rejected | unknown labelled at 90% known kept |", "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        o = r.get("open_set") or {}
        lines.append(f"| {r['model']} | {r['resize']} | {r['photos']} | {pct(r['accuracy'])} | {pct(r['macro_accuracy'])} "
                     f"| {o.get('score', '-')} | {pct(o.get('auroc'))} | {pct(o.get('unknown_rejected'))} "
                     f"| {pct(o.get('known_rejected'))} "
                     f"| {pct(o.get('unknown_accepted_at_known_90'))} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_photos", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="model files or bundled names")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help=f"real-photo folder (default {DEFAULT_DATA})")
    parser.add_argument("--resize", default="own", help=f"comma-separated framing modes: own (the file's), {', '.join(RESIZE_MODES)}")
    parser.add_argument("--unknown-half", type=int, choices=(0, 1), help="only this half of unknown/ (default all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    modes = [None if m == "own" else m for m in args.resize.split(",")]
    try:
        rows = [measure(model, Path(args.data), mode, args.unknown_half) for model in args.models for mode in modes]
    except EdgeSDKError as exc:
        print(f"benchmarks.real_photos: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
