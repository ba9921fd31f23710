"""Installed layout: the SDK is ``edge_sdk``, the command and the tools live under ``cifar_edge``, nothing generic
lands at the top of site-packages, a user's own ``train.py`` or ``cli.py`` cannot shadow them, and ``cifar-edge
predict`` imports none of the tools' code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cifar_edge.cli import main as cli
from edge_sdk import CIFAR10_CLASSES

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

ROOT = Path(__file__).resolve().parents[1]
#: repository folder -> installed package
INSTALLED_AS = {"edge_sdk": "edge_sdk", "cli": "cifar_edge/cli", "train": "cifar_edge/train",
                "convert": "cifar_edge/convert", "camera_demo": "cifar_edge/camera_demo"}
#: the tools: what the SDK's own commands never import
TOOLS = ("cifar_edge.train", "cifar_edge.convert", "cifar_edge.camera_demo")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools writes build/ and *.egg-info beside the sources it builds
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in INSTALLED_AS:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = out.glob("cifar_edge-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_installs_exactly_edge_sdk_and_the_cifar_edge_namespace(wheel_names):
    top = {name.split("/")[0] for name in wheel_names if ".dist-info/" not in name}
    assert top == {"edge_sdk", "cifar_edge"}
    assert {name.split("/")[1] for name in wheel_names if name.startswith("cifar_edge/")} == {
        "cli", "train", "convert", "camera_demo"}


def test_every_package_folder_and_data_file_is_in_the_wheel(wheel_names):
    names = set(wheel_names)
    for folder, installed in INSTALLED_AS.items():
        for source in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in source.parts:
                assert f"{installed}/{source.relative_to(ROOT / folder).as_posix()}" in names, source
    for static in (ROOT / "camera_demo" / "web" / "static").iterdir():
        assert f"cifar_edge/camera_demo/web/static/{static.name}" in names
    for bundled in (ROOT / "edge_sdk" / "models").glob("*.tflite"):
        assert f"edge_sdk/models/{bundled.name}" in names


@pytest.fixture()
def shadowing_folder(tmp_path) -> Path:
    """A user's project folder whose own modules are named like the repository's tool folders."""
    for name in ("train.py", "convert.py", "camera_demo.py", "cli.py"):
        (tmp_path / name).write_text("raise SystemExit('the user\\'s own module was imported')\n")
    (tmp_path / "convert").mkdir()  # a package beside the module, as a user's project might hold
    (tmp_path / "convert" / "__init__.py").write_text("raise SystemExit('the user\\'s convert package')\n")
    return tmp_path


@pytest.mark.parametrize("argv", [["predict", "--help"], ["benchmark", "--help"], ["data", "--help"],
                                  ["convert", "--help"], ["camera", "--help"], ["--help"]])
def test_a_users_train_py_does_not_break_the_cli(shadowing_folder, argv):
    done = subprocess.run([sys.executable, "-m", "cifar_edge.cli", *argv], cwd=shadowing_folder, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: cifar-edge" in done.stdout


def test_a_users_train_py_does_not_break_import_edge_sdk(shadowing_folder):
    code = "import edge_sdk, numpy as np; print(edge_sdk.Classifier().classify(np.zeros((32, 32, 3), np.uint8)).top.label)"
    done = subprocess.run([sys.executable, "-c", code], cwd=shadowing_folder, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in CIFAR10_CLASSES


@pytest.mark.parametrize("argv", [["predict", "--help"], ["benchmark", "--help"], ["models", "--json"], ["--help"]])
def test_sdk_commands_import_none_of_the_tools(argv):
    code = (f"import sys\nfrom cifar_edge.cli.main import main\nrc = main({argv!r})\n"
            f"print(rc, sorted(m for m in sys.modules if m.startswith({TOOLS!r}) or m.split('.')[0] in ('tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"


def test_the_command_table_matches_what_each_module_registers():
    import argparse
    import importlib

    for module in dict.fromkeys(command.module for command in cli.SUBCOMMANDS):
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module).register(sub)
        assert list(sub.choices) == [c.name for c in cli.SUBCOMMANDS if c.module == module], module
        assert {a.dest: a.help for a in sub._choices_actions} == {
            c.name: c.summary for c in cli.SUBCOMMANDS if c.module == module}
    lazy = cli.build_parser(["predict"]).format_help()
    full = cli.build_parser().format_help()
    assert lazy == full  # --help reads the same whether or not the tools were imported
