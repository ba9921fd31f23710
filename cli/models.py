"""``cifar-edge models``: the bundled models, their files, sizes and what their metadata says (no runtime needed)."""

from __future__ import annotations

import argparse
from typing import Any

from edge_sdk._extras import install_line

from .main import add_json_flag, emit, summary

MISSING = "-"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` subcommand."""
    p = subparsers.add_parser(
        "models", help=summary("models"),
        description="List each bundled model with its files: size, and what the metadata embedded in each file says "
                    "('-' where it does not say): the file's own top-1 accuracy as measured by 'cifar-edge convert' "
                    "('file acc'), its Keras source model's on the same test images ('Keras acc'), MACs per call, "
                    "the network's name and the version. '*' marks the file a plain --model NAME opens here: the "
                    ".tflite where a TFLite runtime is installed, else the .onnx.")
    add_json_flag(p)
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    from edge_sdk.bundled import describe_bundled, models_dir

    emit({"folder": str(models_dir()), "models": describe_bundled()}, args.json, _render)
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
