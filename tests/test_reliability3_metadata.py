"""Model metadata from a stranger's file (issue 24, class 3): only the entries needed are read, a label file is
inflated no further than its limit, the label count is checked against the model's outputs before anything big
is built, every decoder error is a MetadataError, and a fuzz of both containers stays within a memory and time
budget per case."""

from __future__ import annotations

import io
import json
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_sdk.errors import MetadataError
from edge_sdk.metadata import (MAX_METADATA_BYTES, METADATA_KEY, ModelMetadata, parse_model_metadata, read_metadata,
                               tflite_metadata_entry)
from edge_sdk.standard_metadata import MAX_LABEL_FILE_BYTES, METADATA_NAME, read_standard_metadata, standard_spec

MODELS = Path(__file__).parents[1] / "edge_sdk" / "models"
FIXTURE = Path(__file__).parent / "fixtures" / "standard_metadata_classifier.tflite"
MiB = 1024 * 1024


def peak_bytes(fn: Callable[[], object]) -> tuple[int, object]:
    """(peak bytes Python allocated while ``fn`` ran, what it returned or raised)."""
    tracemalloc.start()
    try:
        try:
            outcome: object = fn()
        except Exception as exc:  # noqa: BLE001 - the caller checks the type
            outcome = exc
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- TFLite: many entries, one big buffer
def tflite_sharing_one_buffer(entries: int, buffer_bytes: int) -> bytes:
    """A TFLite flatbuffer whose ``entries`` metadata entries all point at one ``buffer_bytes`` buffer."""
    fb = pytest.importorskip("flatbuffers")
    b = fb.Builder(0)
    b.ForceDefaults(True)
    big = b.CreateByteVector(b"\x00" * buffer_bytes)
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(0, big, 0)
    buffer = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(buffer)
    buffers = b.EndVector()
    tables = []
    for i in range(entries):
        name = b.CreateString(f"junk{i}")
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, name, 0)
        b.PrependUint32Slot(1, 0, 0)
        tables.append(b.EndObject())
    b.StartVector(4, len(tables), 4)
    for table in reversed(tables):
        b.PrependUOffsetTRelative(table)
    metadata = b.EndVector()
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(4, buffers, 0)
    b.PrependUOffsetTRelativeSlot(6, metadata, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_many_entries_sharing_a_large_buffer_are_not_copied_one_by_one():
    data = tflite_sharing_one_buffer(entries=300, buffer_bytes=1 * MiB)
    for name in ("junk0", "junk299"):  # the file is what it claims: 300 entries on one buffer
        assert tflite_metadata_entry(data, name) == b"\x00" * MiB
    assert tflite_metadata_entry(data, "junk300") is None
    for read in (lambda: read_metadata(data), lambda: read_standard_metadata(data)):
        peak, outcome = peak_bytes(read)
        assert outcome is None  # neither entry is there
        assert peak < 4 * MiB, f"{peak / MiB:.0f} MiB for a {len(data) / MiB:.1f} MiB file"


# --------------------------------------------------------------------------- TFLite: the label zip
@pytest.fixture(scope="module")
def fixture_data() -> bytes:
    return FIXTURE.read_bytes()


def with_label_zip(model: bytes, zip_bytes: bytes) -> bytes:
    """``model`` (a TFLite file with a zip after its flatbuffer) with that zip replaced by ``zip_bytes``."""
    offset = zipfile.ZipFile(io.BytesIO(model)).infolist()[0].header_offset
    return model[:offset] + zip_bytes


def label_zip(content: bytes, method: int = zipfile.ZIP_STORED, name: str = "labels.txt") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        archive.writestr(name, content)
    return out.getvalue()


def patch_entry(zip_bytes: bytes, *, flags: int | None = None, size: int | None = None) -> bytes:
    """Rewrite the one entry's general-purpose flags and/or declared size in both of its headers."""
    data = bytearray(zip_bytes)
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    if flags is not None:
        struct.pack_into("<H", data, local + 6, flags)
        struct.pack_into("<H", data, central + 8, flags)
    if size is not None:
        struct.pack_into("<I", data, local + 22, size)
        struct.pack_into("<I", data, central + 24, size)
    return bytes(data)


def test_a_label_file_that_inflates_past_its_declared_size_is_never_inflated_in_full(fixture_data):
    bomb = patch_entry(label_zip(b"x" * (64 * MiB), zipfile.ZIP_DEFLATED), size=20)  # declares 20 bytes
    data = with_label_zip(fixture_data, bomb)
    peak, outcome = peak_bytes(lambda: read_standard_metadata(data))
    assert isinstance(outcome, MetadataError), outcome  # 20 bytes of x: the CRC does not match
    assert peak < 8 * MiB, f"{peak / MiB:.0f} MiB inflated"


def test_a_label_file_over_the_limit_is_read_no_further_than_the_limit(fixture_data):
    honest = label_zip(b"label\n" * (MAX_LABEL_FILE_BYTES // 3), zipfile.ZIP_DEFLATED)
    with pytest.raises(MetadataError, match="over the"):
        read_standard_metadata(with_label_zip(fixture_data, honest))


@pytest.mark.parametrize("case", ["encrypted", "corrupt deflate", "corrupt lzma", "corrupt bzip2", "bad utf-8"])
def test_every_label_zip_decoder_error_is_a_metadata_error(fixture_data, case):
    text = b"bright\ndark\n" * 200
    if case == "encrypted":
        broken = patch_entry(label_zip(text), flags=1)
    elif case == "bad utf-8":
        broken = label_zip(b"\xff\xfe\xfd\n" * 2)
    else:
        method = {"corrupt deflate": zipfile.ZIP_DEFLATED, "corrupt lzma": zipfile.ZIP_LZMA,
                  "corrupt bzip2": zipfile.ZIP_BZIP2}[case]
        good = bytearray(label_zip(text, method))
        start = good.index(b"labels.txt") + len(b"labels.txt")
        for i in range(start + 4, start + 40):
            good[i] ^= 0x5A
        broken = bytes(good)
    data = with_label_zip(fixture_data, broken)
    with pytest.raises(MetadataError, match="label file labels.txt"):
        read_standard_metadata(data)
    with pytest.raises(MetadataError, match="model.tflite"):
        standard_spec(data, (1, 8, 8, 3), "model.tflite")


def test_a_label_file_of_another_length_than_the_outputs_is_refused(fixture_data):
    data = with_label_zip(fixture_data, label_zip(b"a\nb\nc\n"))
    assert read_standard_metadata(data).labels == ("a", "b", "c")
    with pytest.raises(MetadataError, match="3 labels but the model has 2 outputs"):
        read_standard_metadata(data, num_classes=2)


# --------------------------------------------------------------------------- ONNX: a huge label list
def onnx_with_metadata(model: bytes, value: bytes) -> bytes:
    """``model`` with one more ``metadata_props`` entry ``cifar_edge`` (the last of a key wins)."""
    def field(number: int, payload: bytes) -> bytes:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload
    return model + field(14, field(1, METADATA_KEY.encode()) + field(2, value))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


@pytest.fixture(scope="module")
def onnx_model() -> bytes:
    return (MODELS / "edge_int8.onnx").read_bytes()


def _metadata_with_labels(model: bytes, labels: list[str]) -> bytes:
    meta = json.loads(read_metadata(model).to_json())
    meta["spec"]["labels"] = labels
    return json.dumps(meta).encode()


def test_a_metadata_document_over_the_limit_is_refused_before_it_is_parsed(onnx_model):
    value = _metadata_with_labels(onnx_model, [f"l{i}" for i in range(MAX_METADATA_BYTES // 6)])
    assert len(value) > MAX_METADATA_BYTES
    data = onnx_with_metadata(onnx_model, value)
    peak, outcome = peak_bytes(lambda: read_metadata(data))
    assert isinstance(outcome, MetadataError) and "bytes, over the" in str(outcome), outcome
    assert peak < 3 * len(value), f"{peak / MiB:.0f} MiB for a {len(value) / MiB:.1f} MiB document"


def test_the_label_count_is_checked_against_the_outputs_before_the_spec_is_built(onnx_model, monkeypatch):
    data = onnx_with_metadata(onnx_model, _metadata_with_labels(onnx_model, [f"l{i}" for i in range(50_000)]))
    built = []
    monkeypatch.setattr(ModelMetadata, "__init__", lambda *a, **k: built.append(1))  # must not get that far
    with pytest.raises(MetadataError, match=r"m\.onnx: the metadata lists 50,000 labels but the model has 10 outputs"):
        parse_model_metadata(data, "m.onnx", num_classes=10)
    assert not built


def test_the_classifier_refuses_a_model_whose_labels_do_not_match_its_outputs(tmp_path, onnx_model):
    pytest.importorskip("onnxruntime")
    from edge_sdk import Classifier

    path = tmp_path / "many.onnx"
    path.write_bytes(onnx_with_metadata(onnx_model, _metadata_with_labels(onnx_model, [f"l{i}" for i in range(20)])))
    with pytest.raises(MetadataError, match="20 labels but the model has 10 outputs"):
        Classifier(path)
    assert Classifier(path, labels=[f"c{i}" for i in range(10)]).labels[0] == "c0"  # labels= still replaces them


# --------------------------------------------------------------------------- fuzz, with a budget per case
#: per case: CPU seconds (generous: a case takes milliseconds) and bytes allocated beyond the file's size
CASE_CPU_S = 10.0
CASE_EXTRA_BYTES = 16 * MiB


def _mutate(data: bytes, region: tuple[int, int], edits: list[tuple[int, int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    lo, hi = region
    for pos, kind, value in edits:
        at = lo + pos % max(hi - lo, 1)
        if kind == 0:
            out[at] = value  # overwrite a byte
        elif kind == 1:
            out[at:at + 4] = struct.pack("<I", value * 0x01010101)  # a large offset or length
        else:
            out[at:at] = bytes([value]) * (1 + value % 7)  # insert bytes: every later offset shifts
    return bytes(out[:cut] if cut else out)


def _budgeted(read: Callable[[], object], size: int) -> None:
    start = time.process_time()
    peak, outcome = peak_bytes(read)
    spent = time.process_time() - start
    assert outcome is None or not isinstance(outcome, Exception) or isinstance(outcome, MetadataError), repr(outcome)
    assert peak < size + CASE_EXTRA_BYTES, f"{peak / MiB:.1f} MiB for a {size / MiB:.2f} MiB file"
    assert spent < CASE_CPU_S, f"{spent:.1f} CPU s"


def _region(data: bytes, needle: bytes, around: int = 2048) -> tuple[int, int]:
    at = data.find(needle)
    return (max(at - around, 0), min(at + around, len(data))) if at >= 0 else (0, len(data))


EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 2), st.integers(0, 255)), min_size=1, max_size=8)
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(edits=EDITS, cut=st.one_of(st.none(), st.integers(8, 1 << 17)), near_metadata=st.booleans())
def test_fuzz_tflite_metadata_stays_typed_and_within_budget(edits, cut, near_metadata):
    data = (MODELS / "edge_int8.tflite").read_bytes()
    region = _region(data, METADATA_NAME.encode()) if near_metadata else (0, len(data))
    mutated = _mutate(data, region, edits, cut)
    _budgeted(lambda: read_metadata(mutated), len(mutated))
    _budgeted(lambda: read_standard_metadata(mutated, num_classes=10), len(mutated))
    _budgeted(lambda: standard_spec(mutated, (1, 32, 32, 3), "fuzz.tflite"), len(mutated))


@FUZZ
@given(edits=EDITS, cut=st.one_of(st.none(), st.integers(8, 1 << 17)), near_metadata=st.booleans())
def test_fuzz_onnx_metadata_stays_typed_and_within_budget(edits, cut, near_metadata):
    data = (MODELS / "edge_int8.onnx").read_bytes()
    region = _region(data, METADATA_KEY.encode()) if near_metadata else (0, len(data))
    mutated = _mutate(data, region, edits, cut)
    _budgeted(lambda: read_metadata(mutated), len(mutated))
    _budgeted(lambda: parse_model_metadata(mutated, "fuzz.onnx", num_classes=10), len(mutated))
