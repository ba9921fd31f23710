"""``cifar-edge convert`` and ``cifar-edge parity``: export a Keras model and check the exports."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from edge_sdk.resize import RESIZE_MODES
from edge_sdk.spec import UNKNOWN_SCORES
from cifar_edge.cli.extras import require
from cifar_edge.cli.main import add_json_flag, check_output_folder, emit, summary
from cifar_edge.cli.argtypes import float_range, non_negative_int, positive_int, probability
from cifar_edge.cli.formats import CALIBRATION_OPTIONS, EXPORTER_OPTIONS, FORMATS, NAMES, ExportFormat, parse_formats
from edge_sdk.errors import EdgeSDKError
from cifar_edge.cli.progress import wanted
from cifar_edge.train.model_file import check_keras_file
from cifar_edge.train.cli_options import add_data_options, check_data_early


def _require_conversion_stack() -> None:
    for module in ("tensorflow", "tf2onnx", "onnx", "onnxruntime", "ai_edge_litert", "mediapipe"):
        require(module, "train", "model conversion", quiet=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` and ``parity`` subcommands."""
    c = subparsers.add_parser("convert", help=summary("convert"))
    c.add_argument("model", metavar="MODEL.keras", help="trained model (spec.json beside it gives its preprocessing)")
    c.add_argument("--out", required=True, metavar="DIR", help="folder for the exported files and manifest.json")
    c.add_argument("--formats", default=",".join(NAMES), help=f"comma-separated subset of {', '.join(NAMES)} (default all)")
    # options a format does not use default to None here, so that giving one no chosen format uses is an error
    c.add_argument("--calib-size", type=positive_int, help="calibration images from the training split (default 500)")
    c.add_argument("--calib-method", choices=("minmax", "percentile", "entropy"),
                   help="ONNX calibration method (default minmax)")
    c.add_argument("--onnx-activations", choices=("uint8", "int8"),
                   help="ONNX int8 activation type (default uint8: measured faster at equal accuracy)")
    c.add_argument("--onnx-reduce-range", action=argparse.BooleanOptionalAction,
                   help="7-bit ONNX int8 weights (default on: full 8-bit weights saturate in ONNX Runtime's int8 "
                        "kernels on x86 CPUs without VNNI and lose accuracy there)")
    c.add_argument("--tflite-input-type", choices=("int8", "uint8"),
                   help="int8 TFLite input and output type (default int8; uint8 is what MediaPipe Tasks' "
                        "ImageClassifier takes)")
    c.add_argument("--limit", type=positive_int, help="validate on N test images (default: the whole test split)")
    c.add_argument("--seed", type=non_negative_int, help="calibration sampling seed (default 0)")
    c.add_argument("--tta", choices=("none", "flip"), default="none",
                   help="test-time augmentation inside every exported file: flip = classify the image and its "
                        "mirror in one call and average (about 2x the inference time; default none)")
    c.add_argument("--model-version", help="version string stored in the metadata (default: date + source hash)")
    c.add_argument("--resize", choices=RESIZE_MODES,
                   help="how the SDK frames a picture for this model, stored in every file (default: spec.json's)")
    c.add_argument("--unknown-keep", type=float_range(0.0, 1.0, lo_open=True), default=0.95, metavar="SHARE",
                   help="calibrate the 'unknown' threshold stored in every file so that this share of known "
                        "pictures keeps its label (default 0.95); the pictures are --unknown-calibration's, else "
                        "the validation images")
    c.add_argument("--unknown-calibration", metavar="DIR",
                   help="a labelled folder of real photos (DIR/test/<class>/, only some classes needed) to "
                        "calibrate the unknown threshold on, e.g. photos like the camera will see")
    c.add_argument("--unknown-score", choices=UNKNOWN_SCORES, default="certainty",
                   help="the score the unknown threshold applies to: certainty = one minus the normalized entropy of "
                        "the class probabilities (default; measured better than the top-1 probability on real "
                        "photos), max-probability = the top-1 probability")
    c.add_argument("--no-unknown", action="store_true", help="store no unknown threshold: every picture gets a label")
    _add_threshold_options(c)
    add_data_options(c)
    add_json_flag(c)
    c.set_defaults(func=run_convert)

    p = subparsers.add_parser("parity", help=summary("parity"))
    p.add_argument("model", metavar="MODEL.keras")
    p.add_argument("directory", metavar="DIR", help="folder written by cifar-edge convert")
    p.add_argument("--limit", type=positive_int, help="compare on N test images (default: the whole test split)")
    p.add_argument("--report", metavar="DIR",
                   help="write a contact sheet PNG of each file's flipped images and parity.json to DIR")
    _add_threshold_options(p)
    add_data_options(p)
    add_json_flag(p)
    p.set_defaults(func=run_parity)


def _add_threshold_options(parser: argparse.ArgumentParser) -> None:
    """The pass bars of ``convert`` and ``parity`` (a file that misses one makes the command exit 1)."""
    parser.add_argument("--min-agreement", type=probability, help="top-1 agreement bar for every file (default 0.999 float, 0.99 int8)")
    parser.add_argument("--min-int8-agreement", type=probability, help="top-1 agreement bar for int8 files only (default 0.99)")
    parser.add_argument("--max-prob-diff", type=float_range(0.0, 1.0), default=1e-4, help="float exports: max |probability difference| (default 1e-4)")
    parser.add_argument("--max-accuracy-drop", type=probability, default=0.005, help="int8 exports: max accuracy loss (default 0.005)")


def _thresholds(args: argparse.Namespace):
    from .parity import Thresholds

    base = Thresholds()
    return Thresholds(
        float_min_agreement=args.min_agreement if args.min_agreement is not None else base.float_min_agreement,
        float_max_abs_diff=args.max_prob_diff,
        int8_min_agreement=next(
            v for v in (args.min_int8_agreement, args.min_agreement, base.int8_min_agreement) if v is not None
        ),
        int8_max_accuracy_drop=args.max_accuracy_drop,
    )


def format_options(args: argparse.Namespace, formats: tuple[ExportFormat, ...]) -> dict[str, Any]:
    """The per-format options given on the command line, as ``ConvertConfig`` fields.

    Logs a warning for an option that none of ``formats`` uses (the format table's ``options``),
    e.g. ``--calib-method`` with ``--formats tflite-int8``: it changes nothing.
    """
    given = {o: getattr(args, o) for o in (*CALIBRATION_OPTIONS, *EXPORTER_OPTIONS) if getattr(args, o) is not None}
    for option in given:
        if not any(option in f.options for f in formats):
            users = ", ".join(f.name for f in FORMATS.values() if option in f.options)
            logging.getLogger(__name__).warning(
                "--%s changes only %s; it has no effect on --formats %s",
                option.replace("_", "-"), users, ",".join(f.name for f in formats))
    return given


def run_convert(args: argparse.Namespace) -> int:
    if args.no_unknown and args.unknown_calibration:
        raise EdgeSDKError("--no-unknown stores no threshold: give it or --unknown-calibration, not both")
    formats = parse_formats(args.formats)
    options = format_options(args, formats)
    check_keras_file(args.model)  # the cheap checks first: TensorFlow takes seconds to import
    check_output_folder(args.out, f"--out {args.out}")
    check_data_early(args)
    _require_conversion_stack()
    from .converter import ConvertConfig, convert

    # TensorFlow and Keras print export chatter on stdout; keep stdout for the result.
    bars = wanted(args.json)  # asked before fd 2 is redirected
    with contextlib.redirect_stdout(sys.stderr), _without_native_log_lines() as terminal:
        manifest = convert(ConvertConfig(
            model=args.model, out=args.out, formats=tuple(f.name for f in formats), data=args.data,
            cache_dir=args.cache_dir, limit=args.limit, model_version=args.model_version, tta=args.tta,
            thresholds=_thresholds(args), progress=terminal if bars else None, resize=args.resize,
            unknown_keep=None if args.no_unknown else args.unknown_keep, unknown_calibration=args.unknown_calibration,
            unknown_score=args.unknown_score,
            **options,
        ))
    emit(manifest, args.json, lambda m: _render_rows(m["files"], f"exported {m['source']['path']} to {args.out}"))
    return 0 if all(not f["failures"] for f in manifest["files"]) else 1  # as parity: a failed check is exit 1


# Lines the TFLite converter and TensorFlow's C++ logging write straight to file descriptor 2,
# whatever TF_CPP_MIN_LOG_LEVEL says ("fully_quantize: 0, inference_type: 6, ...").
NATIVE_LOG_LINE = re.compile(
    r"^(fully_quantize: |WARNING: All log messages before absl::InitializeLog|INFO: Created TensorFlow Lite|[IW]\d{4} \d\d:)"
)


@contextlib.contextmanager
def _without_native_log_lines() -> Iterator[IO[str]]:
    """Send file descriptor 2 to a temporary file while converting, then pass on every line but the
    toolkits' informational log lines. (A CLI may change process state; the library does not.)
    Yields a stream that still reaches the original stderr at once (for progress bars)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as captured, os.fdopen(os.dup(saved), "w", buffering=1) as terminal:
            os.dup2(captured.fileno(), 2)
            try:
                yield terminal
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                captured.seek(0)
                for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                    if not NATIVE_LOG_LINE.match(line):
                        sys.stderr.write(line)
                sys.stderr.flush()
    finally:
        os.close(saved)


def run_parity(args: argparse.Namespace) -> int:
    check_keras_file(args.model)
    check_data_early(args)
    _require_conversion_stack()
    from .converter import parity

    bars = wanted(args.json)  # asked before fd 2 is redirected
    if args.report is not None:
        check_output_folder(args.report, f"--report {args.report}")
    with _without_native_log_lines() as terminal:
        result = parity(args.model, args.directory, data=args.data, cache_dir=args.cache_dir, limit=args.limit,
                        thresholds=_thresholds(args), progress=terminal if bars else None, report=args.report)
    emit(result, args.json, _render_parity)
    return 0 if result["passed"] else 1


def _render_parity(r: dict[str, Any]) -> str:
    """The text report of :func:`parity`: the table, then what explains each file's differences."""
    data = r["data"]
    what = (f"{r['images']:,} test images" if data["kind"] == "test split" else
            f"{r['images']:,} photos ({data['labelled']} of the model's classes, {data['unlabelled']} of none)")
    lines = [_render_rows(r["files"], f"parity of {r['directory']} vs {r['model']} on {what}")]
    for row in r["files"]:
        drift = row["confidence_drift"]
        text = f"{row['file']}: {row['flip_count']} top-1 flip(s)"
        if row["flip_keras_margin"]:
            text += (f", Keras margin median {row['flip_keras_margin']['median']:.3f} max "
                     f"{row['flip_keras_margin']['max']:.3f} (all images: median {row['keras_margin_median']:.3f})")
        if drift:
            text += f"; confidence drift mean {drift['mean']:.4f} max {drift['max']:.4f}"
        lines.append(text)
        snr = row.get("layer_snr")
        if snr and snr.get("error"):
            lines.append(f"  per-layer SNR: not measured ({snr['error']})")
        if snr and snr.get("costliest"):
            worst = snr["costliest"]
            lines.append(f"  costliest tensor: {worst['op']} {worst['tensor']} (SNR {worst['snr_db']} dB, adds "
                         f"{worst['added_noise']:.1e} of its signal power; lowest SNR {snr['lowest_snr']['snr_db']} dB "
                         f"at {snr['lowest_snr']['tensor']}; vs {snr['reference']}, {snr['images']} images)")
        if "contact_sheet" in row:
            lines.append(f"  flips drawn in {row['contact_sheet']}")
    for pair in r["cross_runtime"]:
        lines.append(f"{pair['files'][0]} vs {pair['files'][1]}: top-1 agreement {pair['top1_agreement']:.4f} "
                     f"({pair['disagreements']} differ)")
    return "\n".join(lines)


def _render_rows(rows: list[dict[str, Any]], title: str) -> str:
    lines = [title, f"{'format':<12} {'file':<22} {'bytes':>10} {'accuracy':>9} {'keras':>7} {'agree':>7} {'mean|dp|':>9} {'max|dp|':>9}  result"]
    for r in rows:
        v = r.get("validation", r)
        size = f"{r['bytes']:,}" if "bytes" in r else "-"
        verdict = "ok" if not r["failures"] else "FAIL: " + "; ".join(r["failures"])
        lines.append(
            f"{r['format']:<12} {r['file']:<22} {size:>10} {v['accuracy']:>9.4f} {v['keras_accuracy']:>7.4f} "
            f"{v['top1_agreement']:>7.4f} {v['mean_abs_prob_diff']:>9.2e} {v['max_abs_prob_diff']:>9.2e}  {verdict}"
        )
    return "\n".join(lines)
