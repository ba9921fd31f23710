"""``cifar-edge models``: the bundled models, their files, sizes and what their metadata says (no runtime needed)."""

from __future__ import annotations

import argparse
from typing import Any

from .cli import add_json_flag, emit, summary

MISSING = "-"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` subcommand."""
    p = subparsers.add_parser(
        "models", help=summary("models"),
        description="List each bundled model with its files: size, and the accuracy, MACs, model name and version "
                    "read from the metadata embedded in each file ('-' where the metadata does not say). '*' marks "
                    "the file a plain --model NAME opens here: the .tflite where a TFLite runtime is installed, "
                    "else the .onnx.")
    add_json_flag(p)
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    from .bundled import describe_bundled, models_dir

    emit({"folder": str(models_dir()), "models": describe_bundled()}, args.json, _render)
    return 0


def _render(out: dict[str, Any]) -> str:
    header = ("", "name", "file", "size", "accuracy", "MACs", "model", "version", "extra")
    rows = [header]
    notes = []
    for model in out["models"]:
        notes.append(f"{model['name']}: {model['description']}")
        if not model["files"]:
            rows.append(("", model["name"], "(missing)", *[MISSING] * 6))
        if model["files"] and model["opens"] is None:
            extras = " or ".join(f"'cifar-edge[{f['extra']}]'" for f in model["files"])
            notes.append(f"  no runtime for '{model['name']}' is installed: pip install {extras}")
        for f in model["files"]:
            rows.append((
                "*" if f["file"] == model["opens"] else "",
                model["name"],
                f["file"],
                f"{f['bytes'] / 1024:,.0f} KiB",
                MISSING if f["accuracy"] is None else _accuracy(f["accuracy"]),
                MISSING if f["macs"] is None else f"{f['macs'] / 1e6:,.2f} M",
                f["model_name"] or MISSING,
                f["model_version"] or MISSING,
                f"{f['extra']}" + ("" if f["runtime_installed"] else " (not installed)"),
            ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    right = {3, 4, 5}  # numbers align right
    lines = ["  ".join(str(cell).rjust(w) if i in right else str(cell).ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    return "\n".join([f"bundled models in {out['folder']} ('*': what --model NAME opens here)", *lines, "", *notes])


def _accuracy(value: float) -> str:
    """A fraction as a percentage; a value above 1 is taken as already in percent."""
    return f"{100 * value:.2f}%" if value <= 1 else f"{value:.2f}%"
