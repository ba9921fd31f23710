"""Read the standard TFLite Model Metadata of an image classifier (what MediaPipe Tasks reads), with the standard
library only: a ``TFLITE_METADATA`` entry of ``Model.metadata`` holding a ``ModelMetadata`` flatbuffer (``M001``)
whose files (the label file) follow the model as a zip archive. Only what a classifier needs is read: the model
name, the input's colour space and ``NormalizationOptions`` mean/std (pixel units, as
:class:`~edge_sdk.spec.PreprocessSpec`) and the output's ``TENSOR_AXIS_LABELS`` file; every read is
bounds-checked, and malformed input raises :class:`~edge_sdk.errors.MetadataError`.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass

from .errors import MetadataError
from .metadata import _FlatBuffer, is_tflite, tflite_metadata_entry
from .spec import PreprocessSpec

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
#: a label file larger than this is refused, read no further than that (a CIFAR-10 label file is 69 bytes)
MAX_LABEL_FILE_BYTES = 1 << 20

# Field indices in metadata_schema.fbs (a union takes two: its type, then its value)
_MODEL_NAME, _MODEL_SUBGRAPHS = 0, 3
_SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS = 2, 3
_TENSOR_CONTENT, _TENSOR_PROCESS_UNITS, _TENSOR_FILES = 3, 4, 6
_CONTENT_PROPERTIES_TYPE, _CONTENT_PROPERTIES = 0, 1
_IMAGE_COLOR_SPACE = 0
_UNIT_OPTIONS_TYPE, _UNIT_OPTIONS = 0, 1
_NORMALIZATION_MEAN, _NORMALIZATION_STD = 0, 1
_FILE_NAME, _FILE_TYPE = 0, 2
# enum and union values
_IMAGE_PROPERTIES = 2  # ContentProperties.ImageProperties
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions.NormalizationOptions
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}


@dataclass(frozen=True)
class StandardMetadata:
    """What a classifier's standard metadata says: ``None`` for what it leaves out."""

    name: str
    color_space: str  # "RGB", "GRAYSCALE" or "UNKNOWN" (not stated)
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    labels: tuple[str, ...] | None

    def normalization(self) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
        """``(mean, std)`` per RGB channel (a single value applies to all three, as MediaPipe broadcasts it);
        ``None`` without NormalizationOptions. Raises :class:`MetadataError` for another number of values."""
        if self.mean is None or self.std is None:
            return None
        return _three(self.mean, "mean"), _three(self.std, "std")


def read_standard_metadata(data: bytes, *, with_labels: bool = True,
                           num_classes: int | None = None) -> StandardMetadata | None:
    """The standard metadata of the TFLite model ``data``; ``None`` for a model without it (or not TFLite).
    ``with_labels=False`` leaves the label file unread (``labels`` is then ``None``); given the model's
    ``num_classes``, a label file with another number of labels is refused.

    Raises :class:`MetadataError` when the metadata, or the label file it names, is malformed or missing,
    whatever fails underneath (a corrupt, encrypted or oversized zip entry included).
    """
    if not is_tflite(data):
        return None
    raw = tflite_metadata_entry(data, METADATA_NAME)
    if raw is None:
        return None
    if raw[4:8] != METADATA_IDENTIFIER:
        raise MetadataError(f"{METADATA_NAME} is not a TFLite ModelMetadata flatbuffer "
                            f"(no {METADATA_IDENTIFIER.decode()} identifier)")
    fb = _FlatBuffer(raw)
    model = fb.read("<I", 0)
    name_field = fb.field(model, _MODEL_NAME)
    name = bytes(fb.string(name_field)).decode("utf-8", "replace") if name_field is not None else ""
    subgraphs = list(fb.tables(model, _MODEL_SUBGRAPHS))
    if not subgraphs:
        return StandardMetadata(name, "UNKNOWN", None, None, None)
    inputs = list(fb.tables(subgraphs[0], _SUBGRAPH_INPUTS))
    outputs = list(fb.tables(subgraphs[0], _SUBGRAPH_OUTPUTS))
    color_space, (mean, std) = ("UNKNOWN", (None, None)) if not inputs else (
        _color_space(fb, inputs[0]), _normalization(fb, inputs[0]))
    label_file = _label_file(fb, outputs[0]) if outputs else None
    labels = _read_labels(data, label_file, num_classes) if label_file is not None and with_labels else None
    return StandardMetadata(name, color_space, mean, std, labels)


def standard_spec(data: bytes, input_shape: tuple[int, ...], path: str | os.PathLike[str],
                  labels: tuple[str, ...] | None = None, num_classes: int | None = None) -> PreprocessSpec | None:
    """The :class:`PreprocessSpec` the standard metadata of the model ``data`` (read from ``path``) gives, for
    its input tensor of ``input_shape`` (NHWC), with ``labels`` instead of its label file when given; ``None``
    for a model without standard metadata.

    Raises :class:`MetadataError` naming ``path`` when the metadata is malformed, lacks the label file or
    the normalization, describes a non-RGB input, or the input size is not fixed, or its label file
    has another number of labels than the model's ``num_classes`` outputs (when given).
    """
    try:
        metadata = read_standard_metadata(data, with_labels=labels is None, num_classes=num_classes)
        if metadata is None:
            return None
        labels = labels if labels is not None else metadata.labels
        if labels is None:
            raise MetadataError("its standard TFLite metadata has no label file; pass labels=")
        normalization = metadata.normalization()
        if normalization is None:
            raise MetadataError("its standard TFLite metadata has no NormalizationOptions; pass preprocess=")
        if metadata.color_space == "GRAYSCALE":
            raise MetadataError("its standard TFLite metadata describes a grayscale input; the SDK feeds RGB images")
        if len(input_shape) != 4 or min(input_shape[1:3]) < 1:
            raise MetadataError(f"the model's input shape {tuple(input_shape)} has no fixed NHWC image size; "
                                "pass preprocess=")
    except MetadataError as exc:
        raise MetadataError(f"{path}: {exc}") from exc
    return PreprocessSpec(labels=labels, input_height=int(input_shape[1]), input_width=int(input_shape[2]),
                          mean=normalization[0], std=normalization[1])


def _color_space(fb: _FlatBuffer, tensor: int) -> str:
    content = fb.field(tensor, _TENSOR_CONTENT)
    if content is None:
        return "UNKNOWN"
    content = fb.indirect(content)
    kind = fb.field(content, _CONTENT_PROPERTIES_TYPE)
    properties = fb.field(content, _CONTENT_PROPERTIES)
    if kind is None or properties is None or fb.read("<B", kind) != _IMAGE_PROPERTIES:
        return "UNKNOWN"
    space = fb.field(fb.indirect(properties), _IMAGE_COLOR_SPACE)
    return _COLOR_SPACES.get(fb.read("<B", space), "UNKNOWN") if space is not None else "UNKNOWN"


def _normalization(fb: _FlatBuffer, tensor: int) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    for unit in fb.tables(tensor, _TENSOR_PROCESS_UNITS):
        kind = fb.field(unit, _UNIT_OPTIONS_TYPE)
        options = fb.field(unit, _UNIT_OPTIONS)
        if kind is None or options is None or fb.read("<B", kind) != _NORMALIZATION_OPTIONS:
            continue
        options = fb.indirect(options)
        mean, std = (fb.field(options, i) for i in (_NORMALIZATION_MEAN, _NORMALIZATION_STD))
        if mean is None or std is None:
            raise MetadataError("standard TFLite metadata: NormalizationOptions without mean or std")
        return fb.floats(mean, 3), fb.floats(std, 3)
    return None, None


def _label_file(fb: _FlatBuffer, tensor: int) -> str | None:
    """The name of the tensor's first ``TENSOR_AXIS_LABELS`` file."""
    for entry in fb.tables(tensor, _TENSOR_FILES):
        kind, name = fb.field(entry, _FILE_TYPE), fb.field(entry, _FILE_NAME)
        if kind is not None and name is not None and fb.read("<B", kind) == _TENSOR_AXIS_LABELS:
            return bytes(fb.string(name)).decode("utf-8", "replace")
    return None


def _read_labels(data: bytes, name: str, num_classes: int | None = None) -> tuple[str, ...]:
    """The labels (one per line) of the file ``name`` in the zip archive that follows the model."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo(name)
            if info.file_size > MAX_LABEL_FILE_BYTES:
                raise MetadataError(f"standard TFLite metadata: label file {name} is {info.file_size:,} bytes, over "
                                    f"the {MAX_LABEL_FILE_BYTES:,} allowed")
            with archive.open(info) as fh:  # inflated no further than the cap, whatever the archive declares
                raw = fh.read(MAX_LABEL_FILE_BYTES + 1)
        if len(raw) > MAX_LABEL_FILE_BYTES:
            raise MetadataError(f"standard TFLite metadata: label file {name} inflates past the "
                                f"{MAX_LABEL_FILE_BYTES:,} bytes allowed")
        text = raw.decode("utf-8")
    except MetadataError:
        raise
    except KeyError:
        raise MetadataError(f"standard TFLite metadata names label file {name}, "
                            "which the model file does not hold") from None
    except Exception as exc:  # any decoder failure: BadZipFile, encrypted (RuntimeError), zlib.error, LZMAError, ...
        raise MetadataError(f"standard TFLite metadata: cannot read label file {name}: "
                            f"{type(exc).__name__}: {exc}") from exc
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if num_classes and len(lines) != num_classes:
        raise MetadataError(f"standard TFLite metadata: label file {name} has {len(lines):,} labels but the model "
                            f"has {num_classes} outputs")
    return tuple(line.strip() for line in lines)


def _three(values: tuple[float, ...], name: str) -> tuple[float, float, float]:
    if len(values) == 1:
        return (values[0],) * 3
    if len(values) != 3:
        raise MetadataError(f"standard TFLite metadata gives {len(values)} NormalizationOptions {name} values; "
                            "expected 1 or 3")
    return values  # type: ignore[return-value]
