"""Conversion: four formats from one Keras model, metadata inside, parity with Keras on real test images."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edge_sdk import Classifier
from edge_sdk.spec import PreprocessSpec
from edge_sdk.metadata import read_metadata, tflite_metadata_entry

pytestmark = pytest.mark.slow

from conftest import VALIDATION_IMAGES


def test_every_format_is_written_and_listed(exported):
    out, manifest = exported
    files = {f["format"]: f for f in manifest["files"]}
    assert set(files) == {"tflite", "tflite-int8", "onnx", "onnx-int8"}
    for fmt, entry in files.items():
        path = out / entry["file"]
        assert path.stat().st_size == entry["bytes"] > 0
        assert entry["validation"]["images"] == VALIDATION_IMAGES
        assert len(entry["sha256"]) == 64
    assert files["tflite-int8"]["input_dtype"] == "int8" and files["tflite-int8"]["output_dtype"] == "int8"
    assert files["tflite"]["input_dtype"] == "float32"
    # int8 weights: the int8 files are much smaller than the float ones
    assert files["tflite-int8"]["bytes"] < 0.45 * files["tflite"]["bytes"]
    assert files["onnx-int8"]["bytes"] < 0.6 * files["onnx"]["bytes"]
    assert files["onnx-int8"]["calibration"]["split"] == "train"
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(manifest))
    assert not [p.name for p in out.iterdir() if ".part" in p.name]


def test_int8_tflite_folds_normalization_into_input_quantization(exported):
    out, manifest = exported
    entry = next(f for f in manifest["files"] if f["format"] == "tflite-int8")
    q = entry["input_quantization"]
    assert q["scale"] == pytest.approx(1 / 255, rel=1e-3) and q["zero_point"] == -128


def test_float_exports_match_keras(exported):
    _, manifest = exported
    for entry in manifest["files"]:
        if entry["format"] in ("tflite", "onnx"):
            v = entry["validation"]
            assert v["top1_agreement"] >= 0.999, entry["format"]
            assert v["max_abs_prob_diff"] <= 1e-4, entry["format"]
            assert entry["failures"] == []


def test_int8_exports_stay_close_to_keras(exported):
    # The bars for the shipped model: >= 99% top-1 agreement, <= 0.5 accuracy points lost.
    _, manifest = exported
    int8 = [entry for entry in manifest["files"] if entry["format"].endswith("int8")]
    assert {entry["format"] for entry in int8} == {"tflite-int8", "onnx-int8"}
    for entry in int8:
        v = entry["validation"]
        assert v["top1_agreement"] >= 0.99, (entry["format"], v)
        assert v["accuracy_drop"] <= 0.005, (entry["format"], v)


def test_metadata_round_trips_in_every_format(exported, source_model):
    from cifar_edge.convert.converter import sha256_file

    out, manifest = exported
    spec = json.loads((source_model.parent / "spec.json").read_text())
    for entry in manifest["files"]:
        meta = read_metadata(out / entry["file"])
        assert meta is not None, entry["file"]
        assert meta.format == entry["format"]
        # the source's spec, with the unknown rule convert calibrated (keeps 95% of the validation images)
        expected = PreprocessSpec.from_dict(spec).merged({"unknown_threshold": manifest["unknown"]["threshold"],
                                                          "unknown_score": "certainty"})  # convert's default score
        assert meta.spec == expected and manifest["unknown"]["score"] == "certainty"
        assert 0.0 < manifest["unknown"]["threshold"] < 1.0 and manifest["unknown"]["keep"] == 0.95
        assert meta.source_sha256 == sha256_file(source_model)
        assert meta.model_name and meta.model_version and meta.created
        assert "tensorflow" in meta.converter or "tensorflow-cpu" in meta.converter
        # the file's own accuracy as validated (what `cifar-edge models` shows), beside its Keras source's
        assert meta.extra["accuracy"] == round(entry["validation"]["accuracy"], 4), entry["file"]
        assert meta.extra["test_accuracy"] == pytest.approx(entry["validation"]["keras_accuracy"], abs=1e-4)
        assert meta.extra["test_images"] == entry["validation"]["images"]
    tflite = (out / "model_int8.tflite").read_bytes()
    assert all(tflite_metadata_entry(tflite, name) for name in ("min_runtime_version", "cifar_edge"))


def test_exports_load_in_stock_runtimes(exported, cifar10_dir):
    """Stock LiteRT, tf.lite and onnxruntime load the files with metadata unchanged and agree with each other."""
    import onnxruntime as ort
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    out, _ = exported
    x = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    litert = Interpreter(model_path=str(out / "model_float32.tflite"))
    tflite = tf.lite.Interpreter(model_path=str(out / "model_float32.tflite"))
    results = []
    for interpreter in (litert, tflite):
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        results.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    session = ort.InferenceSession(str(out / "model_float32.onnx"), providers=["CPUExecutionProvider"])
    results.append(session.run(None, {session.get_inputs()[0].name: x})[0])
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], atol=1e-5)
    int8 = Interpreter(model_path=str(out / "model_int8.tflite"))
    int8.allocate_tensors()
    assert int8.get_input_details()[0]["dtype"] == np.int8
    assert Classifier(out / "model_int8.onnx").probabilities(np.zeros((32, 32, 3), np.uint8)).shape == (10,)


def _cli(*args, cache):
    env = {**os.environ, "CIFAR_EDGE_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "cifar_edge.cli", *args], capture_output=True, text=True, env=env, timeout=900)


def test_parity_cli_passes_and_fails_on_thresholds(exported, source_model, cifar10_dir, session_cache):
    out, _ = exported
    ok = _cli("parity", str(source_model), str(out), "--limit", "500", "--min-agreement", "0.95",
              "--max-accuracy-drop", "0.02", "--json", cache=session_cache)
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["passed"] and result["images"] == 500 and len(result["files"]) == 4
    strict = _cli("parity", str(source_model), str(out), "--limit", "500", "--min-int8-agreement", "1.0",
                  cache=session_cache)
    assert strict.returncode == 1
    assert "FAIL: agreement" in strict.stdout


def test_convert_cli_prints_one_json_object(tmp_path, source_model, session_cache, cifar10_dir):
    out = tmp_path / "cli-export"
    proc = _cli("convert", str(source_model), "--out", str(out), "--formats", "tflite,onnx", "--limit", "200",
                "--calib-size", "50", "--data", str(cifar10_dir), "--json", cache=session_cache)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)  # TensorFlow's export chatter must not reach stdout
    assert [f["format"] for f in manifest["files"]] == ["tflite", "onnx"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model_float32.onnx", "model_float32.tflite"]
    # an export that misses its bar is written (to inspect) but the command exits 1, as parity does
    strict = _cli("convert", str(source_model), "--out", str(tmp_path / "strict"), "--formats", "tflite",
                  "--limit", "200", "--calib-size", "50", "--data", str(cifar10_dir), "--max-prob-diff", "0",
                  cache=session_cache)
    assert strict.returncode == 1, strict.stderr
    assert "FAIL: max |dp|" in strict.stdout and (tmp_path / "strict" / "model_float32.tflite").is_file()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["convert", "{tmp}/missing.keras", "--out", "{tmp}/o"], "model file not found"),
        (["convert", "{tmp}/notes.keras", "--out", "{tmp}/o"], "cannot load Keras model"),
        (["convert", "{model}", "--out", "{tmp}/o", "--formats", "tflite,coreml"], "unknown format(s) coreml"),
        (["convert", "{model}", "--out", "{tmp}/o", "--data", "{tmp}/nodata"], "does not exist"),
        (["convert", "{model}", "--out", "{tmp}/o", "--calib-size", "0"], "--calib-size must be >= 1"),
        (["parity", "{model}", "{tmp}"], "no exported models"),
    ],
)
def test_convert_errors_are_one_line_and_write_nothing(tmp_path, source_model, session_cache, args, fragment):
    (tmp_path / "notes.keras").write_text("not a model")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{model}", str(source_model)) for a in args]
    proc = _cli(*argv, cache=session_cache)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    out = tmp_path / "o"
    assert not out.exists() or not any(out.iterdir())


def test_judge_counts_exact_boundaries_as_passing():
    from cifar_edge.convert.parity import Thresholds, judge

    at_bar = {"top1_agreement": 990 / 1000, "accuracy_drop": 855 / 1000 - 850 / 1000}
    assert at_bar["accuracy_drop"] > 0.005  # the float subtraction overshoots the bar...
    assert judge("tflite-int8", at_bar, Thresholds()) == []  # ...but 5 images of 1,000 is exactly 0.5 points
    below = {"top1_agreement": 989 / 1000, "accuracy_drop": 856 / 1000 - 850 / 1000}
    assert len(judge("onnx-int8", below, Thresholds())) == 2


def test_parity_checks_the_metadata_users_read_back(tmp_path, cifar10_dir, session_cache):
    # Validation goes through edge_sdk.Classifier: a file whose embedded labels are wrong (a
    # metadata-embedding bug) fails its check even though its tensors are the right ones.
    from dataclasses import replace
    from pathlib import Path

    from cifar_edge.convert.embed import embed_metadata

    edge = Path(__file__).resolve().parents[1] / "models" / "resnet8"  # float exports (the shipped edge is QAT)
    source = edge / "export" / "model_float32.onnx"
    meta = read_metadata(source)
    labels = list(meta.spec.labels)
    labels[3], labels[5] = labels[5], labels[3]  # cat <-> dog
    broken = replace(meta, spec=replace(meta.spec, labels=tuple(labels)))
    out = tmp_path / "export"
    out.mkdir()
    (out / "model_float32.onnx").write_bytes(embed_metadata(source.read_bytes(), broken))
    proc = _cli("parity", str(edge / "best.keras"), str(out), "--limit", "200", "--data", str(cifar10_dir), "--json",
                cache=session_cache)
    assert proc.returncode == 1, proc.stderr
    row = json.loads(proc.stdout)["files"][0]
    assert row["metadata_mismatch"] == ["labels"]
    assert any("embedded metadata differs from the model's in: labels" in f for f in row["failures"])
    good = tmp_path / "good"
    good.mkdir()
    (good / "model_float32.onnx").write_bytes(source.read_bytes())
    ok = _cli("parity", str(edge / "best.keras"), str(good), "--limit", "200", "--data", str(cifar10_dir), "--json",
              cache=session_cache)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["files"][0]["metadata_mismatch"] == []
