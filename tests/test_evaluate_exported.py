"""``cifar-edge evaluate`` on exported .tflite/.onnx files: through the SDK, without TensorFlow (issue 17)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_training import REPO, cli

#: a float resnet8 (the network of ``edge``) with its float and post-training int8 exports; the shipped ``edge`` is
#: quantization-aware (train/qat.py) and exports int8 files only
EDGE = REPO / "models" / "resnet8"
LIMIT = "400"


def _evaluate(model: Path | str, cifar10_dir: Path, cache: Path, *extra: str) -> dict:
    proc = cli("evaluate", str(model), "--data", str(cifar10_dir), "--limit", LIMIT, "--json", *extra, cache=cache)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_float_exports_score_as_the_keras_model(cifar10_dir, session_cache):
    keras_result = _evaluate(EDGE / "best.keras", cifar10_dir, session_cache)
    assert keras_result["runtime"] == "keras"
    for name, runtime in (("model_float32.tflite", "litert"), ("model_float32.onnx", "onnxruntime")):
        result = _evaluate(EDGE / "export" / name, cifar10_dir, session_cache)
        assert result["runtime"] == runtime
        assert result["images"] == keras_result["images"] == int(LIMIT)
        assert result["class_names"] == keras_result["class_names"]
        # float exports: the same predictions up to float rounding on a near-tie
        diff = sum(abs(a - b) for ra, rb in zip(result["confusion_matrix"], keras_result["confusion_matrix"])
                   for a, b in zip(ra, rb))
        assert diff <= 2, (name, result["accuracy"], keras_result["accuracy"])
        assert result["loss"] == pytest.approx(keras_result["loss"], abs=1e-3)


def test_exported_file_is_evaluated_without_tensorflow(cifar10_dir, session_cache, tmp_path):
    # tensorflow and keras made unimportable: the SDK path must not need them
    code = (
        "import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "from cifar_edge.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    model = EDGE / "export" / "model_int8.tflite"
    proc = subprocess.run([sys.executable, "-c", code, "evaluate", str(model), "--data", str(cifar10_dir),
                           "--limit", "200", "--cache-dir", str(session_cache)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "(200 images): accuracy" in lines[0] and "model_int8.tflite" in lines[0]
    accuracy = float(lines[0].split("accuracy ")[1].split(",")[0])
    assert accuracy > 0.6  # the shipped edge model scores ~81%: far above chance (10%)
    header = next(line for line in lines if line.startswith("class"))
    assert header.split()[:3] == ["class", "accuracy", "airp"]  # headed confusion columns
    assert any("rows = true class, columns = predicted class" in line for line in lines)


def test_label_mismatch_names_both_label_sets_and_suggests_data(tmp_path, cifar10_dir, session_cache):
    own = tmp_path / "mydata"
    for split in ("train", "test"):
        for name in ("apple", "pear"):
            folder = own / split / name
            folder.mkdir(parents=True)
            for source in sorted((cifar10_dir / "test" / "cat").glob("*.jpg"))[:2]:
                shutil.copy(source, folder / source.name)
    proc = cli("evaluate", str(EDGE / "export" / "model_int8.onnx"), "--data", str(own), cache=session_cache)
    assert proc.returncode == 2
    message = proc.stderr.strip()
    assert "apple, pear" in message and "The model's labels are: airplane, automobile" in message
    assert "--data DIR" in message and len(message.splitlines()) == 1


def test_backend_option_is_refused_for_a_keras_model(cifar10_dir, session_cache):
    proc = cli("evaluate", str(EDGE / "best.keras"), "--backend", "onnxruntime", "--data", str(cifar10_dir),
               cache=session_cache)
    assert proc.returncode == 2 and "exported .tflite/.onnx" in proc.stderr
