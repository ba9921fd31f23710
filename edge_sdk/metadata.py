"""Model metadata that travels inside every exported file, read with the standard library only.

The converter stores one JSON document under the key ``cifar_edge``: in a TFLite file, an entry of the
flatbuffer's ``Model.metadata`` list pointing at a buffer that holds it (stock runtimes ignore it); in an
ONNX file, an entry of ``ModelProto.metadata_props``. Both containers are parsed here by hand, with bounds
checks on every read, so the SDK needs neither TensorFlow, ``flatbuffers`` nor ``onnx`` to read a model's
labels and preprocessing (the ONNX runtime walks a model's tensors with the same protobuf reader, :func:`fields`).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import MetadataError, ModelLoadError
from .spec import PreprocessSpec, parse_json, strict_json

METADATA_KEY = "cifar_edge"
METADATA_FORMAT_VERSION = 1
#: a metadata JSON document larger than this is refused before it is parsed (ours is about 2 KB;
#: 21,000 long labels fit)
MAX_METADATA_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelMetadata:
    """What an exported model says about itself."""

    spec: PreprocessSpec
    model_name: str
    model_version: str
    format: str
    source_sha256: str = ""
    dataset: str = ""
    created: str = ""
    converter: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = METADATA_FORMAT_VERSION
    #: keys this SDK does not know, from a newer converter of the same major version: kept (and written
    #: back by :meth:`to_json`) but ignored; unknown keys of the spec sit under ``"spec"``
    unknown: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        """Serialize as strict JSON (the spec nested as an object; a NaN in ``extra`` becomes null)."""
        data = asdict(self)
        unknown = data.pop("unknown")
        data["spec"] = {**unknown.get("spec", {}), **self.spec.to_dict()}
        data = {**{k: v for k, v in unknown.items() if k != "spec"}, **data}
        return strict_json(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, num_classes: int | None = None) -> ModelMetadata:
        """Parse the JSON written by :meth:`to_json` of this or a newer converter of the same major version.

        Unknown keys (top level or in the spec) are kept in :attr:`unknown` and ignored. Raises
        :class:`MetadataError` if malformed, over :data:`MAX_METADATA_BYTES`, for another major version
        (naming both versions), or, given the model's ``num_classes``, for another number of labels
        (checked before the labels are built into a spec).
        """
        if len(text) > MAX_METADATA_BYTES:
            raise MetadataError(f"model metadata is {len(text):,} bytes, over the {MAX_METADATA_BYTES:,} allowed")
        data = parse_json(text, "model metadata")
        if not isinstance(data, dict):
            raise MetadataError("model metadata must be a JSON object")
        version = data.get("format_version")
        if version != METADATA_FORMAT_VERSION or isinstance(version, bool):
            newer = isinstance(version, int) and not isinstance(version, bool) and version > METADATA_FORMAT_VERSION
            raise MetadataError(f"unsupported model metadata version {version!r}: this SDK reads version "
                                f"{METADATA_FORMAT_VERSION} (the model comes from a {'newer' if newer else 'different'}"
                                " converter; use a cifar-edge release that reads it)")
        missing = [k for k in ("spec", "model_name", "model_version", "format") if k not in data]
        if missing:
            raise MetadataError(f"model metadata lacks {', '.join(missing)}")
        labels = data["spec"].get("labels") if isinstance(data["spec"], dict) else None
        if num_classes and isinstance(labels, list) and len(labels) != num_classes:
            raise MetadataError(f"the metadata lists {len(labels):,} labels but the model has {num_classes} outputs")
        known = set(cls.__dataclass_fields__) - {"unknown"}
        unknown = {k: data.pop(k) for k in sorted(set(data) - known)}
        spec, spec_unknown = PreprocessSpec.from_metadata_dict(data.pop("spec"))
        if spec_unknown:
            unknown["spec"] = spec_unknown
        for key in ("model_name", "model_version", "format", "source_sha256", "dataset", "created"):
            if key in data and not isinstance(data[key], str):
                raise MetadataError(f"model metadata '{key}' must be a string")
        for key in ("converter", "extra"):
            if key in data and not isinstance(data[key], dict):
                raise MetadataError(f"model metadata '{key}' must be an object")
        return cls(spec=spec, unknown=unknown, **data)


def read_metadata(model: str | os.PathLike[str] | bytes) -> ModelMetadata | None:
    """The ``cifar_edge`` metadata of a ``.tflite`` or ``.onnx`` file or its bytes; ``None`` if it has none.

    Raises :class:`MetadataError` when the container is malformed or the metadata present cannot be parsed
    (naming the file), and :class:`ModelLoadError` when the file cannot be read.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        return parse_model_metadata(bytes(model))
    path = Path(model)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelLoadError(f"model file not found: {path}") from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    return parse_model_metadata(data, path)


def parse_model_metadata(data: bytes, path: str | os.PathLike[str] | None = None,
                         num_classes: int | None = None) -> ModelMetadata | None:
    """The metadata in the bytes of a model file (read from ``path``, which errors name), whose labels must
    number ``num_classes`` when given (the model's outputs); raises :class:`MetadataError`."""
    try:
        if is_tflite(data):
            raw: bytes | None = tflite_metadata_entry(data, METADATA_KEY)
        else:
            raw = onnx_metadata_value(data, METADATA_KEY)
        return None if raw is None else ModelMetadata.from_json(raw, num_classes)
    except MetadataError as exc:
        if path is None:
            raise
        raise MetadataError(f"{path}: {exc}") from exc


def is_tflite(data: bytes) -> bool:
    """True if ``data`` carries the TFLite flatbuffer identifier ``TFL3``."""
    return len(data) >= 8 and data[4:8] == b"TFL3"


# --------------------------------------------------------------------------- TFLite flatbuffer

# Field indices in tensorflow/lite/schema/schema.fbs
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2


class _FlatBuffer:
    """Bounds-checked reads of flatbuffer tables, vectors and strings (views of the data, never copies)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.view = memoryview(data)

    def read(self, fmt: str, pos: int) -> Any:
        """The scalar of ``struct`` format ``fmt`` at ``pos``."""
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.data):
            raise MetadataError(f"TFLite file is truncated or corrupt (read at byte {pos} past the end)")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or None if absent."""
        vtable = table - self.read("<i", table)
        entry = 4 + 2 * index
        if entry + 2 > self.read("<H", vtable):
            return None
        offset = self.read("<H", vtable + entry)
        return table + offset if offset else None

    def indirect(self, pos: int) -> int:
        return pos + self.read("<I", pos)

    def vector(self, pos: int, element_size: int) -> tuple[int, int]:
        """(start of elements, length) of the vector referenced at ``pos``."""
        vec = self.indirect(pos)
        length = self.read("<I", vec)
        if vec + 4 + element_size * length > len(self.data):
            raise MetadataError("TFLite file is truncated or corrupt (vector past the end)")
        return vec + 4, length

    def tables(self, table: int, index: int) -> Iterator[int]:
        """The tables of the vector in field ``index`` of the table at ``table`` (absent: none), one at a time."""
        pos = self.field(table, index)
        start, length = self.vector(pos, 4) if pos is not None else (0, 0)
        return (self.indirect(start + 4 * i) for i in range(length))

    def string(self, pos: int) -> memoryview:
        """The string (or ``[ubyte]`` vector) referenced at ``pos``."""
        start, length = self.vector(pos, 1)
        return self.view[start : start + length]

    def floats(self, pos: int, max_length: int) -> tuple[float, ...]:
        """The ``[float]`` vector referenced at ``pos``; :class:`MetadataError` past ``max_length`` values."""
        start, length = self.vector(pos, 4)
        if length > max_length:
            raise MetadataError(f"TFLite metadata holds {length:,} values where at most {max_length} are expected")
        return struct.unpack_from(f"<{length}f", self.data, start)


def tflite_metadata_entry(data: bytes, name: str) -> bytes | None:
    """The buffer of the ``Model.metadata`` entry called ``name`` (the last one of that name) of a TFLite
    flatbuffer, or ``None``; only that buffer is copied, whatever the other entries hold."""
    if not is_tflite(data):
        raise MetadataError("not a TFLite flatbuffer (no TFL3 identifier)")
    fb = _FlatBuffer(data)
    model = fb.read("<I", 0)
    buffers_field = fb.field(model, _MODEL_BUFFERS)
    buffers, count = fb.vector(buffers_field, 4) if buffers_field is not None else (0, 0)
    wanted, found = name.encode("utf-8"), None
    for entry in fb.tables(model, _MODEL_METADATA):
        name_field, buffer_field = fb.field(entry, _METADATA_NAME), fb.field(entry, _METADATA_BUFFER)
        if name_field is None or buffer_field is None:
            continue
        entry_name, index = fb.string(name_field), fb.read("<I", buffer_field)
        if index >= count:
            shown = bytes(entry_name[:100]).decode("utf-8", errors="replace")
            raise MetadataError(f"TFLite metadata '{shown}' points at buffer {index} of {count}")
        if entry_name == wanted:
            found = fb.indirect(buffers + 4 * index)
    return None if found is None else bytes(_buffer_view(fb, found))


def _buffer_view(fb: _FlatBuffer, buffer: int) -> memoryview:
    data_field = fb.field(buffer, _BUFFER_DATA)
    if data_field is not None:
        return fb.string(data_field)  # a [ubyte] vector has the same layout as a string
    offset_field, size_field = fb.field(buffer, _BUFFER_OFFSET), fb.field(buffer, _BUFFER_SIZE)
    if offset_field is not None and size_field is not None:  # data stored after the flatbuffer
        offset, size = fb.read("<Q", offset_field), fb.read("<Q", size_field)
        if offset + size > len(fb.data):
            raise MetadataError("TFLite buffer lies past the end of the file (truncated?)")
        return fb.view[offset : offset + size]
    return fb.view[0:0]


# --------------------------------------------------------------------------- ONNX protobuf (the wire format)

def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise MetadataError("ONNX file is truncated or corrupt (varint past the end)")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise MetadataError("ONNX file is corrupt (varint too long)")


def fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes | memoryview]]:
    """Yield (field number, wire type, value) of a protobuf message; value is bytes (or a memoryview slice of
    a memoryview) for length-delimited fields."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise MetadataError("ONNX file is truncated or corrupt (field past the end)")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise MetadataError(f"not an ONNX model (unexpected protobuf wire type {wire})")
        if pos > len(data):
            raise MetadataError("ONNX file is truncated or corrupt")
        yield number, wire, value



_MODEL_GRAPH, _MODEL_METADATA_PROPS = 7, 14  # ModelProto.graph, .metadata_props (StringStringEntryProto)


def onnx_metadata_value(data: bytes, key: str) -> bytes | None:
    """The value of the ``metadata_props`` entry ``key`` of an ONNX ``ModelProto`` (the last one), or ``None``;
    only that value is copied (the graph is skipped, not copied)."""
    wanted, found, seen_graph = key.encode("utf-8"), None, False
    for number, wire, value in fields(memoryview(data)):
        seen_graph |= number == _MODEL_GRAPH and wire == 2
        if number == _MODEL_METADATA_PROPS and wire == 2:
            entry = {n: v for n, w, v in fields(value) if w == 2 and n in (1, 2)}  # type: ignore[arg-type]
            if entry.get(1, b"") == wanted:
                found = entry.get(2, b"")
    if not seen_graph:
        raise MetadataError("not an ONNX model (no graph found)")
    return None if found is None else bytes(found)
