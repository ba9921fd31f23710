"""Command-line options shared by every subcommand that reads a data set."""

from __future__ import annotations

import argparse
import os

from cifar_edge.cli.progress import wanted

from .data.sources import DATA_ENV, DataSource, resolve_source


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--data``, ``--cache-dir`` and ``--no-download``."""
    parser.add_argument(
        "--data",
        metavar="PATH",
        help=f"image-folder tree, cifar-10-batches-py folder or cifar-10-python.tar.gz "
        f"(default: ${DATA_ENV}, then the cache, then a download)",
    )
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="cache for downloads and decoded images (default: $CIFAR_EDGE_CACHE or ~/.cache/cifar-edge)"
    )
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading when no data is found")


def source_from_args(args: argparse.Namespace) -> DataSource:
    """Resolve the data source named by the parsed options."""
    return resolve_source(
        args.data,
        cache_dir=args.cache_dir,
        download=not args.no_download,
        progress=wanted(getattr(args, "json", False)),
    )


def check_data_early(args: argparse.Namespace) -> None:
    """Resolve the data named by ``--data`` or ``$CIFAR10_DIR`` and read its class names, decoding no image.

    Commands call it before importing TensorFlow, so a missing, unsafe or
    classless data set fails in a second and before anything is written.
    Without either (cache or download) it does nothing: a download must not
    start before the command's own checks.
    """
    if args.data or os.environ.get(DATA_ENV):
        source_from_args(args).class_names()
