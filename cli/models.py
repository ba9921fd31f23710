"""``cifar-edge models``: the bundled models, their files, sizes and what their metadata says (no runtime needed)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from edge_sdk.bundled import BUNDLED, bundled_file, bundled_files, models_dir
from edge_sdk.errors import BackendUnavailableError, ModelLoadError, install_line
from edge_sdk.metadata import ModelMetadata, read_metadata
from edge_sdk.runtimes import extra_for, installed_backends

from .main import add_json_flag, emit, quiet_runtime, summary

MISSING = "-"
#: metadata keys read as the file's own accuracy (a fraction in [0, 1], measured by ``cifar-edge convert`` on the
#: file itself), as its source (Keras) model's accuracy on the same images, and as the multiply-accumulates per
#: image; looked up in the metadata's ``extra`` object, then among its top-level keys; the first number found is shown
ACCURACY_KEYS = ("accuracy",)
SOURCE_ACCURACY_KEYS = ("test_accuracy",)
MACS_KEYS = ("macs",)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` subcommand."""
    p = subparsers.add_parser(
        "models", help=summary("models"),
        description="List each bundled model with its files: size, and what the metadata embedded in each file says "
                    "('-' where it does not say): the file's own top-1 accuracy as measured by 'cifar-edge convert' "
                    "('file acc'), its Keras source model's on the same test images ('Keras acc'), MACs per call, "
                    "the network's name and the version. '*' marks the file a plain --model NAME opens here: the "
                    "one measured fastest on this machine among those its installed runtimes can open "
                    "(edge_sdk.fastest; CIFAR_EDGE_MEASURE=0: the .tflite where a TFLite runtime is installed, "
                    "else the .onnx).")
    add_json_flag(p)
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    with quiet_runtime(args):  # the first pick of a bundled file loads both files to time them
        models = describe_bundled()
    emit({"folder": str(models_dir()), "models": models}, args.json, _render)
    return 0


def _render(out: dict[str, Any]) -> str:
    header = ("", "name", "file", "size", "file acc", "Keras acc", "MACs", "network", "version", "extra")
    rows = [header]
    notes = []
    for model in out["models"]:
        notes.append(f"{model['name']}: {model['description']}")
        if not model["files"]:
            rows.append(("", model["name"], "(missing)", *[MISSING] * 7))
        if model["files"] and model["opens"] is None:
            extras = " or ".join(install_line(f["extra"]) for f in model["files"])
            notes.append(f"  no runtime for '{model['name']}' is installed: {extras}")
        for f in model["files"]:
            rows.append((
                "*" if f["file"] == model["opens"] else "",
                model["name"],
                f["file"],
                f"{f['bytes'] / 1024:,.0f} KiB",
                MISSING if f["accuracy"] is None else _accuracy(f["accuracy"]),
                MISSING if f["source_accuracy"] is None else _accuracy(f["source_accuracy"]),
                MISSING if f["macs"] is None else f"{f['macs'] / 1e6:,.2f} M",
                f["model_name"] or MISSING,
                f["model_version"] or MISSING,
                f"{f['extra']}" + ("" if f["runtime_installed"] else " (not installed)"),
            ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    right = {3, 4, 5, 6}  # numbers align right
    lines = ["  ".join(str(cell).rjust(w) if i in right else str(cell).ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    key = ("file acc: the file's own top-1 accuracy on the CIFAR-10 test images it was checked on at conversion; "
           "Keras acc: its source model's on the same images; '-': not recorded in the file's metadata")
    return "\n".join([f"bundled models in {out['folder']} ('*': what --model NAME opens here)", *lines, "", *notes,
                      key])


def _accuracy(value: float) -> str:
    """A fraction as a percentage; a value above 1 is taken as already in percent."""
    return f"{100 * value:.2f}%" if value <= 1 else f"{value:.2f}%"


def describe_bundled() -> list[dict[str, Any]]:
    """One entry per bundled model (:data:`edge_sdk.bundled.BUNDLED`): its name, description, the file a plain
    ``Classifier(name)`` opens here (``None`` when no runtime for it is installed) and, per file present,
    its size and what its embedded metadata says: ``accuracy`` (the file's own, as measured at conversion),
    ``source_accuracy`` (its Keras source model's, on the same ``accuracy_images`` test images) and ``macs``,
    each ``None`` when the metadata lacks it.

    Raises :class:`ModelLoadError` / :class:`MetadataError` for a file that cannot be read or whose metadata is malformed.
    """
    entries = []
    for model in BUNDLED.values():
        files = [_describe_file(path) for path in bundled_files(model.name)]
        try:
            opens: str | None = bundled_file(model.name).name
        except (BackendUnavailableError, ModelLoadError):  # no runtime for it here, or none of its files present
            opens = None
        entries.append({"name": model.name, "description": model.description, "opens": opens, "files": files})
    return entries


def _describe_file(path: Path) -> dict[str, Any]:
    meta = read_metadata(path)
    return {
        "file": path.name,
        "path": str(path),
        "bytes": path.stat().st_size,
        "extra": extra_for(path.suffix),
        "runtime_installed": bool(installed_backends(path.suffix)),
        "model_name": meta.model_name if meta else None,
        "model_version": meta.model_version if meta else None,
        "format": meta.format if meta else None,
        "accuracy": metadata_number(meta, ACCURACY_KEYS),
        "source_accuracy": metadata_number(meta, SOURCE_ACCURACY_KEYS),
        "accuracy_images": metadata_number(meta, ("test_images",)),
        "macs": metadata_number(meta, MACS_KEYS),
    }


def metadata_number(meta: ModelMetadata | None, keys: tuple[str, ...]) -> float | int | None:
    """The first finite number under one of ``keys`` in ``meta.extra``, then among its unknown top-level keys; else None."""
    if meta is None:
        return None
    for where in (meta.extra, meta.unknown):
        for key in keys:
            value = where.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return value
    return None
