"""The parity report that explains: flips with their Keras margins, confidence drift, cross-runtime agreement,
per-layer SNR of int8 TFLite files, contact sheets, and parity on a folder of photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar_edge.convert.contact_sheet import contact_sheet
from cifar_edge.convert.parity import MAX_LISTED_FLIPS, cross_agreement, explain
from cifar_edge.convert.photos import UNLABELLED, is_photo_folder, load_photo_folder
from edge_sdk.errors import EdgeSDKError
from edge_sdk.spec import CIFAR10_CLASSES, PreprocessSpec

REPO = Path(__file__).resolve().parents[1]
#: a float resnet8 (the network of ``edge``) with its float and post-training int8 exports; the shipped ``edge`` is
#: quantization-aware (train/qat.py) and exports int8 files only
EDGE = REPO / "models" / "resnet8"
CLASSES = tuple(CIFAR10_CLASSES)


def _probs(rows: list[list[float]]) -> np.ndarray:
    p = np.zeros((len(rows), 10), np.float32)
    for i, row in enumerate(rows):
        p[i, : len(row)] = row
    return p


# --------------------------------------------------------------------------- flips, margins, drift
def test_explain_lists_each_flip_with_the_keras_margin_and_the_files_answer():
    keras = _probs([[0.6, 0.4], [0.9, 0.1], [0.2, 0.1, 0.7]])
    file = _probs([[0.45, 0.55], [0.8, 0.2], [0.2, 0.1, 0.7]])
    labels = np.array([0, 0, UNLABELLED])
    why = explain(file, keras, labels, CLASSES, files=("a.jpg", "b.jpg", "c.jpg"))
    assert why["flip_count"] == 1
    assert why["flips"] == [{"index": 0, "file": "a.jpg", "label": "airplane", "keras_top1": "airplane",
                             "keras_top1_prob": 0.6, "keras_top2": "automobile", "keras_margin": 0.2,
                             "file_top1": "automobile", "file_prob": 0.55}]
    assert why["flip_keras_margin"] == {"median": 0.2, "max": 0.2}
    assert why["keras_margin_median"] == pytest.approx(0.5, abs=1e-4)  # margins 0.2, 0.8, 0.5
    drift = why["confidence_drift"]  # top-1 probabilities: 0.6 -> 0.55, 0.9 -> 0.8, 0.7 -> 0.7
    assert drift["mean"] == pytest.approx(0.05, abs=1e-6) and drift["max"] == pytest.approx(0.1, abs=1e-6)
    assert drift["mean_signed"] == pytest.approx(-0.05, abs=1e-6)
    # an unlabelled picture that flips has no true label
    assert explain(file, keras, np.array([UNLABELLED, 0, 0]), CLASSES)["flips"][0]["label"] is None


def test_explain_without_flips_and_the_list_is_capped():
    same = _probs([[0.7, 0.3]] * 3)
    why = explain(same, same, np.zeros(3, np.int64), CLASSES)
    assert why["flip_count"] == 0 and why["flips"] == [] and why["flip_keras_margin"] is None
    assert why["confidence_drift"]["max"] == 0.0
    n = MAX_LISTED_FLIPS + 5
    why = explain(_probs([[0.4, 0.6]] * n), _probs([[0.6, 0.4]] * n), np.zeros(n, np.int64), CLASSES)
    assert why["flip_count"] == n and len(why["flips"]) == MAX_LISTED_FLIPS


def test_cross_agreement_compares_every_pair_of_quantized_files():
    a, b = _probs([[0.9, 0.1], [0.6, 0.4]]), _probs([[0.9, 0.1], [0.4, 0.6]])
    assert cross_agreement({"model_int8.tflite": a, "model_int8.onnx": b}) == [
        {"files": ["model_int8.tflite", "model_int8.onnx"], "top1_agreement": 0.5, "disagreements": 1}]
    assert cross_agreement({"only.tflite": a}) == []


def test_contact_sheet_draws_one_tile_per_flip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    flips = explain(_probs([[0.4, 0.6]] * 5), _probs([[0.6, 0.4]] * 5), np.zeros(5, np.int64), CLASSES)["flips"]
    assert contact_sheet(images, flips[:3], tmp_path / "sheet.png") == 3
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width == 3 * 96 and sheet.height > 96


# --------------------------------------------------------------------------- photo folders
def _photo_tree(root: Path) -> Path:
    """test/cat (2 photos), test/dog (1), unknown/ (2): like the real-photo folder, not a full test split."""
    rng = np.random.default_rng(1)
    for rel in ("test/cat/a.jpg", "test/cat/b.png", "test/dog/c.jpg", "unknown/d.jpg", "unknown/e.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / rel)
    (root / "README.md").write_text("photos")
    return root


def test_a_photo_folder_is_told_from_a_data_set_and_all_its_pictures_load(tmp_path, cifar10_dir):
    photos = _photo_tree(tmp_path / "photos")
    assert is_photo_folder(photos, CLASSES)
    assert not is_photo_folder(cifar10_dir, CLASSES)  # a full test split of the model's classes
    assert not is_photo_folder(tmp_path / "missing", CLASSES)
    loaded = load_photo_folder(photos, PreprocessSpec())
    assert loaded.images.shape == (5, 32, 32, 3) and loaded.images.dtype == np.uint8
    assert loaded.files == ("test/cat/a.jpg", "test/cat/b.png", "test/dog/c.jpg", "unknown/d.jpg", "unknown/e.jpg")
    assert loaded.labels.tolist() == [3, 3, 5, UNLABELLED, UNLABELLED]
    assert loaded.describe()["labelled"] == 3 and loaded.describe()["unlabelled"] == 2
    assert len(load_photo_folder(photos, PreprocessSpec(), limit=2).files) == 2


# --------------------------------------------------------------------------- per-layer SNR (LiteRT)
def test_layer_snr_points_at_a_tensor_of_the_int8_file(cifar10_dir):
    from cifar_edge.convert.layer_snr import layer_snr
    from edge_sdk.images import load_image

    files = [p for d in sorted((cifar10_dir / "test").iterdir()) for p in sorted(d.glob("*.jpg"))[:2]]
    x = np.stack([load_image(f, 32, 32) for f in files]).astype(np.float32) / 255.0
    int8 = (EDGE / "export" / "model_int8.tflite").read_bytes()
    result = layer_snr(int8, (EDGE / "export" / "model_float32.tflite").read_bytes(), x)
    layers = result["layers"]
    assert result["images"] == len(files) and len(layers) >= 10
    assert {"CONV_2D", "ADD", "FULLY_CONNECTED"} <= {layer["op"] for layer in layers}
    assert all(layer["snr_db"] is None or 5 < layer["snr_db"] < 80 for layer in layers)  # int8: tens of dB
    assert result["costliest"] in layers and result["costliest"]["added_noise"] == max(l["added_noise"] for l in layers)
    # the float file against itself: no noise anywhere
    same = layer_snr(int8, int8, x)
    assert all(layer["snr_db"] is None and layer["added_noise"] == 0 for layer in same["layers"])
    # two different networks share no tensor names: a typed error, not a made-up figure
    other = (REPO / "edge_sdk" / "models" / "default_int8.tflite").read_bytes()  # tracked (the float files are not)
    with pytest.raises(EdgeSDKError, match="share no tensor names"):
        layer_snr(int8, other, x)


# --------------------------------------------------------------------------- the command
def _cli(*args, cache):
    env = {**os.environ, "CIFAR_EDGE_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "cifar_edge.cli", *args], capture_output=True, text=True, env=env,
                          timeout=900)


@pytest.mark.slow
def test_parity_explains_each_file_on_test_images_and_on_photos(tmp_path, cifar10_dir, session_cache):
    proc = _cli("parity", str(EDGE / "best.keras"), str(EDGE / "export"), "--limit", "300", "--data",
                str(cifar10_dir), "--report", str(tmp_path / "report"), "--json", cache=session_cache)
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout)
    rows = {row["format"]: row for row in result["files"]}
    for row in rows.values():  # the old keys stay, the new ones are there
        assert {"top1_agreement", "accuracy", "failures", "flip_count", "flips", "confidence_drift"} <= set(row)
        assert row["flip_count"] == round((1 - row["top1_agreement"]) * 300)
    int8 = rows["tflite-int8"]
    assert int8["layer_snr"]["reference"] == "model_float32.tflite" and int8["layer_snr"]["costliest"]["tensor"]
    assert "layer_snr" not in rows["onnx-int8"] and "layer_snr" not in rows["tflite"]
    assert [pair["files"] for pair in result["cross_runtime"]] == [["model_int8.tflite", "model_int8.onnx"]]
    assert result["data"]["kind"] == "test split" and result["data"]["labelled"] == 300
    for row in rows.values():
        if row["flip_count"]:
            assert Path(row["contact_sheet"]).is_file() and all(f["keras_margin"] >= 0 for f in row["flips"])
    assert json.loads((tmp_path / "report" / "parity.json").read_text())["files"][0]["file"] == result["files"][0]["file"]

    photos = _photo_tree(tmp_path / "photos")
    proc = _cli("parity", str(EDGE / "best.keras"), str(EDGE / "export"), "--data", str(photos), cache=session_cache)
    assert proc.returncode in (0, 1), proc.stderr
    assert "on 5 photos (3 of the model's classes, 2 of none)" in proc.stdout
    assert "model_int8.tflite vs model_int8.onnx: top-1 agreement" in proc.stdout
