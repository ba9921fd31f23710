"""The one export-format table (cifar_edge.cli.formats) and everything it drives."""

from __future__ import annotations

import argparse
import inspect
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk import Classifier
from edge_sdk.errors import EdgeSDKError
from cifar_edge.cli.formats import (
    CALIBRATION_OPTIONS,
    EXPORTER_OPTIONS,
    FILE_NAMES,
    FORMATS,
    NAMES,
    exported_files,
    format_of_file,
    get_format,
    parse_formats,
)
from edge_sdk.runtimes import RUNTIMES, available_backends

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO / "models" / "resnet8" / "export"


def test_the_table_imports_without_tensorflow():
    code = ("import sys\nsys.modules['tensorflow'] = None  # importing it now fails\n"
            "from cifar_edge.cli.formats import FILE_NAMES\nprint(','.join(FILE_NAMES))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ",".join(FILE_NAMES)


def test_the_table_is_consistent():
    assert len(set(FILE_NAMES)) == len(FILE_NAMES) == len(NAMES)
    for fmt in FORMATS.values():
        assert fmt.runtime in available_backends(), fmt
        served = [rt for rt in RUNTIMES if fmt.runtime in rt.BACKENDS]
        assert fmt.suffix in served[0].SUFFIXES, fmt  # its runtime opens its file
        assert set(CALIBRATION_OPTIONS) <= set(fmt.options) if fmt.quantized else not set(CALIBRATION_OPTIONS) & set(fmt.options)
        assert format_of_file(f"/any/where/{fmt.file_name}") is fmt and get_format(fmt.name) is fmt
    assert format_of_file("best.keras") is None


def test_parse_formats_and_unknown_names():
    assert [f.name for f in parse_formats(" onnx-int8, tflite ,onnx-int8")] == ["onnx-int8", "tflite"]
    with pytest.raises(EdgeSDKError, match="unknown format.s. coreml; choose from: tflite, tflite-int8, onnx, onnx-int8"):
        parse_formats("tflite,coreml")
    with pytest.raises(EdgeSDKError, match="none given"):
        parse_formats(" , ")
    with pytest.raises(EdgeSDKError, match="unknown format 'x'"):
        get_format("x")


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
def test_committed_exports_are_what_the_table_says(fmt):
    assert [f for f, _ in exported_files(EXPORT)] == list(FORMATS.values())
    with Classifier(EXPORT / fmt.file_name) as clf:
        assert clf.backend_name == fmt.runtime and clf.metadata.format == fmt.name
        assert (clf._backend.input_quantization is not None) == (fmt.quantized and fmt.suffix == ".tflite")
        calibration = clf.metadata.extra.get("calibration")
        assert (calibration is not None) == fmt.quantized


def test_convert_cli_takes_its_choices_from_the_table_and_warns_of_unused_options(caplog):
    from cifar_edge.convert.cli import format_options, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["convert", "m.keras", "--out", "o"])
    assert args.formats == ",".join(NAMES)
    args = parser.parse_args(["convert", "m.keras", "--out", "o", "--calib-method", "entropy", "--seed", "3"])
    with caplog.at_level(logging.WARNING):
        assert format_options(args, parse_formats("tflite-int8")) == {"calib_method": "entropy", "seed": 3}
    assert "--calib-method changes only onnx-int8; it has no effect on --formats tflite-int8" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert format_options(args, parse_formats("onnx-int8")) == {"calib_method": "entropy", "seed": 3}
    assert caplog.text == ""


def test_every_exporter_exists_and_takes_its_formats_options():
    pytest.importorskip("tensorflow")
    from cifar_edge.convert import export

    for fmt in FORMATS.values():
        params = inspect.signature(getattr(export, fmt.exporter)).parameters
        assert list(params)[:2] == ["model", "calibration"] and "cache" in params, fmt
        assert {o for o in fmt.options if o in EXPORTER_OPTIONS} <= set(params), fmt
