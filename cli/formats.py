"""The export formats, in one table: name, file name, runtime, quantized or not, exporter, options.

The converter's dispatch and its CLI choices, parity, the benchmarks, the tests and the ARM64 smoke
script all read this table. It imports only the standard library and :mod:`edge_sdk.errors`, so it
serves a bare SDK install (no TensorFlow).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edge_sdk.errors import EdgeSDKError

#: ``cifar-edge convert`` options (``ConvertConfig`` fields) that apply to every format
COMMON_OPTIONS = ("tta", "model_version")
#: options of the calibration every quantized format runs
CALIBRATION_OPTIONS = ("calib_size", "seed")
#: options of ONNX Runtime's static quantization only
ONNX_QUANTIZATION_OPTIONS = ("calib_method", "onnx_activations", "onnx_reduce_range")
#: options of the TFLite converter's full-integer quantization only
TFLITE_QUANTIZATION_OPTIONS = ("tflite_input_type",)
#: the options passed on to a format's exporter function (``convert.export``) as keyword arguments
EXPORTER_OPTIONS = ONNX_QUANTIZATION_OPTIONS + TFLITE_QUANTIZATION_OPTIONS


@dataclass(frozen=True)
class ExportFormat:
    """One export format: what ``cifar-edge convert --formats NAME`` writes and how it runs."""

    name: str
    file_name: str
    runtime: str  # the edge_sdk backend that runs it by default
    quantized: bool  # full-integer (int8) weights and activations
    exporter: str  # the function of ``convert.export`` that builds it
    options: tuple[str, ...]  # the convert options (ConvertConfig fields) that change this file

    @property
    def suffix(self) -> str:
        """The file suffix (``.tflite`` or ``.onnx``), which picks the runtime and metadata container."""
        return Path(self.file_name).suffix


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("tflite", "model_float32.tflite", "litert", False, "tflite_float", COMMON_OPTIONS),
    ExportFormat("tflite-int8", "model_int8.tflite", "litert", True, "tflite_int8",
                 COMMON_OPTIONS + CALIBRATION_OPTIONS + TFLITE_QUANTIZATION_OPTIONS),
    ExportFormat("onnx", "model_float32.onnx", "onnxruntime", False, "onnx_float", COMMON_OPTIONS),
    ExportFormat("onnx-int8", "model_int8.onnx", "onnxruntime", True, "onnx_int8",
                 COMMON_OPTIONS + CALIBRATION_OPTIONS + ONNX_QUANTIZATION_OPTIONS),
)}
#: every format name, in export order
NAMES: tuple[str, ...] = tuple(FORMATS)
#: every file name an export folder may hold (besides manifest.json), in export order
FILE_NAMES: tuple[str, ...] = tuple(f.file_name for f in FORMATS.values())


def get_format(name: str) -> ExportFormat:
    """The format called ``name``; raises :class:`EdgeSDKError` naming the choices."""
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise EdgeSDKError(f"unknown format {name!r}; choose from: {', '.join(NAMES)}") from None


def parse_formats(text: str) -> tuple[ExportFormat, ...]:
    """Formats from a comma-separated list (``"tflite,onnx-int8"``), duplicates dropped, in the order given.

    Raises :class:`EdgeSDKError` naming every unknown name, or when the list is empty.
    """
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise EdgeSDKError(f"unknown format(s) {', '.join(unknown) or '(none given)'}; choose from: {', '.join(NAMES)}")
    return tuple(FORMATS[n] for n in names)


def format_of_file(path: str | os.PathLike[str]) -> ExportFormat | None:
    """The format whose file name ``path`` has, or None for any other file."""
    name = Path(path).name
    return next((f for f in FORMATS.values() if f.file_name == name), None)


def exported_files(directory: str | os.PathLike[str]) -> list[tuple[ExportFormat, Path]]:
    """The exported files present in ``directory``, in export order."""
    folder = Path(directory)
    return [(f, folder / f.file_name) for f in FORMATS.values() if (folder / f.file_name).is_file()]
