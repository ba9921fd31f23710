"""What the repository tracks (issue 26): the shipped models within 25 MB, no ablation trees or
superseded models, no resumable checkpoints."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cifar_edge.cli.formats import FORMATS

REPO = Path(__file__).resolve().parents[1]
MODELS_BUDGET_BYTES = 25 * 1024 * 1024
#: export files a shipped model folder leaves out of git (.gitignore): the float32 files of the
#: 2M-parameter default (15 MB together; ``cifar-edge convert`` rebuilds them)
NOT_COMMITTED = {"default": {"model_float32.tflite", "model_float32.onnx"}}


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
