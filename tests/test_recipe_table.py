"""The recipe table (train/recipes.py, issue 26): plain data, the one source of every number, and
the exact runs of the shipped models."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from cifar_edge.train import recipes
from cifar_edge.cli import main as cli
from edge_sdk.errors import EdgeSDKError

REPO = Path(__file__).resolve().parents[1]
#: --recipe NAME -> the committed model folder whose summary.json records that run
#: shipped run -> its run folder under models/ (the -qat runs fine-tune the float ones quantization-aware)
SHIPPED_FOLDERS = {"default-shipped": "default", "edge-shipped": "edge", "default-qat": "default/qat",
                   "edge-cycle2": "edge/cycle2", "edge-qat": "edge/qat"}


def test_the_recipe_table_imports_without_tensorflow_or_keras():
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"  # any import of them now raises ImportError
        "sys.modules['keras'] = None\n"
        "from cifar_edge.train import recipes\n"
        "from cifar_edge.train import cli_train\n"  # the help strings read the table
        "assert set(recipes.RECIPES) == {'classic', 'airbench'}, recipes.RECIPES\n"
        "try:\n"
        "    recipes.BiasScaledSGD\n"
        "except ImportError:\n"
        "    print('keras stays lazy')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "keras stays lazy"


def test_every_recipe_has_every_key_and_the_keras_classes_keep_their_old_names():
    assert all(tuple(values) == recipes.RECIPE_KEYS for values in recipes.RECIPES.values())
    assert recipes.RECIPES["airbench"]["bias_lr_scale"] == 64.0 and recipes.RECIPES["classic"]["pad"] == 4
    from cifar_edge.train import optim

    assert recipes.BiasScaledSGD is optim.BiasScaledSGD and recipes.Lookahead is optim.Lookahead
    with pytest.raises(AttributeError):
        recipes.NoSuchValue  # noqa: B018


def test_the_training_modules_take_their_numbers_from_the_table():
    from cifar_edge.train import airbench, outliers, pipeline, training

    for module, names in (
        (airbench, ("BN_MOMENTUM", "BN_EPSILON", "OUTPUT_SCALE", "WHITEN_EPS", "WHITEN_KERNEL")),
        (pipeline, ("PHOTO_PROBABILITY", "SOFTEN_RANGE", "BRIGHTNESS_DELTA", "CONTRAST_RANGE", "SATURATION_RANGE")),
        (outliers, ("FRAME_SCALE_RANGE", "FRAME_ASPECT_RANGE", "FRAME_MAX_SHIFT", "WHITE_BALANCE_RANGE",
                    "CAMERA_PROBABILITY", "ZOOM_PATCH_RANGE", "SHUFFLE_GRID", "REAL_OUTLIER_SHARE")),
        (training, ("WHITENING_IMAGES", "RECALIBRATION_IMAGES", "DEFAULT_VAL_SIZE")),
    ):
        for name in names:
            assert getattr(module, name) is getattr(recipes, name), f"{module.__name__}.{name} retypes the table"
    assert airbench.WIDTHS is recipes.AIRBENCH_WIDTHS and outliers._FRAME_PAD is recipes.FRAME_PAD
    defaults = training.TrainConfig()
    assert (defaults.epochs, defaults.distill_temperature, defaults.distill_alpha, defaults.model) == (
        recipes.EPOCHS, recipes.DISTILL_TEMPERATURE, recipes.DISTILL_ALPHA, recipes.DEFAULT_MODEL)


def test_help_strings_quote_the_table(capsys):
    assert cli.main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    airbench = recipes.RECIPES["airbench"]
    assert f"airbench {airbench['lr']:g} at batch {airbench['batch_size']}" in text
    assert f"default {recipes.EPOCHS}" in text and f"{recipes.RECALIBRATION_IMAGES:,} un-augmented" in text
    assert all(name in text for name in recipes.SHIPPED_RUNS)


def _train_config(argv: list[str]):
    from cifar_edge.train.cli_train import train_config

    return train_config(cli.build_parser(["train"]).parse_args(["train", *argv]))


@pytest.mark.parametrize("name", sorted(SHIPPED_FOLDERS))
def test_recipe_shipped_reproduces_the_shipped_run(name):
    """Fails when a shipped model is replaced and its entry not updated; the message gives the new entry."""
    from cifar_edge.train.training import TrainConfig

    summary = json.loads((REPO / "models" / SHIPPED_FOLDERS[name] / "summary.json").read_text())
    recorded = summary["config"]
    defaults = asdict(TrainConfig())
    expected_entry = recipes.shipped_options(recorded, defaults)
    assert recipes.SHIPPED_RUNS[name] == expected_entry, f"update SHIPPED_RUNS[{name!r}] to {expected_entry!r}"
    config = asdict(_train_config(["--recipe", name]).resolved())
    for key, value in config.items():
        if key in ("out", "data", "cache_dir", "command", "extra"):
            continue
        assert value == recorded.get(key, defaults[key]), f"{name}: {key}"


def test_options_given_win_over_the_shipped_run_and_a_conflicting_model_is_refused():
    config = _train_config(["--recipe", "edge-shipped", "--epochs", "3", "--distill-alpha", "0.5", "--out", "o"])
    entry = recipes.SHIPPED_RUNS["edge-shipped"]
    assert (config.epochs, config.distill_alpha, config.out) == (3, 0.5, "o")
    assert config.model == entry["model"] and config.teacher == entry["teacher"] and config.recipe == entry["recipe"]
    plain = _train_config([])
    assert (plain.model, plain.epochs, plain.recipe, plain.teacher) == (recipes.DEFAULT_MODEL, recipes.EPOCHS, None, None)
    with pytest.raises(EdgeSDKError, match="leave --model out"):
        _train_config(["--recipe", "default-shipped", "--model", "resnet8"])
