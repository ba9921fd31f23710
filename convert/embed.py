"""Embed :class:`edge_sdk.metadata.ModelMetadata` into TFLite and ONNX models.

A TFLite file gets two ``Model.metadata`` entries: ours (``cifar_edge``, the JSON the SDK reads) and
the standard TFLite Model Metadata (``TFLITE_METADATA``, :mod:`cifar_edge.convert.standard_metadata`), whose
label file follows the flatbuffer as a zip archive, as MediaPipe's metadata populator writes it.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from edge_sdk.errors import EdgeSDKError
from edge_sdk.metadata import METADATA_KEY, ModelMetadata, is_tflite, read_metadata
from edge_sdk.standard_metadata import METADATA_NAME, read_standard_metadata

from .standard_metadata import build_standard_metadata


def embed_metadata(model: bytes, metadata: ModelMetadata) -> bytes:
    """``model`` (a serialized TFLite or ONNX file) with ``metadata`` embedded in its own container (TFLite: also
    the standard TFLite metadata; raises as :func:`embed_tflite_metadata`)."""
    if is_tflite(model):
        return embed_tflite_metadata(model, metadata)
    import onnx

    proto = onnx.load_from_string(model)
    embed_onnx_metadata(proto, metadata)
    return proto.SerializeToString()


def embed_tflite_metadata(tflite: bytes, metadata: ModelMetadata) -> bytes:
    """Return ``tflite`` with the metadata JSON as its ``cifar_edge`` ``Model.metadata`` entry and the standard
    TFLite metadata built from it (``TFLITE_METADATA`` and the label file zipped after the flatbuffer).

    Existing entries of those names are replaced and a zip archive already after the flatbuffer is
    dropped; other entries (the converter's ``min_runtime_version`` and ``CONVERSION_METADATA``) are
    kept, so stock runtimes load the file unchanged. The result is read back with the SDK's readers.
    Raises :class:`~edge_sdk.errors.MissingExtraError` when ``mediapipe`` is not installed,
    :class:`~edge_sdk.errors.MetadataError` for a spec the standard metadata cannot express, and
    :class:`EdgeSDKError` when the file does not read back as written.
    """
    standard = build_standard_metadata(tflite, metadata.spec, metadata.model_name)
    entries = {METADATA_KEY: metadata.to_json().encode("utf-8"), METADATA_NAME: standard.buffer}
    data = with_associated_files(with_metadata_entries(tflite, entries), standard.files)
    _check_read_back(data, metadata)
    return data


def _check_read_back(data: bytes, metadata: ModelMetadata) -> None:
    """Raise :class:`EdgeSDKError` unless the SDK's readers find both metadata in ``data`` as written."""
    ours = read_metadata(data)
    standard = read_standard_metadata(data)
    spec = metadata.spec
    written = (spec.labels, (tuple(np.float32(spec.mean).tolist()), tuple(np.float32(spec.std).tolist())))
    if ours is None or ours.to_json() != metadata.to_json() or standard is None or (
            standard.labels, standard.normalization()) != written:
        raise EdgeSDKError("the metadata embedded in the TFLite file does not read back as written")


def with_metadata_entries(tflite: bytes, entries: dict[str, bytes]) -> bytes:
    """The flatbuffer of ``tflite`` with one ``Model.metadata`` entry per ``entries`` item (name -> buffer bytes);
    an entry of the same name is replaced in place (its buffer reused); anything after the flatbuffer is not kept."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    model.buffers = list(model.buffers or [])
    model.metadata = list(model.metadata or [])
    existing = {_name(m): m for m in model.metadata}
    for name, payload in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, dtype=np.uint8)
        entry = existing.get(name)
        if entry is not None and 0 <= entry.buffer < len(model.buffers):
            model.buffers[entry.buffer] = buffer
            continue
        model.buffers.append(buffer)
        entry = entry or schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        if name not in existing:
            model.metadata.append(entry)
    builder = flatbuffers.Builder(len(tflite) + sum(map(len, entries.values())) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def with_associated_files(tflite: bytes, files: dict[str, bytes]) -> bytes:
    """``tflite`` followed by a zip archive of ``files`` (name -> bytes, stored uncompressed), whose offsets
    count from the start of the model file: the layout of MediaPipe's and TFLite Support's populators."""
    out = io.BytesIO(tflite)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _name(entry: Any) -> str:
    name = entry.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)


def embed_onnx_metadata(model: Any, metadata: ModelMetadata) -> None:
    """Set the ``cifar_edge`` entry of an ``onnx.ModelProto``'s ``metadata_props`` (in place)."""
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    prop = model.metadata_props.add()
    prop.key = METADATA_KEY
    prop.value = metadata.to_json()
    model.producer_name = "cifar-edge"
