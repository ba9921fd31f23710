"""Model metadata: JSON round trip, strict parsing, and the stdlib-only TFLite/ONNX container readers."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.errors import MetadataError
from edge_sdk.metadata import ModelMetadata, onnx_metadata_value, read_metadata, tflite_metadata_entry
from edge_sdk.spec import PreprocessSpec

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

META = ModelMetadata(spec=PreprocessSpec(), model_name="resnet8", model_version="v1", format="onnx",
                     source_sha256="ab" * 32, dataset="CIFAR-10", created="2026-11-22T00:00:00+00:00",
                     converter={"tensorflow": "2.21.0"}, extra={"calibration": {"images": 500}})


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _onnx_like(props: dict[str, str]) -> bytes:
    """A ModelProto with ir_version, an (empty) graph and metadata_props, in protobuf wire format."""
    body = _varint(1 << 3 | 0) + _varint(8) + _field(7, b"")
    for key, value in props.items():
        body += _field(14, _field(1, key.encode()) + _field(2, value.encode()))
    return body


def test_json_round_trip():
    assert ModelMetadata.from_json(META.to_json()) == META


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"format_version": 2}', "unsupported model metadata version 2"),
        ('{"format_version": 1, "spec": {}}', "lacks model_name, model_version, format"),
        ('{"format_version": true, "spec": {}}', "unsupported model metadata version True: this SDK reads version 1"),
        ('{"format_version": 1, "spec": {"version": 2}, "model_name": "m", "model_version": "1", "format": "onnx"}',
         "unsupported spec version 2: this SDK reads version 1"),
        ('{"format_version": 1, "spec": {"labels": []}, "model_name": "m", "model_version": "1", "format": "onnx"}',
         "labels is empty"),
        ('{"format_version": 1, "spec": {}, "model_name": 3, "model_version": "1", "format": "onnx"}',
         "'model_name' must be a string"),
    ],
)
def test_malformed_metadata_is_named(text, fragment):
    with pytest.raises(MetadataError, match=fragment):
        ModelMetadata.from_json(text)


@pytest.mark.parametrize("constant", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_non_finite_constants_python_accepts_are_refused_as_not_json(constant):
    """Python's parser takes them, strict_json writes them as null: accepted, the metadata would not round-trip."""
    import json

    for place in ("converter", "extra"):
        data = json.loads(META.to_json())
        text = json.dumps({**data, place: {"x": 0.5}}).replace("0.5", constant)
        with pytest.raises(MetadataError, match=f"model metadata is not valid JSON: {constant} is not a finite number"):
            ModelMetadata.from_json(text)
    with pytest.raises(MetadataError, match=f"preprocessing spec is not valid JSON: {constant} is not a finite number"):
        PreprocessSpec.from_json(META.spec.to_json().replace("255.0", constant, 1))


def test_unknown_keys_of_the_same_major_version_are_kept_and_ignored():
    """A field a newer converter adds must not break deployed SDKs (forward compatibility)."""
    import json

    newer = json.loads(META.to_json())
    newer["provenance"] = {"git": "abc"}
    newer["spec"]["interpolation_hint"] = "bilinear"
    meta = ModelMetadata.from_json(json.dumps(newer))
    assert meta == META and meta.spec == META.spec
    assert meta.unknown == {"provenance": {"git": "abc"}, "spec": {"interpolation_hint": "bilinear"}}
    assert json.loads(meta.to_json()) == newer  # kept: written back unchanged
    assert ModelMetadata.from_json(META.to_json()).unknown == {}


def test_another_major_version_is_refused_naming_both_versions():
    with pytest.raises(MetadataError, match=r"version 2: this SDK reads version 1 \(the model comes from a newer"):
        ModelMetadata.from_json(META.to_json().replace('"format_version":1', '"format_version":2'))


def test_onnx_metadata_props_read_by_hand():
    data = _onnx_like({"cifar_edge": META.to_json(), "author": "me"})
    assert onnx_metadata_value(data, "author") == b"me" and onnx_metadata_value(data, "missing") is None
    assert read_metadata(data) == META
    assert read_metadata(_onnx_like({"author": "me"})) is None


def test_truncated_onnx_raises_metadata_error():
    data = _onnx_like({"cifar_edge": META.to_json()})
    with pytest.raises(MetadataError, match="truncated or corrupt"):
        read_metadata(data[:-10])


def test_tflite_reader_refuses_non_tflite():
    with pytest.raises(MetadataError, match="no TFL3 identifier"):
        tflite_metadata_entry(b"\x00" * 64, "cifar_edge")


def test_random_bytes_never_crash_the_readers():
    rng = np.random.default_rng(0)
    for size in (0, 1, 7, 8, 64, 1000):
        for _ in range(50):
            blob = rng.bytes(size)
            for candidate in (blob, blob[:4] + b"TFL3" + blob[8:] if size >= 8 else blob):
                try:
                    result = read_metadata(candidate)
                except MetadataError:
                    continue
                assert result is None or isinstance(result, ModelMetadata)
