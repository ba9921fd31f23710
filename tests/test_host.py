"""The fastest file for the host: a bundled name opens the file measured fastest here (edge_sdk.fastest), the
ranking cached on disk, and `benchmark --all`.

The timing function is replaced by injected timings wherever the pick is asserted, so every rule is checked on any
machine; the timings `benchmark --all` prints are figures, never asserted. The cache folder is the test's own
(tests/conftest.py points $CIFAR_EDGE_CACHE into tmp_path).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge_sdk import Classifier, bundled, fastest
from edge_sdk.bundled import BUNDLED, bundled_file, bundled_path
from cifar_edge.cli.benchmark import cpu_model, variants
from cifar_edge.cli.main import main

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

X86_AVX2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
BACKEND = {".tflite": "litert", ".onnx": "onnxruntime"}


@pytest.fixture
def timings(monkeypatch):
    """``timings({".onnx": 1.0, ".tflite": 2.0})``: the milliseconds the timing function reports for each file
    suffix from now on, in a process that has measured nothing yet; returns the list of calls it gets."""
    monkeypatch.setattr(fastest, "_ranked", {})
    calls: list[list[tuple[Path, str]]] = []

    def inject(by_suffix: dict[str, float]) -> list[list[tuple[Path, str]]]:
        def measure(candidates):
            calls.append(list(candidates))
            return {path.name: by_suffix[path.suffix] for path, _ in candidates}
        monkeypatch.setattr(fastest, "measure", measure)
        return calls
    return inject


def cache_file(name: str) -> Path:
    return Path(os.environ["CIFAR_EDGE_CACHE"]) / f"fastest-{name}.json"


@pytest.mark.parametrize("faster", [".onnx", ".tflite"])
@pytest.mark.parametrize("name", tuple(BUNDLED))
def test_a_bundled_name_opens_the_file_measured_fastest(timings, faster, name):
    slower = ".tflite" if faster == ".onnx" else ".onnx"
    calls = timings({faster: 0.5, slower: 0.6})
    assert bundled_file(name) == bundled_path(name, faster)
    with Classifier(name) as clf:
        assert clf.model_path == bundled_path(name, faster) and clf.backend_name == BACKEND[faster]
    # each file timed once, on the backend a plain Classifier opens it with
    assert len(calls) == 1 and sorted(calls[0]) == sorted((bundled_path(name, s), BACKEND[s]) for s in (faster, slower))
    assert bundled.ranked(name) == ([bundled_path(name, faster), bundled_path(name, slower)], "measured now")
    # the variants `benchmark --all` measures: the chosen file first, every installed runtime of each file
    listed = variants(name)
    assert listed[0] == (bundled_path(name, faster), BACKEND[faster])
    assert {path.suffix for path, _ in listed} == {".tflite", ".onnx"}
    # backend= and an explicit path always win over the measurement
    with Classifier(name, backend=BACKEND[slower]) as forced, Classifier(bundled_path(name, slower)) as by_path:
        assert forced.model_path == by_path.model_path == bundled_path(name, slower)


def test_the_ranking_is_written_once_and_reused(timings):
    calls = timings({".onnx": 0.2, ".tflite": 0.1})
    assert bundled_file("edge") == bundled_path("edge", ".tflite") and len(calls) == 1
    saved = json.loads(cache_file("edge").read_text())
    assert saved["order"] == ["edge_int8.tflite", "edge_int8.onnx"] and saved["key"] == fastest.cache_key(
        "edge", [(bundled_path("edge", s), BACKEND[s]) for s in (".tflite", ".onnx")])
    assert [p.name for p in Path(os.environ["CIFAR_EDGE_CACHE"]).iterdir()] == ["fastest-edge.json"]  # no temp file
    # the same process asks again: neither timed nor read again
    cache_file("edge").unlink()
    assert bundled_file("edge") == bundled_path("edge", ".tflite") and len(calls) == 1
    # a new process (an empty in-process table) reads the file instead of timing, which would now pick the .onnx
    cache_file("edge").write_text(json.dumps(saved))
    timings({".onnx": 0.1, ".tflite": 0.2})
    fastest._ranked.clear()
    assert bundled.ranked("edge") == ([bundled_path("edge", ".tflite"), bundled_path("edge", ".onnx")],
                                      f"cached in {cache_file('edge')}")
    assert len(calls) == 1


@pytest.mark.parametrize("content", [
    b"not json",
    b"",
    b"[" * 70_000,  # over 64 KiB (and nested too deep)
    b'{"key": "%s", "order": ["edge_int8.tflite", "edge_int8.onnx"], "pad": "' + b" " * 70_000 + b'"}',  # over 64 KiB
    b'{"key": "another machine", "order": ["edge_int8.tflite", "edge_int8.onnx"]}',
    b'{"key": "%s", "order": ["../../etc/passwd", "edge_int8.onnx"]}',  # it only orders the bundled files
    b'{"key": "%s", "order": ["edge_int8.tflite"]}',
    b'{"key": "%s", "order": ["edge_int8.tflite", "edge_int8.tflite"]}',
    b'{"key": "%s", "order": "edge_int8.tflite"}',
    b'{"key": "%s", "order": [1, {"a": 2}]}',
    b'["edge_int8.tflite", "edge_int8.onnx"]',
])
def test_a_cache_file_not_to_trust_is_measured_again_and_rewritten(timings, content):
    key = fastest.cache_key("edge", [(bundled_path("edge", s), BACKEND[s]) for s in (".tflite", ".onnx")])
    cache_file("edge").parent.mkdir(parents=True)
    cache_file("edge").write_bytes(content.replace(b"%s", key.encode()))
    calls = timings({".onnx": 0.1, ".tflite": 0.2})  # the bad files all name the .tflite first
    assert bundled.ranked("edge") == ([bundled_path("edge", ".onnx"), bundled_path("edge", ".tflite")], "measured now")
    assert len(calls) == 1
    assert json.loads(cache_file("edge").read_text()) == {"key": key, "order": ["edge_int8.onnx", "edge_int8.tflite"],
                                                          "ms": {"edge_int8.onnx": 0.1, "edge_int8.tflite": 0.2}}


def test_a_cache_from_another_cpu_or_other_files_is_measured_again(timings, monkeypatch, tmp_path):
    calls = timings({".onnx": 0.1, ".tflite": 0.2})
    bundled_file("edge")
    (tmp_path / "cpuinfo").write_text(X86_AVX2)
    monkeypatch.setattr(fastest, "CPUINFO", tmp_path / "cpuinfo")
    fastest._ranked.clear()
    bundled_file("edge")
    assert len(calls) == 2  # another CPU: another key
    fastest._ranked.clear()
    bundled_file("edge")
    assert len(calls) == 2  # ... then cached under it
    other = tmp_path / "models"
    other.mkdir()
    for file in BUNDLED["edge"].files:
        (other / file).write_bytes(bundled_path("edge", Path(file).suffix).read_bytes() + b"\0")
    monkeypatch.setattr(bundled, "models_dir", lambda: other)
    fastest._ranked.clear()
    assert bundled_file("edge") == other / "edge_int8.onnx" and len(calls) == 3  # other bytes: another key


@pytest.mark.parametrize("where", ["a file", "a folder"])
def test_a_cache_that_cannot_be_written_still_picks(timings, monkeypatch, tmp_path, where):
    if where == "a file":  # the cache "folder" is a file: nothing can be made in it
        (tmp_path / "not-a-folder").write_text("x")
        monkeypatch.setenv("CIFAR_EDGE_CACHE", str(tmp_path / "not-a-folder"))
    else:  # the cache file's name is taken by a folder
        cache_file("edge").mkdir(parents=True)
    calls = timings({".onnx": 0.2, ".tflite": 0.1})
    assert bundled_file("edge") == bundled_path("edge", ".tflite")
    assert bundled_file("edge") == bundled_path("edge", ".tflite") and len(calls) == 1  # kept in the process
    fastest._ranked.clear()
    assert bundled_file("edge") == bundled_path("edge", ".tflite") and len(calls) == 2  # no file to read back
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_no_home_folder_means_no_cache_file(timings, monkeypatch):
    monkeypatch.delenv("CIFAR_EDGE_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: (_ for _ in ()).throw(RuntimeError("no home"))))
    calls = timings({".onnx": 0.1, ".tflite": 0.2})
    assert bundled_file("default") == bundled_path("default", ".onnx") and len(calls) == 1


def test_the_cache_folder_follows_xdg_cache_home(timings, monkeypatch, tmp_path):
    monkeypatch.delenv("CIFAR_EDGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    timings({".onnx": 0.1, ".tflite": 0.2})
    bundled_file("edge")
    assert json.loads((tmp_path / "xdg" / "cifar-edge" / "fastest-edge.json").read_text())["order"][0] == "edge_int8.onnx"


def test_backend_and_paths_bypass_measuring(timings):
    calls = timings({".onnx": 0.1, ".tflite": 0.2})
    for name in BUNDLED:
        assert bundled_file(name, "litert") == bundled_path(name, ".tflite")
        with Classifier(name, backend="onnxruntime") as by_backend, Classifier(str(bundled_path(name, ".tflite"))) as by_path:
            assert by_backend.model_path == bundled_path(name, ".onnx")
            assert by_path.model_path == bundled_path(name, ".tflite")
    assert calls == [] and not cache_file("edge").exists()


@pytest.mark.parametrize("value", ["0", "off"])
def test_measuring_can_be_turned_off(timings, monkeypatch, value):
    monkeypatch.setenv("CIFAR_EDGE_MEASURE", value)
    calls = timings({".onnx": 0.1, ".tflite": 0.2})
    for name in BUNDLED:
        first = bundled_path(name, Path(BUNDLED[name].files[0]).suffix)  # the file order in BUNDLED
        assert bundled_file(name) == first and Classifier(name).model_path == first
        assert bundled.ranked(name)[1] == "file order (CIFAR_EDGE_MEASURE=0)"
    assert calls == [] and not Path(os.environ["CIFAR_EDGE_CACHE"]).exists()


def test_one_runnable_file_is_not_measured(timings, monkeypatch):
    calls = timings({".onnx": 0.1, ".tflite": 0.2})  # the .onnx would win ...
    monkeypatch.setattr(bundled, "installed_backends", lambda suffix: ("litert",) if suffix == ".tflite" else ())
    assert bundled_file("edge") == bundled_path("edge", ".tflite") and calls == []  # ... but cannot run


def test_measure_times_each_file_on_its_runtime(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    candidates = [(bundled_path("edge", ".tflite"), "litert"), (bundled_path("edge", ".onnx"), "onnxruntime"),
                  (broken, "onnxruntime")]
    ms = fastest.measure(candidates)
    assert set(ms) == {"edge_int8.tflite", "edge_int8.onnx", "broken.onnx"}
    assert 0 < ms["edge_int8.tflite"] < 100 and 0 < ms["edge_int8.onnx"] < 100 and ms["broken.onnx"] == fastest.FAILED
    # a file that cannot load is ranked last, whatever its name
    fastest._ranked.pop(("x", tuple(candidates)), None)
    order, source = fastest.rank("x", candidates)
    assert order[-1] == "broken.onnx" and source == "measured now"


def test_cpu_model_reads_cpuinfo():
    assert cpu_model(X86_AVX2) == "AMD EPYC"


def test_benchmark_all_marks_the_chosen_variant(capsys):
    assert main(["benchmark", "edge", "--all", "--runs", "3", "--warmup", "0", "--batch", "2", "--threads", "1",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["variants"]
    assert [(r["file"], r["backend"]) for r in rows] == [(p.name, b) for p, b in variants("edge")]
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["file"] == bundled_file("edge").name
    assert result["chosen"] == {"file": chosen[0]["file"], "backend": chosen[0]["backend"]}
    assert result["host"]["pick"] == bundled.ranked("edge")[1] and result["host"]["cpu"] == cpu_model()
    assert result["chosen_vs_fastest"] >= 1.0 and all(r["latency_ms"]["p50"] > 0 for r in rows)
    assert main(["benchmark", "edge", "--all", "--runs", "2", "--warmup", "0", "--batch", "1"]) == 0
    text = capsys.readouterr().out
    marked = [line for line in text.splitlines() if "<- Classifier('edge')" in line]
    assert len(marked) == 1 and bundled_file("edge").name in marked[0]
    assert f"opens {bundled_file('edge').name}: {bundled.ranked('edge')[1]}" in text.splitlines()[0]


@pytest.mark.parametrize(("argv", "message"), [
    (["benchmark", "some.tflite", "--all"], "--all measures a bundled model"),
    (["benchmark", "edge", "--all", "--backend", "litert"], "leave --backend out"),
    (["benchmark", "edge", "--model", "default"], "two models given"),
])
def test_benchmark_all_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
