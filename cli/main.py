"""The ``cifar-edge`` command: one entry point, one subcommand per job.

Each subcommand lives in the package that does its job and exposes
``register(subparsers)``; registration only builds argparse parsers, so
``cifar-edge --help`` works on a bare SDK install. Heavy imports happen when a
subcommand runs, and a missing optional dependency becomes a message naming
the pip extra to install (exit 2).

Every error is one line on stderr with exit status 2, including a bad option
value (numeric options are range-checked by :mod:`cifar_edge.cli.argtypes`). Text
output escapes untrusted strings (labels, file names) for the terminal
(:func:`cifar_edge.cli.terminal.safe_text`); ``--json`` output is exact and strict
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
from typing import Any, NamedTuple

from edge_sdk import __version__
from edge_sdk.errors import EdgeSDKError

from .atomic import check_output_folder  # noqa: F401 - the commands' check, imported from here
from .extras import silenced_stderr_fd
from .terminal import safe_text, safe_tree, strict_json


class Subcommand(NamedTuple):
    """One row of the command table: the name, the module whose ``register(subparsers)`` adds it, the
    one-line summary ``cifar-edge --help`` shows (the module registers it with this same text)."""

    name: str
    module: str
    summary: str


#: Every subcommand, in --help order. Only the chosen command's module is imported (``cifar-edge predict``
#: never imports the training or conversion tools); the others appear in --help from this table alone.
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("data", "cifar_edge.train.cli_data", "inspect the data set (statistics, image grid)"),
    Subcommand("train", "cifar_edge.train.cli_train", "train a model into a run folder (checkpoints, history, report)"),
    Subcommand("evaluate", "cifar_edge.train.cli_train",
               "accuracy, loss, per-class accuracy and confusion matrix of a model"),
    Subcommand("compare", "cifar_edge.train.cli_train",
               "train several models / epoch budgets on one split and tabulate them"),
    Subcommand("convert", "cifar_edge.convert.cli", "export a .keras model to TFLite and ONNX (float32 and int8), validated"),
    Subcommand("parity", "cifar_edge.convert.cli", "compare every export in a folder with the Keras model"),
    Subcommand("models", "cifar_edge.cli.models",
               "list the bundled models (names for --model) with file size, accuracy and MACs"),
    Subcommand("predict", "cifar_edge.cli.predict", "classify image files with a .tflite or .onnx model"),
    Subcommand("benchmark", "cifar_edge.cli.benchmark", "load time, latency percentiles, throughput and peak RSS of a model"),
    Subcommand("camera", "cifar_edge.camera_demo.cli",
               "live demo: classify a webcam, stream, video, image or folder, with an annotated window or video"),
    Subcommand("gui", "cifar_edge.camera_demo.cli", "a window to open an image, classify it and see the top-3 as bars"),
    Subcommand("serve", "cifar_edge.camera_demo.web.cli",
               "web page with the live annotated stream and an upload form, and an HTTP API (headless boards)"),
)
_BY_NAME = {command.name: command for command in SUBCOMMANDS}


def summary(name: str) -> str:
    """The one-line help of subcommand ``name`` from :data:`SUBCOMMANDS` (``KeyError`` if unknown)."""
    return _BY_NAME[name].summary

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


def quiet_runtime(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    """Hide what runtimes write straight to file descriptor 2 (LiteRT's "INFO: Created TensorFlow Lite
    XNNPACK delegate" line on every load) unless ``-v``: a command may change process state, the library
    does not. Errors still arrive as exceptions."""
    return contextlib.nullcontext() if getattr(args, "verbose", False) else silenced_stderr_fd()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser. With ``argv`` (the arguments about to be parsed) only the chosen
    subcommand's module is imported and registers its options; every other command is listed from
    :data:`SUBCOMMANDS`. Without ``argv`` every module registers (to inspect every parser).
    Raises ``ImportError`` only if a listed module is missing from the installation."""
    parser = OneLineParser(
        prog="cifar-edge",
        description="Train, convert, verify and run CIFAR-10 image classifiers on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"cifar-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    if argv is None:
        modules = dict.fromkeys(command.module for command in SUBCOMMANDS)
    else:
        chosen = next((arg for arg in argv if not arg.startswith("-")), None)
        modules = [_BY_NAME[chosen].module] if chosen in _BY_NAME else []
    for command in SUBCOMMANDS:  # a module's commands are adjacent in the table, so --help keeps its order
        if command.name in sub.choices:
            continue
        if command.module in modules:
            importlib.import_module(command.module).register(sub)
        else:
            sub.add_parser(command.name, help=command.summary)
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
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
    except BrokenPipeError:  # the reader of stdout left (`cifar-edge models | head -1`): end quietly
        return _stdout_closed()
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


#: the exit status of a command whose stdout reader left: what a shell reports for a program ended by SIGPIPE
EXIT_BROKEN_PIPE = 128 + getattr(signal, "SIGPIPE", 13)


def _stdout_closed() -> int:
    """Point stdout at the null device (so the interpreter's last flush cannot fail again and print a
    traceback) and return :data:`EXIT_BROKEN_PIPE`, with nothing on stderr."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (replaced by a test harness)
        pass
    return EXIT_BROKEN_PIPE


def run() -> None:
    """Console-script entry point. Output that stops being read (``| head``) ends the command quietly
    with :data:`EXIT_BROKEN_PIPE`, as a shell reports for ``ls | head`` under ``pipefail``."""
    status = main()
    try:
        sys.stdout.flush()  # what is still buffered goes now, while a closed pipe can still be caught
    except BrokenPipeError:
        status = _stdout_closed()
    sys.exit(status)


if __name__ == "__main__":
    run()
