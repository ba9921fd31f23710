"""What the repository tracks (issue 26): the shipped models within 25 MB, no ablation trees or
superseded models, no resumable checkpoints; and edge_sdk is the runtime alone: within its line budget, no
command line in it, nothing from the cifar_edge tools imported by it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from cifar_edge.cli.formats import FORMATS

REPO = Path(__file__).resolve().parents[1]
MODELS_BUDGET_BYTES = 25 * 1024 * 1024
#: edge_sdk's Python lines (as ``find edge_sdk -name '*.py' | xargs wc -l`` counts them); the command line, its
#: helpers and the tools' errors live in cifar_edge.cli (issue 26 item 1)
EDGE_SDK_MAX_LINES = 2610  # 2,600 before the strict-JSON number check in edge_sdk/spec.py
SDK_FILES = sorted((REPO / "edge_sdk").rglob("*.py"))
#: export files a shipped model folder has no committed copy of: the shipped files of ``default`` and ``edge``
#: come from their quantization-aware models (``qat/best.keras``), which export to int8 formats only; the
#: float32 files of the float ``default`` (15 MB together) stay out of git (.gitignore) where a user makes them
NOT_COMMITTED = {"default": {"model_float32.tflite", "model_float32.onnx"},
                 "edge": {"model_float32.tflite", "model_float32.onnx"}}


def _tracked(folder: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", folder], cwd=REPO, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def test_tracked_model_files_stay_within_the_budget_without_ablations_or_superseded_models():
    names = _tracked("models")
    assert names and sum((REPO / n).stat().st_size for n in names) <= MODELS_BUDGET_BYTES
    assert {n.split("/")[1] for n in names} == {"default", "edge", "resnet8"}
    assert not [n for n in names if n.endswith("last.keras")]


def test_each_shipped_export_commits_every_format_but_the_listed_ones():
    names = set(_tracked("models"))
    for model in ("default", "edge", "resnet8"):
        assert f"models/{model}/best.keras" in names and f"models/{model}/export/manifest.json" in names
        if model in ("default", "edge"):  # the shipped files' source, and the float model it was fine-tuned from
            assert {f"models/{model}/qat/best.keras", f"models/{model}/qat/summary.json"} <= names
        for fmt in FORMATS.values():
            committed = f"models/{model}/export/{fmt.file_name}" in names
            assert committed != (fmt.file_name in NOT_COMMITTED.get(model, set())), (model, fmt.file_name)


def test_gitignore_keeps_resumable_checkpoints_and_the_default_float_exports_out():
    paths = ["models/default/last.keras", "runs/x/last.keras", "my-run/last.keras", "models/edge/run2/last.keras",
             *(f"models/default/export/{name}" for name in NOT_COMMITTED["default"])]
    result = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=REPO, capture_output=True, text=True)
    assert sorted(result.stdout.split()) == sorted(paths)
    kept = subprocess.run(["git", "check-ignore", "--no-index", "models/default/best.keras",
                           "models/default/export/model_int8.tflite"], cwd=REPO, capture_output=True, text=True)
    assert kept.stdout == ""


def test_edge_sdk_stays_within_its_line_budget():
    lines = {path.relative_to(REPO).as_posix(): path.read_bytes().count(b"\n") for path in SDK_FILES}
    assert "edge_sdk/classifier.py" in lines and "edge_sdk/runtimes/tflite.py" in lines
    assert sum(lines.values()) <= EDGE_SDK_MAX_LINES, sorted(lines.items(), key=lambda item: -item[1])


def test_edge_sdk_holds_no_command_line():
    assert [path.name for path in SDK_FILES if "argparse" in path.read_text()] == []
    assert not (REPO / "edge_sdk" / "__main__.py").exists()  # the command is python -m cifar_edge.cli


def test_edge_sdk_imports_nothing_from_cifar_edge():
    imported = set()
    for path in SDK_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {(path.name, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add((path.name, node.module))
    assert imported and [(name, module) for name, module in imported if module.split(".")[0] == "cifar_edge"] == []
    modules = [".".join(path.relative_to(REPO).with_suffix("").parts) for path in SDK_FILES]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cifar_edge'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
