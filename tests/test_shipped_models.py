"""The committed models: their exports through the SDK equal the bare runtimes, and the bundled default is in sync."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Classifier
from edge_sdk.bundled import DEFAULT, bundled_file
from edge_sdk.bundled import bundled_path
from cifar_edge.cli.formats import FORMATS
from edge_sdk.runtimes.base import dequantize, quantize

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
#: every committed model folder with a finished export (its manifest.json)
SHIPPED = tuple(sorted(p.parent.parent.name for p in REPO.glob("models/*/export/manifest.json")))
PER_CLASS = 50
# LiteRT vs ONNX Runtime top-1 agreement of the int8 files. resnet8's post-training int8 files each agree with
# Keras on only ~98.5% (its narrow layers leave many near-ties; docs/parity.md), so two independent int8
# quantizations of it cannot be held to 99% with each other: measured 98.4% on these 500 images. The shipped
# default and edge files come from quantization-aware models (train/qat.py): both hold the same integers.
INT8_RUNTIME_AGREEMENT = {"resnet8": 0.98}
DEFAULT_INT8_RUNTIME_AGREEMENT = 0.99


@pytest.fixture(scope="module")
def test_images(cifar10_dir) -> list[Path]:
    """50 real test images per class (500)."""
    return [p for d in sorted((cifar10_dir / "test").iterdir()) for p in sorted(d.glob("*.jpg"))[:PER_CLASS]]


def _bare_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if inp["dtype"] != np.float32:
        x = quantize(x, *inp["quantization"], np.dtype(inp["dtype"]))
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])
    return y if out["dtype"] == np.float32 else dequantize(y, *out["quantization"])


def _bare_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("model", SHIPPED)
def test_sdk_equals_bare_runtime_and_runtimes_agree(model, test_images):
    export = REPO / "models" / model / "export"
    manifest = json.loads((export / "manifest.json").read_text())
    listed = {f["file"] for f in manifest["files"]}
    # every format, or (a quantization-aware source) the int8 ones
    assert listed in ({f.file_name for f in FORMATS.values()}, {f.file_name for f in FORMATS.values() if f.quantized})
    top1 = {}
    for fmt in FORMATS.values():
        if fmt.file_name not in listed or not (export / fmt.file_name).is_file() and not fmt.quantized:
            continue  # a float32 file left out of git (tests/test_repository.py); a rebuilt copy is checked too
        name = fmt.file_name
        clf = Classifier(export / name, top_k=10)
        bare = _bare_onnx if fmt.runtime == "onnxruntime" else _bare_tflite
        x = np.concatenate([clf.preprocess(p) for p in test_images])
        expected = np.concatenate([bare(export / name, x[i : i + 1]) for i in range(0, 40)])
        got = np.stack([clf.probabilities(p) for p in test_images[:40]])
        np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=name)
        top1[fmt.name] = np.array([clf.classify(p).top.index for p in test_images])
    labels = np.repeat(np.arange(10), PER_CLASS)
    for name, pred in top1.items():
        assert (pred == labels).mean() > 0.75, name  # a real classifier, not noise
    bar = INT8_RUNTIME_AGREEMENT.get(model, DEFAULT_INT8_RUNTIME_AGREEMENT)
    assert (top1["tflite-int8"] == top1["onnx-int8"]).mean() >= bar
    if "tflite" in top1 and "onnx" in top1:
        assert (top1["tflite"] == top1["onnx"]).mean() >= 0.999


def test_bundled_default_is_the_shipped_default_int8_export():
    from cifar_edge.convert.converter import sha256_file

    manifest = json.loads((REPO / "models" / "default" / "export" / "manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f["format"] == "tflite-int8")
    assert sha256_file(bundled_path("default", ".tflite")) == entry["sha256"]
    clf = Classifier()
    assert clf.model_name == "default" and len(clf.labels) == 10
    assert clf.model_path == bundled_file(DEFAULT)  # the file this host runs fastest (edge_sdk.bundled)
