"""scripts/arm64_smoke.py on the host: its JSON result and its cross-machine comparison (no qemu here)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cifar_edge.cli.formats import FILE_NAMES, format_of_file

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "arm64_smoke.py"
PER_CLASS = 2


def _load_module():
    spec = importlib.util.spec_from_file_location("arm64_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["arm64_smoke"] = module
    spec.loader.exec_module(module)
    return module


smoke = _load_module()


@pytest.fixture(scope="module")
def result_file(cifar10_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One host run of the CLI on the resnet8 exports, 2 images per class, in a fresh process (as under qemu:
    the script checks that TensorFlow was never imported, which other tests of this session may have done)."""
    out = tmp_path_factory.mktemp("arm64") / "x86_64.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "run", "--data", str(cifar10_dir), "--per-class",
                           str(PER_CLASS), "--models", "resnet8", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def test_selection_is_seeded_sorted_and_balanced(cifar10_dir: Path) -> None:
    classes, paths, labels = smoke.select_images(cifar10_dir, 3, seed=7)
    again = smoke.select_images(cifar10_dir, 3, seed=7)
    other = smoke.select_images(cifar10_dir, 3, seed=8)
    assert (classes, paths, labels) == again
    assert paths != other[1]
    assert len(classes) == 10 and len(paths) == 30
    assert labels == [i for i in range(10) for _ in range(3)]
    for path, label in zip(paths, labels):
        assert path.parent.name == classes[label] and path.is_file()


def test_selection_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(smoke.SmokeError, match="no test/ folder"):
        smoke.select_images(tmp_path, 2)
    (tmp_path / "test" / "cat").mkdir(parents=True)
    (tmp_path / "test" / "cat" / "0000.jpg").write_bytes(b"x")
    with pytest.raises(smoke.SmokeError, match="fewer than 2 per class"):
        smoke.select_images(tmp_path, 2)
    with pytest.raises(smoke.SmokeError, match="missing"):
        smoke.model_files(tmp_path, ("resnet8",))


def test_run_writes_the_documented_json(result_file: Path) -> None:
    result = smoke.load_result(result_file)
    n = 10 * PER_CLASS
    assert result["tensorflow_imported"] is False
    assert result["machine"]["machine"] and result["machine"]["python"].startswith("3.")
    assert set(result["machine"]["packages"]) == {"numpy", "pillow", "ai-edge-litert", "onnxruntime"}
    assert len(result["data"]["images"]) == n and len(result["data"]["labels"]) == n
    assert len(result["data"]["pixels_sha256"]) == 64
    expected = {f"models/resnet8/export/{name}" for name in FILE_NAMES}
    assert set(result["files"]) == expected
    for name, f in result["files"].items():
        assert f["backend"] == format_of_file(name).runtime
        assert len(f["top1"]) == n and len(f["probabilities"]) == n
        for top, probs in zip(f["top1"], f["probabilities"]):
            assert len(probs) == 10 and abs(sum(probs) - 1.0) < 0.05  # int8: 10 outputs, each within 1/256
            assert top == max(range(10), key=probs.__getitem__)
        assert f["accuracy"] == sum(t == y for t, y in zip(f["top1"], result["data"]["labels"])) / n
        assert f["accuracy"] >= 0.5  # a trained model on real test images, not noise
        assert f["load_s"] >= 0 and f["ms_per_image"] > 0


def test_compare_accepts_itself(result_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "cmp.json"
    assert smoke.main(["compare", str(result_file), str(result_file), "--json", str(report)]) == 0
    assert "OK: top-1 predictions identical" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["ok"] is True and len(data["files"]) == 4
    assert all(f["max_prob_diff"] == 0.0 and not f["mismatches"] for f in data["files"])


def test_compare_flags_an_altered_prediction(result_file: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    a = smoke.load_result(result_file)
    b = copy.deepcopy(a)
    b["machine"]["machine"] = "aarch64"
    name = "models/resnet8/export/model_int8.onnx"
    wrong = (a["files"][name]["top1"][3] + 1) % 10
    b["files"][name]["top1"][3] = wrong
    b["files"][name]["probabilities"][3][wrong] += 0.25
    other = "models/resnet8/export/model_float32.tflite"
    b["files"][other]["probabilities"][0][0] += 1e-6  # within tolerance: reported, not a failure
    cmp = smoke.compare_results(a, b)
    assert not cmp.ok and cmp.pixels_identical and not cmp.problems
    by_file = {f.file: f for f in cmp.files}
    assert [m["image"] for m in by_file[name].mismatches] == [a["data"]["images"][3]]
    assert by_file[name].max_prob_diff == pytest.approx(0.25)
    assert by_file[other].ok and by_file[other].max_prob_diff == pytest.approx(1e-6)

    altered = tmp_path / "arm64.json"
    altered.write_text(json.dumps(b))
    assert smoke.main(["compare", str(result_file), str(altered)]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.err
    assert f"mismatch: {name} {a['data']['images'][3]}" in captured.out


def test_compare_rejects_different_images_or_models(result_file: Path) -> None:
    a = smoke.load_result(result_file)
    b = copy.deepcopy(a)
    b["data"]["images"][0] = "test/cat/9999.jpg"
    assert "different image sets" in smoke.compare_results(a, b).problems[0]
    c = copy.deepcopy(a)
    c["files"]["models/resnet8/export/model_int8.tflite"]["sha256"] = "0" * 64
    c["data"]["pixels_sha256"] = "1" * 64
    cmp = smoke.compare_results(a, c)
    assert not cmp.ok and not cmp.pixels_identical
    assert any("different model file contents" in p for p in cmp.problems)


def test_cli_errors_exit_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert smoke.main(["compare", str(bad), str(bad)]) == 1
    assert "not a cifar-edge-arm64-smoke/1 smoke result" in capsys.readouterr().err
    assert smoke.main(["run", "--data", str(tmp_path), "--out", str(tmp_path / "x.json")]) == 1
    assert "no test/ folder" in capsys.readouterr().err
