"""The rough edges a new user's first hour found (issue 27, item 5): broken pipes, URLs as images, the
bundled names, the accuracy `cifar-edge models` shows, classify_batch with a bad item, runtime log lines,
Timing's repr and the docs' statement of the server's no-token rule."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_metadata import _field

from edge_sdk import Classifier, InvalidArgumentError, InvalidImageError, ModelLoadError
from edge_sdk import bundled
from edge_sdk.bundled import bundled_path
from cifar_edge.cli.models import describe_bundled
from edge_sdk.classifier import Timing
from cifar_edge.cli.main import EXIT_BROKEN_PIPE, main
from edge_sdk.metadata import METADATA_KEY, read_metadata

pytestmark = pytest.mark.sdk  # runs in the SDK-only venv too (scripts/test_sdk.sh)

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cifar_edge.cli"]  # the console script's own entry point (cifar_edge.cli.main.run)
URL_ERROR = "URLs are not supported; download the picture first"


@pytest.fixture(scope="module")
def edge() -> Classifier:
    with Classifier("edge") as clf:
        yield clf


@pytest.fixture(scope="module")
def pictures(cifar10_dir) -> list[Path]:
    """One real test picture per class."""
    return [sorted(d.glob("*.jpg"))[0] for d in sorted((cifar10_dir / "test").iterdir())]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


# --------------------------------------------------------------------------- broken pipes
@pytest.mark.parametrize("args", [("models",), ("train", "--list-models"), ("predict", "{cat}", "--model", "edge")],
                         ids=["models", "train-list-models", "predict-folder"])
def test_a_reader_that_leaves_ends_the_command_quietly(args, cifar10_dir):
    """stdout's reader is gone before the command writes: no "error: Broken pipe", no traceback."""
    args = [a.format(cat=cifar10_dir / "test" / "cat") for a in args]
    read, write = os.pipe()
    os.close(read)  # the reader has left (as `head -1` has, once it has its line)
    try:
        proc = subprocess.run([*CLI, *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=300, cwd=REPO)
    finally:
        os.close(write)
    assert proc.stderr == ""
    assert proc.returncode in (0, EXIT_BROKEN_PIPE) and EXIT_BROKEN_PIPE == 141


def test_predict_piped_into_head_prints_its_first_line_and_nothing_on_stderr(cifar10_dir):
    folder = cifar10_dir / "test" / "cat"  # 1,000 pictures: more output than a pipe holds
    command = f"set -o pipefail; {' '.join(CLI)} predict '{folder}' --model edge | head -1"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.stdout.startswith("model edge (") and proc.stdout.count("\n") == 1
    assert proc.stderr == "" and proc.returncode in (0, EXIT_BROKEN_PIPE)


# --------------------------------------------------------------------------- URLs
@pytest.mark.parametrize("url", ["https://example.com/cat.jpg", "http://192.0.2.1/cat.png", "ftp://example.com/x.jpg",
                                 "HTTPS://EXAMPLE.COM/CAT.JPG", Path("https://example.com/cat.jpg")])
def test_a_url_is_refused_with_one_line_that_says_url(edge, url):
    with pytest.raises(InvalidImageError) as caught:
        edge.classify(url)
    message = str(caught.value)
    assert message.startswith(URL_ERROR) and "\n" not in message and "not found" not in message
    with pytest.raises(InvalidImageError, match=re.escape(URL_ERROR)):
        edge.classify_batch([url])


def test_a_file_whose_name_only_looks_odd_is_still_a_file(edge, tmp_path, pictures):
    odd = tmp_path / "http_cat.jpg"  # not a URL: no scheme
    shutil.copy(pictures[3], odd)
    assert edge.classify(str(odd)).categories == edge.classify(pictures[3]).categories


def test_predict_a_url_is_one_error_line(pictures):
    proc = cli("predict", "https://example.com/cat.jpg", str(pictures[0]), "--model", "edge")
    assert proc.returncode == 2
    assert proc.stderr == f"cifar-edge predict: error: {URL_ERROR}: https://example.com/cat.jpg\n"
    assert str(pictures[0]) in proc.stdout  # the other picture is still classified


# --------------------------------------------------------------------------- one name: edge
def test_the_bundled_edge_model_is_called_edge_everywhere(pictures):
    with Classifier("edge") as clf:
        assert clf.model_name == "edge" and read_metadata(clf.model_path).model_name != "edge"  # network: resnet8
    proc = cli("predict", str(pictures[0]), "--model", "edge")
    assert proc.returncode == 0 and proc.stdout.startswith("model edge (") and "resnet8" not in proc.stdout
    out = json.loads(cli("predict", str(pictures[0]), "--model", "edge", "--json").stdout)
    assert out["model_name"] == "edge"
    bench = json.loads(cli("benchmark", "--model", "edge", "--runs", "3", "--warmup", "0", "--batch", "2",
                           "--json").stdout)
    assert bench["model_name"] == "edge"


def test_a_copy_of_a_bundled_file_elsewhere_keeps_its_metadata_name(tmp_path):
    copy = tmp_path / "edge_int8.tflite"
    shutil.copy(bundled_path("edge", ".tflite"), copy)
    with Classifier(copy) as clf:
        assert clf.model_name == read_metadata(copy).model_name


def test_the_network_name_is_refused_with_the_bundled_name_to_use(pictures):
    network = read_metadata(bundled_path("edge", ".tflite")).model_name
    with pytest.raises(ModelLoadError, match=f"{network!r} is the network of the bundled model 'edge': use 'edge'"):
        Classifier(network)
    proc = cli("predict", str(pictures[0]), "--model", network)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "use 'edge'" in proc.stderr
    with pytest.raises(ModelLoadError, match="give a bundled name or a .tflite/.onnx path"):
        Classifier("nonesuch")


# --------------------------------------------------------------------------- cifar-edge models: the file's accuracy
def test_models_shows_the_files_own_accuracy_apart_from_the_keras_one(tmp_path, monkeypatch, capsys):
    source = bundled_path("edge", ".onnx")
    meta = read_metadata(source)
    figures = dataclasses.replace(meta, extra={**meta.extra, "accuracy": 0.8123, "test_accuracy": 0.8456,
                                               "test_images": 10_000})
    entry = _field(14, _field(1, METADATA_KEY.encode()) + _field(2, figures.to_json().encode()))
    (tmp_path / source.name).write_bytes(source.read_bytes() + entry)  # a later metadata_props entry wins
    monkeypatch.setattr(bundled, "models_dir", lambda: tmp_path)
    listed = {m["name"]: m for m in describe_bundled()}["edge"]["files"][0]
    assert (listed["accuracy"], listed["source_accuracy"], listed["accuracy_images"]) == (0.8123, 0.8456, 10_000)
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if "file acc" in line)
    row = next(line for line in text.splitlines() if source.name in line)
    assert header.index("file acc") < header.index("Keras acc")
    assert row.index("81.23%") < row.index("84.56%")  # the file's own first, under its own heading
    assert "Keras acc: its source model's" in text


def test_a_file_without_its_own_accuracy_shows_a_dash_not_the_keras_figure(capsys):
    for model in describe_bundled():
        for f in model["files"]:
            meta = read_metadata(bundled.models_dir() / f["file"])
            assert f["accuracy"] == meta.extra.get("accuracy")  # never the source's test_accuracy in its place
    assert main(["models", "--json"]) == 0
    assert all("source_accuracy" in f for m in json.loads(capsys.readouterr().out)["models"] for f in m["files"])


# --------------------------------------------------------------------------- classify_batch(errors=)
def test_classify_batch_skip_gives_none_for_a_bad_item_and_keeps_the_others(edge, pictures):
    bgr = np.random.default_rng(0).integers(0, 256, (48, 40, 3), np.uint8)
    batch = [pictures[0], b"not a picture", bgr, "https://example.com/x.jpg", pictures[1]]
    results = edge.classify_batch(batch, errors="skip", color="bgr")
    assert [r is None for r in results] == [False, True, False, True, False]
    assert results[0].categories == edge.classify(pictures[0]).categories
    assert results[2].categories == edge.classify(bgr, color="bgr").categories  # swapped once, not twice
    assert results[4].categories == edge.classify(pictures[1]).categories
    assert all(r.timing.preprocess_ms > 0 for r in results if r is not None)
    with pytest.raises(InvalidImageError, match="image 1 of the batch"):
        edge.classify_batch(batch)  # "raise" stays the default


def test_classify_batch_skip_over_several_chunks_and_all_bad(pictures):
    with Classifier("edge") as clf:
        clf.batch_chunk = 3
        items = [p if i % 4 else b"" for i, p in enumerate(pictures)]  # positions 0, 4, 8 are bad
        got = clf.classify_batch((x for x in items), errors="skip")
        assert [i for i, r in enumerate(got) if r is None] == [0, 4, 8]
        assert [r.top.index for r in got if r] == [r.top.index for r in clf.classify_batch(
            [p for i, p in enumerate(pictures) if i % 4])]
        assert clf.classify_batch([b"", b"x"], errors="skip") == [None, None]
        assert clf.classify_batch([], errors="skip") == []
    with pytest.raises(InvalidArgumentError, match="errors must be one of 'raise', 'skip'"):
        Classifier("edge").classify_batch(pictures, errors="ignore")


# --------------------------------------------------------------------------- runtime log lines
def test_the_commands_print_no_runtime_log_line_unless_verbose(pictures):
    library = subprocess.run([sys.executable, "-c", "from edge_sdk import Classifier; Classifier('edge')"],
                             capture_output=True, text=True, timeout=120)
    for args in (("models",), ("predict", str(pictures[0]), "--model", "edge"),
                 ("benchmark", "--model", "edge", "--runs", "2", "--warmup", "0", "--batch", "2")):
        proc = cli(*args)
        assert proc.returncode == 0 and proc.stderr == "", (args, proc.stderr)
    if "XNNPACK" in library.stderr:  # the runtime does print it: -v lets it through
        assert "XNNPACK" in cli("-v", "predict", str(pictures[0]), "--model", "edge", "--backend", "litert").stderr


def test_models_piped_into_head_prints_nothing_on_stderr():
    command = f"{' '.join(CLI)} models | head -1"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.stdout.startswith("bundled models in") and proc.stderr == ""


# --------------------------------------------------------------------------- Timing repr
def test_timing_repr_is_rounded_and_the_fields_are_not():
    timing = Timing(1 / 3, 2 / 3, 0.1)
    assert repr(timing) == "Timing(preprocess_ms=0.333, inference_ms=0.667, postprocess_ms=0.100)"
    assert timing.preprocess_ms == 1 / 3 and timing.total_ms == pytest.approx(1.1)
    assert "Timing(preprocess_ms=" in repr(Classifier("edge").classify(np.zeros((32, 32, 3), np.uint8)))
