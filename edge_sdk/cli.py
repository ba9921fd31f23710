"""The ``cifar-edge`` command: one entry point, one subcommand per job.

Each subcommand lives in the package that does its job and exposes
``register(subparsers)``; registration only builds argparse parsers, so
``cifar-edge --help`` works on a bare SDK install. Heavy imports happen when a
subcommand runs, and a missing optional dependency becomes a message naming
the pip extra to install (exit 2).

Every error is one line on stderr with exit status 2, including a bad option
value (numeric options are range-checked by :mod:`edge_sdk.cli_types`). Text
output escapes untrusted strings (labels, file names) for the terminal
(:func:`edge_sdk.terminal.safe_text`); ``--json`` output is exact and strict
(no ``NaN``). SIGTERM interrupts a command like Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._extras import silenced_stderr_fd
from .errors import EdgeSDKError, OutputError
from .terminal import safe_text, safe_tree, strict_json

# (subcommand, module providing register(subparsers)); listed in --help order.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("data", "train.cli_data"),
    ("train", "train.cli_train"),
    ("evaluate", "train.cli_train"),
    ("compare", "train.cli_train"),
    ("convert", "convert.cli"),
    ("parity", "convert.cli"),
    ("models", "edge_sdk.cli_models"),
    ("predict", "edge_sdk.cli_predict"),
    ("benchmark", "edge_sdk.cli_predict"),
    ("camera", "camera_demo.cli"),
    ("gui", "camera_demo.cli"),
    ("serve", "camera_demo.web.cli"),
)

EXIT_USAGE = 2

#: The ``Exit status`` paragraph of each subcommand's --help (commands whose description already
#: states it keep theirs); every command: 2 for bad input or an error, 130 when interrupted.
EXIT_STATUS_HELP: dict[str, str] = {
    "convert": "Exit status: 0 every file passed its checks, 1 a file missed a bar (files and manifest are still "
               "written; the FAIL lines name it), 2 bad input or an error, 130 interrupted.",
    "parity": "Exit status: 0 every file passed its checks, 1 a file missed a bar, 2 bad input or an error, "
              "130 interrupted.",
    "predict": "Exit status: 0 every image classified, 2 bad input, or an image (or empty folder) that could not be "
               "classified (the others are still reported), 130 interrupted.",
}
DEFAULT_EXIT_STATUS_HELP = "Exit status: 0 done, 2 bad input or an error (one line on stderr), 130 interrupted."


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--json``: print the result as one JSON object on stdout."""
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")


def emit(result: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str], *,
         trusted_text: bool = False) -> None:
    """Print ``result`` as strict JSON or as the human-readable text ``render`` makes of it.

    For text, every string in ``result`` is first made terminal-safe (:func:`safe_text`), so a label
    or file name cannot inject escape sequences or lines; ``trusted_text`` skips that for results
    made only of the tool's own multi-line text (a Markdown table).
    """
    if as_json:
        print(strict_json(result, indent=None, sort_keys=False))
    else:
        print(render(result if trusted_text else safe_tree(result)))


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (``PROG: error: ...``), exit 2."""

    def error(self, message: str) -> Any:  # argparse's signature: never returns
        # "argument --top-k: must be >= 1, got 0" reads better as "--top-k must be >= 1, got 0"
        message = re.sub(r"^argument (-[-\w/]+): (must .*)$", r"\1 \2", message, flags=re.DOTALL)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {safe_text(message)}\n")


class _SafeFormatter(logging.Formatter):
    """Log lines stay one terminal-safe line (a file name in a warning cannot break them)."""

    def format(self, record: logging.LogRecord) -> str:
        return safe_text(super().format(record))


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


def quiet_runtime(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    """Hide what runtimes write straight to file descriptor 2 (LiteRT's "INFO: Created TensorFlow Lite
    XNNPACK delegate" line on every load) unless ``-v``: a command may change process state, the library
    does not. Errors still arrive as exceptions."""
    return contextlib.nullcontext() if getattr(args, "verbose", False) else silenced_stderr_fd()


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = OneLineParser(
        prog="cifar-edge",
        description="Train, convert, verify and run CIFAR-10 image classifiers on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"cifar-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for module in dict.fromkeys(module for _name, module in SUBCOMMANDS):
        importlib.import_module(module).register(sub)
    for name, subparser in sub.choices.items():
        _add_exit_status(subparser, EXIT_STATUS_HELP.get(name, DEFAULT_EXIT_STATUS_HELP))
    return parser


def _add_exit_status(parser: argparse.ArgumentParser, text: str) -> None:
    """Give ``parser`` and its own subcommands (``data stats``) ``text`` as epilog, unless they state it."""
    if "Exit status" not in (parser.description or "") and not parser.epilog:
        parser.epilog = text
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_exit_status(child, text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    The command owns its process, so only here (never at import) does it quiet TensorFlow's C++ log
    (``TF_CPP_MIN_LOG_LEVEL=2`` unless set) before any subcommand imports TensorFlow.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed on one line
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE if exc.code else 0
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cifar-edge: %(levelname)s: %(message)s") if args.verbose
                         else _SafeFormatter("cifar-edge: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[handler])
    # Library warnings (Pillow's "corrupt EXIF data", deprecations) and Pillow's own log lines (its
    # "ERROR: More samples per pixel..." for a hostile TIFF) are for developers: shown with -v only,
    # so an error stays one line on stderr.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.DEBUG if args.verbose else logging.ERROR)
    logging.getLogger("PIL").setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    with _sigterm_interrupts():
        return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except EdgeSDKError as exc:
        if args.verbose:
            raise
        _error(args.command, str(exc))
        return EXIT_USAGE
    except OSError as exc:  # unwritable output folder, disk full, ...
        if args.verbose:
            raise
        # a failed rename (os.replace of a finished temporary file) names its target second
        path = exc.filename2 or exc.filename
        where = f": {path}" if path else ""
        _error(args.command, f"{exc.strerror or exc}{where}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"cifar-edge {args.command}: interrupted", file=sys.stderr)
        return 130


def _error(command: str, message: str) -> None:
    """The one error line: ``cifar-edge COMMAND: error: MESSAGE`` (terminal-safe) on stderr."""
    print(f"cifar-edge {command}: error: {safe_text(message)}", file=sys.stderr)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C: outputs in progress are removed, the command says it was interrupted."""


def _raise_terminated(signum: int, _frame: object) -> None:
    raise _Terminated


class _sigterm_interrupts:  # noqa: N801 - used as a context manager
    """While a command runs in the main thread, SIGTERM raises ``KeyboardInterrupt`` (then restored)."""

    def __enter__(self) -> None:
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:
            self._previous = signal.signal(signal.SIGTERM, _raise_terminated)

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
