"""Bundled models by name: Classifier("default"/"edge"), --model NAME, `cifar-edge models`, and the runtime fallback.

The bundled files are replaced whenever new models are shipped, so nothing here names their accuracy, size
or hash: every figure is read from the files (or their metadata) or compared between them.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_metadata import _field

from edge_sdk import BackendUnavailableError, Classifier, ModelLoadError
from edge_sdk import bundled
from edge_sdk.bundled import BUNDLED, DEFAULT, bundled_file, bundled_path, models_dir
from cifar_edge.cli import models as cli_models
from cifar_edge.cli.models import describe_bundled
from cifar_edge.cli.main import main
from edge_sdk.metadata import METADATA_KEY, read_metadata

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

REPO = Path(__file__).resolve().parents[1]
NAMES = tuple(BUNDLED)


@pytest.fixture(scope="module")
def images(cifar10_dir) -> list[Path]:
    """Five real test images per class (50)."""
    return [p for d in sorted((cifar10_dir / "test").iterdir()) for p in sorted(d.glob("*.jpg"))[:5]]


def top1(clf: Classifier, images: list[Path]) -> np.ndarray:
    return np.array([r.top.index for r in clf.classify_batch(images)])


# --------------------------------------------------------------------------- the table and its files
@pytest.mark.parametrize("name", NAMES)
def test_each_bundled_model_ships_a_tflite_and_an_onnx_file_of_one_network(name):
    files = [models_dir() / f for f in BUNDLED[name].files]
    assert sorted(p.suffix for p in files) == [".onnx", ".tflite"]
    metas = [read_metadata(p) for p in files]
    assert all(p.is_file() and p.stat().st_size > 0 for p in files)
    assert all(m is not None for m in metas), "a bundled file without metadata has no labels"
    # both files are exports of the same trained network, int8
    assert len({(m.model_name, m.model_version, m.spec) for m in metas}) == 1
    assert sorted(m.format for m in metas) == ["onnx-int8", "tflite-int8"]


def test_the_bundled_models_are_different_networks():
    tflites = {name: bundled_path(name, ".tflite").read_bytes() for name in NAMES}
    assert len(set(tflites.values())) == len(NAMES)
    assert {"default", "edge"} <= set(NAMES) and DEFAULT == "default"


def test_package_data_ships_every_bundled_file():
    import tomllib

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["edge_sdk"]
    for model in BUNDLED.values():
        for file in model.files:
            assert any(Path("models", file).match(p) for p in patterns), file


# --------------------------------------------------------------------------- names in the SDK
@pytest.mark.parametrize("name", NAMES)
def test_a_name_opens_the_file_this_host_runs_fastest(name, images):
    # both runtimes are installed here: the file measured fastest (edge_sdk.fastest, tests/test_host.py) opens
    fastest = bundled.ranked(name)[0][0].suffix
    with Classifier(name) as clf:
        assert clf.model_path == bundled_path(name, fastest) == bundled_file(name)
        assert clf.backend_name == {".tflite": "litert", ".onnx": "onnxruntime"}[fastest]
        assert clf.model_name == name  # the bundled name, whatever network the metadata names (edge: resnet8)
        by_name = top1(clf, images)
    with Classifier(str(bundled_path(name, fastest))) as by_path:  # a path still works
        np.testing.assert_array_equal(top1(by_path, images), by_name)


def test_no_model_is_the_default():
    with Classifier() as clf, Classifier(DEFAULT) as named:
        assert clf.model_path == named.model_path and clf.model_name == named.model_name


@pytest.mark.parametrize("name", NAMES)
def test_backend_picks_the_file_it_runs_and_both_files_agree(name, images):
    with Classifier(name, backend="onnxruntime") as onnx, Classifier(name, backend="litert") as tflite:
        assert onnx.model_path == bundled_path(name, ".onnx") and onnx.backend_name == "onnxruntime"
        assert tflite.model_path == bundled_path(name, ".tflite")
        assert onnx.labels == tflite.labels
        # two int8 quantizations of one network: the same answer on nearly every image
        assert (top1(onnx, images) == top1(tflite, images)).mean() >= 0.9
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        Classifier(name, backend="nope")


def test_only_a_string_is_a_name_and_an_unknown_word_says_which_names_exist(tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match=r"no bundled model is called 'edg' \(default, edge\)"):
        Classifier("edg")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "edge").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="unknown model type"):
        Classifier(Path("edge"))  # a Path is always a file
    assert Classifier("edge").model_path == bundled_file("edge")  # a str that is a name is the name


def test_benchmark_takes_a_name_too(capsys):
    assert main(["benchmark", "--model", "edge", "--runs", "3", "--warmup", "0", "--batch", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    path = bundled_file("edge")
    assert Path(result["model"]) == path and result["file_bytes"] == path.stat().st_size


# --------------------------------------------------------------------------- without one runtime or both
def test_without_a_tflite_runtime_a_name_opens_the_onnx(monkeypatch, images, capsys):
    with Classifier("edge", backend="litert") as tflite:
        expected = top1(tflite, images)
    monkeypatch.setattr(bundled, "installed_backends", lambda suffix: ("onnxruntime",) if suffix == ".onnx" else ())
    for name in NAMES:
        with Classifier(name) as clf:
            assert clf.model_path == bundled_path(name, ".onnx") and clf.backend_name == "onnxruntime"
    with Classifier() as clf:
        assert clf.model_path == bundled_path(DEFAULT, ".onnx")
    with Classifier("edge") as onnx:
        assert (top1(onnx, images) == expected).mean() >= 0.9
    assert main(["predict", str(images[0]), "--model", "edge", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert Path(out["model"]) == bundled_path("edge", ".onnx") and out["backend"] == "onnxruntime"


def test_without_any_runtime_the_error_names_both_extras(monkeypatch, images, capsys):
    monkeypatch.setattr(bundled, "installed_backends", lambda suffix: ())
    with pytest.raises(BackendUnavailableError) as info:
        Classifier()
    assert "cifar-edge[litert]" in str(info.value) and "cifar-edge[onnx]" in str(info.value)
    assert main(["predict", str(images[0]), "--model", "edge"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cifar-edge predict: error: no runtime for the bundled model 'edge'" in err
    assert "cifar-edge[litert]" in err and "cifar-edge[onnx]" in err


def test_an_onnx_only_process_classifies_with_the_bundled_default(images):
    """A fresh interpreter in which no TFLite runtime can be imported, as in an ``[onnx]``-only venv."""
    block = "import sys\nfor m in ('ai_edge_litert', 'tflite_runtime', 'tensorflow'{more}): sys.modules[m] = None\n"
    code = ("from edge_sdk import Classifier\nc = Classifier()\n"
            f"print(c.model_path.name, c.backend_name, c.classify({str(images[0])!r}).top.label)")
    proc = subprocess.run([sys.executable, "-c", block.format(more="") + code], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    with Classifier(DEFAULT, backend="onnxruntime") as onnx:
        label = onnx.classify(images[0]).top.label
    assert proc.stdout.split() == [bundled_path(DEFAULT, ".onnx").name, "onnxruntime", label]
    # and with no runtime at all, the command says what to install, in one line
    cli = "from cifar_edge.cli.main import main\nsys.exit(main(['predict', sys.argv[1]]))"
    proc = subprocess.run([sys.executable, "-c", block.format(more=", 'onnxruntime'") + cli, str(images[0])],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "cifar-edge[litert]" in proc.stderr and "cifar-edge[onnx]" in proc.stderr


def test_a_missing_bundled_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "models_dir", lambda: tmp_path)
    with pytest.raises(ModelLoadError, match="bundled model 'default' is missing from this installation"):
        Classifier()


# --------------------------------------------------------------------------- cifar-edge models
def test_models_lists_every_file_with_its_size_and_metadata(capsys):
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["models"]
    assert [m["name"] for m in listed] == list(NAMES)
    for model in listed:
        assert [f["file"] for f in model["files"]] == list(BUNDLED[model["name"]].files)
        assert model["opens"] == bundled_file(model["name"]).name == bundled.ranked(model["name"])[0][0].name
        for f in model["files"]:
            path = models_dir() / f["file"]
            meta = read_metadata(path)
            assert f["bytes"] == path.stat().st_size
            assert (f["model_name"], f["model_version"], f["format"]) == (meta.model_name, meta.model_version,
                                                                         meta.format)
            assert f["accuracy"] == cli_models.metadata_number(meta, cli_models.ACCURACY_KEYS)
            assert f["macs"] == cli_models.metadata_number(meta, cli_models.MACS_KEYS)
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for model in listed:
        for f in model["files"]:
            row = next(line for line in text.splitlines() if f["file"] in line)
            assert row.startswith("*" if f["file"] == model["opens"] else " ")
            assert f"{f['bytes'] / 1024:,.0f} KiB" in row and f["model_name"] in row and f["model_version"] in row
            if f["accuracy"] is None and f["macs"] is None:
                assert " - " in row


def test_models_shows_accuracy_and_macs_from_the_metadata(tmp_path, monkeypatch, capsys):
    """A bundled file whose metadata carries the figures (appended as a later metadata_props entry, which wins)."""
    source, tflite = bundled_path("edge", ".onnx"), bundled_path("edge", ".tflite")
    meta = read_metadata(source)
    figures = dataclasses.replace(meta, extra={**meta.extra, "accuracy": 0.8123, "macs": 12_345_678})
    entry = _field(14, _field(1, METADATA_KEY.encode()) + _field(2, figures.to_json().encode()))
    (tmp_path / source.name).write_bytes(source.read_bytes() + entry)
    monkeypatch.setattr(bundled, "models_dir", lambda: tmp_path)
    monkeypatch.setattr(bundled, "installed_backends", lambda suffix: ("onnxruntime",) if suffix == ".onnx" else ())
    edge = {m["name"]: m for m in describe_bundled()}["edge"]
    assert edge["opens"] == source.name and edge["files"][0]["accuracy"] == 0.8123
    assert edge["files"][0]["macs"] == 12_345_678
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if source.name in line)
    assert "81.23%" in row and "12.35 M" in row and row.startswith("*")
    assert "default  (missing)" in text  # the default's files are not in this folder
    shutil.copy(tflite, tmp_path)  # now the .tflite is there, but no runtime runs it
    monkeypatch.setattr(bundled, "installed_backends", lambda suffix: ())
    assert main(["models"]) == 0
    assert "no runtime for 'edge' is installed: pip install 'cifar-edge[litert]' or pip install 'cifar-edge[onnx]'" in \
        capsys.readouterr().out
