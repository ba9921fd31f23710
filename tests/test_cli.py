"""The cifar-edge command line: help, --json output, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from builders import make_image_tree
from PIL import Image

from cifar_edge.cli import main as cli
from edge_sdk.errors import MissingExtraError


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "cifar_edge.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_help_lists_subcommands_and_each_has_help():
    top = run_cli("--help")
    assert top.returncode == 0 and "data" in top.stdout
    for name, _module, _summary in cli.SUBCOMMANDS:
        sub = run_cli(name, "--help")
        assert sub.returncode == 0, sub.stderr
        assert "usage: cifar-edge " + name in sub.stdout
    for action in ("stats", "grid"):
        assert run_cli("data", action, "--help").returncode == 0


def test_data_stats_json_on_shared_tree(cifar10_dir, session_cache):
    proc = run_cli("data", "stats", "--data", str(cifar10_dir), "--json", "--cache-dir", str(session_cache))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert result["format"] == "image-folder"
    assert result["label_order"]["official_cifar10_order"] is True
    assert result["splits"]["train"]["images"] == 50_000
    assert result["splits"]["test"]["images"] == 10_000
    assert set(result["splits"]["train"]["per_class"].values()) == {5_000}
    assert set(result["splits"]["test"]["per_class"].values()) == {1_000}
    assert result["splits"]["train"]["shape"] == [50_000, 32, 32, 3]
    px = result["splits"]["train"]["pixels"]
    assert px["min"] == 0 and px["max"] == 255 and all(100 < m < 140 for m in px["mean"])
    assert len(result["splits"]["test"]["first_labels"]) == 20
    # in file order (0000.jpg of each class, then 0001.jpg, ...), not 20 x airplane from the class-major arrays
    assert result["splits"]["test"]["first_labels"] == [*range(10), *range(10)]
    assert result["splits"]["test"]["first_labels_order"] == "file name across class folders"


def test_data_stats_text_reports_skipped_files(tmp_path):
    make_image_tree(tmp_path, per_class=2)
    (tmp_path / "test" / "bird" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    proc = run_cli("data", "stats", "--data", str(tmp_path), "--split", "test")
    assert proc.returncode == 0, proc.stderr
    assert "total" in proc.stdout and "not CIFAR-10's official order" in proc.stdout
    assert "skipped 1 unreadable file(s)" in proc.stderr and "broken.jpg" in proc.stderr


def test_data_grid_writes_png(tmp_path):
    make_image_tree(tmp_path / "d", per_class=4)
    out = tmp_path / "out" / "grid.png"
    proc = run_cli("data", "grid", "--data", str(tmp_path / "d"), "--out", str(out), "--n", "9", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["images"] == 9
    with Image.open(out) as img:
        assert img.format == "PNG" and list(img.size) == result["size"]
        assert img.size[0] > 3 * 96  # three upscaled tiles per row
    assert sorted(p.name for p in out.parent.iterdir()) == ["grid.png"]  # no temp files left


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["data", "stats", "--data", "/nonexistent/cifar"], "does not exist"),
        (["data", "grid", "--data", "{tree}", "--out", "{tree}/train/bird/0000.png/grid.png"], "not a directory: "),
        (["data", "stats", "--data", "{tree}", "--split", "val"], "no split 'val'"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, args, fragment):
    make_image_tree(tmp_path, per_class=1)
    proc = run_cli(*[a.replace("{tree}", str(tmp_path)) for a in args])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("blocked", ["tensorflow", "matplotlib"])
def test_missing_extra_names_the_pip_extra(blocked):
    # None in sys.modules makes "import tensorflow" fail as if the package were absent.
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from cifar_edge.cli.main import main; sys.exit(main(['train', '--model', 'resnet8', '--resume', '--out', 'x']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"cifar-edge train: error: the Python module '{blocked}' is needed for training and evaluation "
        "but is not installed; install the 'train' extra: pip install 'cifar-edge[train]'"
    ]


def test_list_models_needs_no_tensorflow():
    # --list-models reads train/catalog.py: it answers on an install without the train extra.
    code = (
        "import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "from cifar_edge.cli.main import main; code = main(['train', '--list-models', '--json'])\n"
        "assert 'tensorflow' not in [m for m in sys.modules if sys.modules[m] is not None]; sys.exit(code)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["models"]}
    assert rows["resnet8"]["params"] == 78_426 and "default" in rows


def test_require_raises_missing_extra_only_for_absent_modules():
    from cifar_edge.cli.extras import require

    assert require("json", "dev").dumps([1]) == "[1]"
    with pytest.raises(MissingExtraError, match=r"install the 'litert' extra"):
        require("surely_not_installed_module_xyz", "litert")


def test_every_subcommand_help_states_its_exit_status():
    import argparse

    from cifar_edge.cli.main import SUBCOMMANDS, build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == {command.name for command in SUBCOMMANDS}
    helps = {name: p.format_help() for name, p in commands.items()}
    helps.update({f"data {name}": p.format_help() for name, p in next(
        a for a in commands["data"]._actions if isinstance(a, argparse._SubParsersAction)).choices.items()})
    for name, text in helps.items():
        flat = " ".join(text.split())
        assert "Exit status: 0" in flat and " 2 " in flat.split("Exit status:")[1], name
    for checked in ("convert", "parity"):
        assert "1 a file missed a bar" in " ".join(helps[checked].split())


def test_no_subcommand_prints_help_and_exits_2():
    proc = run_cli()
    assert proc.returncode == 2 and "usage: cifar-edge" in proc.stderr
