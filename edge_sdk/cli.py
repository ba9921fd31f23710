"""The ``cifar-edge`` command: one entry point, one subcommand per job.

Each subcommand lives in the package that does its job and exposes
``register(subparsers)``; registration only builds argparse parsers, so
``cifar-edge --help`` works on a bare SDK install. Heavy imports happen when a
subcommand runs, and a missing optional dependency becomes a message naming
the pip extra to install (exit 2).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any subcommand imports TensorFlow
from .errors import EdgeSDKError, OutputError

# (subcommand, module providing register(subparsers)); listed in --help order.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("data", "train.cli_data"),
    ("train", "train.cli_train"),
    ("evaluate", "train.cli_train"),
    ("compare", "train.cli_train"),
    ("convert", "convert.cli"),
    ("parity", "convert.cli"),
    ("predict", "edge_sdk.cli_predict"),
    ("benchmark", "edge_sdk.cli_predict"),
    ("camera", "camera_demo.cli"),
    ("gui", "camera_demo.cli"),
)

EXIT_USAGE = 2


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--json``: print the result as one JSON object on stdout."""
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")


def emit(result: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> None:
    """Print ``result`` as JSON or as the human-readable text ``render`` makes of it."""
    if as_json:
        print(json.dumps(result, indent=None, sort_keys=False))
    else:
        print(render(result))


def check_output_folder(folder: str | os.PathLike[str], what: str) -> None:
    """Raise :class:`OutputError` unless ``folder`` is, or can be created as, a writable folder.

    ``what`` names the output in the message (``"--out runs/x"``). Creates
    nothing: commands call it before long work, so an unwritable output fails
    at once instead of after the work it was meant to keep.
    """
    path = Path(folder).absolute()
    for ancestor in (path, *path.parents):
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            raise OutputError(f"cannot write {what}: not a directory: {ancestor}")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {what}: no write permission in {ancestor}")
        return


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="cifar-edge",
        description="Train, convert, verify and run CIFAR-10 image classifiers on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"cifar-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in dict.fromkeys(module for _name, module in SUBCOMMANDS):
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="cifar-edge: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    # Library warnings (Pillow's "corrupt EXIF data", deprecations) are for developers: shown with -v only,
    # so an error stays one line on stderr.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.DEBUG if args.verbose else logging.ERROR)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except EdgeSDKError as exc:
        if args.verbose:
            raise
        print(f"cifar-edge {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # unwritable output folder, disk full, ...
        if args.verbose:
            raise
        # a failed rename (os.replace of a finished temporary file) names its target second
        path = exc.filename2 or exc.filename
        where = f": {path}" if path else ""
        print(f"cifar-edge {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"cifar-edge {args.command}: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
