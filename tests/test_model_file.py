"""One read of a model file; backends checked against its suffix; what the converter writes in metadata."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Classifier
from edge_sdk.errors import BackendUnavailableError
from cifar_edge.cli.formats import FORMATS

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO / "models" / "resnet8" / "export"


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
def test_the_model_file_is_read_once_and_metadata_comes_from_those_bytes(tmp_path, monkeypatch, fmt):
    model = tmp_path / fmt.file_name
    shutil.copyfile(EXPORT / fmt.file_name, model)
    reads: list[Path] = []
    real_read_bytes = Path.read_bytes

    def counting_read_bytes(self: Path) -> bytes:
        data = real_read_bytes(self)
        if self == model:
            reads.append(self)
            model.write_bytes(b"replaced after the first read")  # a second read would see these bytes
        return data

    monkeypatch.setattr(Path, "read_bytes", counting_read_bytes)
    with Classifier(model) as clf:
        assert reads == [model]
        assert clf.metadata is not None and clf.metadata.format == fmt.name
        assert clf.classify(np.zeros((32, 32, 3), np.uint8)).top is not None


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
def test_a_backend_must_run_the_files_suffix(fmt):
    wrong = "onnxruntime" if fmt.suffix == ".tflite" else "litert"
    with pytest.raises(BackendUnavailableError, match=f"backend '{wrong}' runs .* not {fmt.suffix} files"):
        Classifier(EXPORT / fmt.file_name, backend=wrong)
    assert Classifier(EXPORT / fmt.file_name, backend=fmt.runtime).backend_name == fmt.runtime


def test_converter_metadata_has_no_machine_paths_nor_other_formats_options():
    pytest.importorskip("tensorflow")
    from cifar_edge.convert.converter import ConvertConfig, calibration_record, portable_dataset

    assert portable_dataset("image-folder /work/shared/datasets/cifar10 (from $CIFAR10_DIR)") == (
        "image-folder cifar10 (from $CIFAR10_DIR)")
    assert portable_dataset(r"official C:\data\cifar-10-batches-py (from --data)") == (
        "official cifar-10-batches-py (from --data)")
    assert portable_dataset(None) == "CIFAR-10"
    assert portable_dataset("image-folder /home/me/cifar10 (from --data)", "ab" * 32) == (
        f"image-folder cifar10 (from --data); train split sha256 {'ab' * 32}")
    config = ConvertConfig(model="m.keras", out="o", calib_method="entropy", onnx_reduce_range=False, seed=3)
    tflite = calibration_record(config, 500, FORMATS["tflite-int8"])
    onnx = calibration_record(config, 500, FORMATS["onnx-int8"])
    common = {"split": "train", "images": 500, "stratified": True, "seed": 3}
    assert tflite == {**common, "tflite_input_type": "int8"}  # each format records only its own options
    assert onnx == {**common, "onnx_method": "entropy", "onnx_activations": "uint8", "onnx_weight_bits": 8}
