"""The fastest file for the host: the CPU rule of edge_sdk.bundled, how a bundled name follows it, and `benchmark --all`.

The CPU is mocked (its /proc/cpuinfo text and platform.machine()), so every rule is checked on any machine;
the timings `benchmark --all` prints are figures, never asserted.
"""

from __future__ import annotations

import json
import platform

import pytest

from edge_sdk import Classifier, bundled
from edge_sdk.bundled import BUNDLED, bundled_file, bundled_path, variants
from cifar_edge.cli.benchmark import cpu_model
from cifar_edge.cli.main import main

X86_AVX2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
X86_VNNI = X86_AVX2.replace("avx2 fma", "avx2 fma avx512f avx512_vnni")
X86_AVX_VNNI = X86_AVX2.replace("avx2 fma", "avx2 fma avx_vnni")  # Alder Lake and later: VNNI without AVX-512
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 asimddp\n"


@pytest.mark.parametrize(("machine", "cpuinfo", "expected"), [
    ("x86_64", X86_AVX2, "x86"),
    ("x86_64", X86_VNNI, "x86-vnni"),
    ("AMD64", X86_AVX_VNNI, "x86-vnni"),
    ("x86_64", "", "x86"),  # flags unreadable: taken as x86 without VNNI
    ("aarch64", ARM, "arm"),
    ("arm64", "", "arm"),
    ("riscv64", "", "other"),
])
def test_host_class_from_the_cpu(machine, cpuinfo, expected):
    assert bundled.host_class(machine, bundled.cpu_flags(cpuinfo)) == expected


def test_the_rule_orders_the_files():
    assert bundled.preferred_suffixes("x86") == (".onnx", ".tflite")
    assert bundled.preferred_suffixes("x86-vnni") == bundled.preferred_suffixes("arm") == (".tflite", ".onnx")
    assert bundled.preferred_suffixes("no such host") == bundled.PREFERENCE["other"]
    assert cpu_model(X86_AVX2) == "AMD EPYC"
    assert bundled.cpu_flags(ARM) >= {"asimd", "asimddp"} and bundled.cpu_flags("no flags here") == frozenset()


@pytest.fixture
def mocked_cpu(monkeypatch, tmp_path):
    """Make this process see a given CPU: ``mocked_cpu(machine, cpuinfo_text)``."""
    def mock(machine: str, cpuinfo: str) -> None:
        (tmp_path / "cpuinfo").write_text(cpuinfo)
        monkeypatch.setattr(bundled, "CPUINFO", tmp_path / "cpuinfo")
        monkeypatch.setattr(platform, "machine", lambda: machine)
        bundled.this_host.cache_clear()

    yield mock
    bundled.this_host.cache_clear()


@pytest.mark.parametrize(("machine", "cpuinfo", "suffix", "backend"), [
    ("x86_64", X86_AVX2, ".onnx", "onnxruntime"),
    ("x86_64", X86_VNNI, ".tflite", "litert"),
    ("aarch64", ARM, ".tflite", "litert"),
])
@pytest.mark.parametrize("name", tuple(BUNDLED))
def test_a_bundled_name_opens_the_file_the_cpu_runs_fastest(mocked_cpu, machine, cpuinfo, suffix, backend, name):
    mocked_cpu(machine, cpuinfo)
    assert bundled_file(name) == bundled_path(name, suffix)
    with Classifier(name) as clf:
        assert clf.model_path == bundled_path(name, suffix) and clf.backend_name == backend
    # backend= and an explicit path always win over the rule
    other = ".tflite" if suffix == ".onnx" else ".onnx"
    with Classifier(name, backend={".tflite": "litert", ".onnx": "onnxruntime"}[other]) as forced:
        assert forced.model_path == bundled_path(name, other)
    with Classifier(bundled_path(name, other)) as by_path:
        assert by_path.model_path == bundled_path(name, other)
    # the variants `benchmark --all` measures: the chosen file first, every installed runtime of each file
    listed = variants(name)
    assert listed[0] == (bundled_path(name, suffix), backend)
    assert {path.suffix for path, _ in listed} == {".tflite", ".onnx"}


def test_a_missing_runtime_falls_back_to_the_other_file(mocked_cpu, monkeypatch):
    from edge_sdk import bundled

    mocked_cpu("x86_64", X86_AVX2)  # prefers .onnx ...
    monkeypatch.setattr(bundled, "installed_backends", lambda suffix: ("litert",) if suffix == ".tflite" else ())  # ... which cannot run
    assert bundled_file("edge") == bundled_path("edge", ".tflite")


def test_benchmark_all_marks_the_chosen_variant(capsys):
    assert main(["benchmark", "edge", "--all", "--runs", "3", "--warmup", "0", "--batch", "2", "--threads", "1",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["variants"]
    assert [(r["file"], r["backend"]) for r in rows] == [(p.name, b) for p, b in variants("edge")]
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["file"] == bundled_file("edge").name
    assert result["chosen"] == {"file": chosen[0]["file"], "backend": chosen[0]["backend"]}
    assert result["host"]["class"] == bundled.this_host() and result["chosen_vs_fastest"] >= 1.0
    assert all(r["latency_ms"]["p50"] > 0 for r in rows)
    assert main(["benchmark", "edge", "--all", "--runs", "2", "--warmup", "0", "--batch", "1"]) == 0
    text = capsys.readouterr().out
    marked = [line for line in text.splitlines() if "<- Classifier('edge')" in line]
    assert len(marked) == 1 and bundled_file("edge").name in marked[0]


@pytest.mark.parametrize(("argv", "message"), [
    (["benchmark", "some.tflite", "--all"], "--all measures a bundled model"),
    (["benchmark", "edge", "--all", "--backend", "litert"], "leave --backend out"),
    (["benchmark", "edge", "--model", "default"], "two models given"),
])
def test_benchmark_all_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
