"""Training runs on real CIFAR-10 images, at a tiny budget: artifacts, resume, seeds, evaluate, compare."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

RUN_FILES = (
    "best.keras",
    "last.keras",
    "state.json",
    "spec.json",
    "history.csv",
    "history.json",
    "curves.png",
    "confusion_matrix.png",
    "confusion_matrix.json",
    "per_class_accuracy.json",
    "predictions.png",
    "summary.json",
    "model_summary.txt",
)

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cache: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "CIFAR_EDGE_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "cifar_edge.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cifar10_dir, session_cache):
    from cifar_edge.train.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(model="resnet8", out=str(out), data=str(cifar10_dir), cache_dir=str(session_cache),
                         epochs=1, limit=512, eval_limit=512, batch_size=64, command="test")
    summary = train(config)
    return out, summary


def test_tiny_run_writes_every_artifact(tiny_run):
    out, summary = tiny_run
    for name in RUN_FILES:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
    assert not [p.name for p in out.iterdir() if ".part" in p.name]
    for png in ("curves.png", "confusion_matrix.png", "predictions.png"):
        with Image.open(out / png) as img:
            assert img.format == "PNG" and min(img.size) > 200
    with open(out / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "images_per_s"} <= set(rows[0])
    saved = json.loads((out / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["model"] == "resnet8" and saved["epochs"] == 1
    assert saved["train_images"] == 512 and saved["test_images"] == 512
    assert 74_000 < saved["params"] < 82_000 and 11_000_000 < saved["macs"] < 14_000_000
    assert 0.0 <= saved["test_accuracy"] <= 1.0 and np.isfinite(saved["test_loss"])
    assert saved["command"] == "test" and "image-folder" in saved["data"]
    matrix = np.array(json.loads((out / "confusion_matrix.json").read_text())["matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 512
    assert np.isclose(np.trace(matrix) / 512, saved["test_accuracy"])
    assert "Total params" in (out / "model_summary.txt").read_text()


def test_evaluate_agrees_with_keras_evaluate(tiny_run, cifar10_dir, session_cache):
    import keras

    from cifar_edge.train.data import load_split
    from cifar_edge.train.evaluation import classification_metrics, keras_probabilities
    from cifar_edge.train.training import load_keras_model, load_spec_beside

    out, _ = tiny_run
    model = load_keras_model(out / "best.keras")
    spec = load_spec_beside(out / "best.keras")
    test = load_split("test", cifar10_dir, cache_dir=session_cache)
    images, labels = test.images[::20], test.labels[::20]  # 500 images, every class
    ours = classification_metrics(keras_probabilities(model, images, spec), labels, spec.labels)
    model.compile(loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    loss, acc = model.evaluate(spec.normalize(images), keras.utils.to_categorical(labels, 10), verbose=0, batch_size=100)
    assert ours["images"] == 500
    assert ours["accuracy"] == pytest.approx(acc, abs=1e-6)
    assert ours["loss"] == pytest.approx(loss, rel=1e-4)

    proc = cli("evaluate", str(out / "best.keras"), "--data", str(cifar10_dir), "--limit", "300", "--json",
               cache=session_cache)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["images"] == 300 and len(result["confusion_matrix"]) == 10
    assert sum(map(sum, result["confusion_matrix"])) == 300
    assert set(result["per_class_accuracy"]) == set(spec.labels)


def test_same_seed_same_first_epoch_loss(tmp_path, cifar10_dir, session_cache):
    from cifar_edge.train.training import TrainConfig, train

    losses = []
    for i, seed in enumerate((7, 7, 8)):
        config = TrainConfig(model="resnet8", out=str(tmp_path / f"r{i}"), data=str(cifar10_dir),
                             cache_dir=str(session_cache), epochs=1, limit=256, batch_size=64, seed=seed)
        train(config)
        losses.append(json.loads((tmp_path / f"r{i}" / "history.json").read_text())[0]["loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert losses[0] != pytest.approx(losses[2], rel=1e-6)


def test_resume_after_kill_continues_from_last_finished_epoch(tmp_path, cifar10_dir, session_cache):
    args = ["train", "--model", "resnet8", "--data", str(cifar10_dir), "--limit", "256", "--batch-size", "64",
            "--epochs", "3"]
    reference = cli(*args, "--out", str(tmp_path / "ref"), "--json", cache=session_cache)
    assert reference.returncode == 0, reference.stderr

    run = tmp_path / "killed"
    env = {**os.environ, "CIFAR_EDGE_CACHE": str(session_cache)}
    proc = subprocess.Popen([sys.executable, "-m", "cifar_edge.cli", *args, "--out", str(run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        state = run / "state.json"
        if state.is_file() and json.loads(state.read_text()).get("epochs_done", 0) >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads((run / "state.json").read_text())["epochs_done"]
    assert 1 <= done < 3, "the run should have been killed before finishing"

    resumed = cli("train", "--resume", "--out", str(run), "--json", cache=session_cache)
    assert resumed.returncode == 0, resumed.stderr
    history = json.loads((run / "history.json").read_text())
    ref_history = json.loads((tmp_path / "ref" / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    # same final schedule: the learning rate at every epoch end matches the uninterrupted run
    assert [r["lr"] for r in history] == pytest.approx([r["lr"] for r in ref_history], rel=1e-6)
    assert json.loads(resumed.stdout)["epochs"] == 3


def test_compare_writes_table_csv_and_plot(tmp_path, cifar10_dir, session_cache):
    from cifar_edge.train.compare import compare_runs
    from cifar_edge.train.training import TrainConfig

    configs = [
        TrainConfig(model=m, out=str(tmp_path / f"{m}-e1"), data=str(cifar10_dir), cache_dir=str(session_cache),
                    epochs=1, limit=256, batch_size=64)
        for m in ("ann", "resnet8")
    ]
    result = compare_runs(configs, tmp_path)
    table = (tmp_path / "comparison.md").read_text().strip().splitlines()
    assert len(table) == 4 and table[2].startswith("| ann | recipe |") and table[3].startswith("| resnet8 | recipe |")
    with open(tmp_path / "comparison.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["ann", "resnet8"]
    assert int(rows[0]["params"]) > int(rows[1]["params"])  # the dense baseline is the big one
    with Image.open(tmp_path / "comparison.png") as img:
        assert img.format == "PNG"
    # a second call reuses the finished runs instead of training again
    mtime = (tmp_path / "ann-e1" / "best.keras").stat().st_mtime_ns
    assert compare_runs(configs, tmp_path)["runs"] == result["runs"]
    assert (tmp_path / "ann-e1" / "best.keras").stat().st_mtime_ns == mtime


def test_cutout_zeroes_one_square_per_image_and_is_off_by_default():
    from edge_sdk.spec import PreprocessSpec
    from cifar_edge.train.pipeline import make_dataset

    white = np.full((64, 32, 32, 3), 255, np.uint8)
    labels = np.zeros(64, np.int64)
    spec = PreprocessSpec()
    plain = next(iter(make_dataset(white, labels, spec, batch_size=64, training=True, seed=1)))[0].numpy()
    assert (plain == 1.0).all()  # crop from a reflected border and flips keep a white image white
    cut = next(iter(make_dataset(white, labels, spec, batch_size=64, training=True, seed=1, cutout=8)))[0].numpy()
    sides = set()
    for image in cut:
        rows, cols = np.nonzero((image == 0).all(axis=2))
        assert len(rows) > 0 and set(np.unique(image)) <= {0.0, 1.0}
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert 4 <= h <= 8 and 4 <= w <= 8 and len(rows) == h * w  # one square, clipped at the borders
        sides.add((h, w))
    assert (8, 8) in sides and len(sides) > 1  # mostly whole squares, some clipped


def test_training_without_augmentation_still_shuffles():
    # Training splits arrive sorted by class; unshuffled batches of one class make a model that
    # "learns" the current class and scores 10% on validation (seen in a no-augment ablation).
    from edge_sdk.spec import PreprocessSpec
    from cifar_edge.train.pipeline import make_dataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (500, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 50)
    ds = make_dataset(images, labels, PreprocessSpec(), batch_size=100, training=True, augment=False, seed=3)
    batches = [(x.numpy(), y.numpy().argmax(1)) for x, y in ds]
    assert len(np.unique(batches[0][1])) >= 8  # classes mixed within a batch
    seen = np.rint(np.concatenate([x for x, _ in batches]) * 255).astype(np.uint8)
    key = lambda a: sorted(map(bytes, a.reshape(len(a), -1)))  # noqa: E731
    assert key(seen) == key(images)  # every image once, unaugmented


def test_ablation_configs_change_one_ingredient_each():
    from dataclasses import asdict

    from cifar_edge.train.compare import ablation_configs
    from cifar_edge.train.training import TrainConfig

    base = TrainConfig(model="resnet8", out="runs/abl", epochs=15, data="d")
    pairs = dict(ablation_configs(base))
    assert set(pairs) == {"recipe", "no-augment", "no-label-smoothing", "no-warmup", "adamw"}
    assert len({c.out for c in pairs.values()}) == 5 and all(c.out.startswith("runs/abl/") for c in pairs.values())
    ref = asdict(pairs["recipe"])
    changed = {name: {k for k, v in asdict(c).items() if v != ref[k]} - {"out"} for name, c in pairs.items()}
    assert changed == {"recipe": set(), "no-augment": {"augment"}, "no-label-smoothing": {"label_smoothing"},
                       "no-warmup": {"warmup_epochs"}, "adamw": {"optimizer", "lr", "weight_decay"}}
    assert all(c.epochs == 15 and c.data == "d" and c.seed == base.seed for c in pairs.values())


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--model", "vgg99", "--epochs", "1"], "unknown model 'vgg99'"),
        (["train", "--resume", "--out", "{tmp}/nothing"], "nothing to resume"),
        (["train", "--cutout", "40", "--epochs", "1", "--out", "{tmp}/cut"], "--cutout must be between"),
        (["evaluate", "{tmp}/missing.keras"], "model file not found"),
        (["evaluate", "{tmp}/notes.keras"], "cannot load Keras model"),
        (["evaluate", "{tmp}/notes.txt"], "expected a .keras file"),
        (["train", "--init-from", "{tmp}/notes.keras", "--out", "{tmp}/ft"], "not a zip archive"),
        (["train", "--model", "resnet8", "--init-from", str(REPO / "models/default/best.keras"), "--limit", "256",
          "--epochs", "1", "--out", "{tmp}/ft"], "do not fit the 'resnet8' model"),
    ],
)
def test_training_cli_errors_are_one_line(tmp_path, session_cache, args, fragment):
    (tmp_path / "notes.keras").write_text("not a zip")
    (tmp_path / "notes.txt").write_text("hello")
    proc = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], cache=session_cache)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr


def test_init_from_starts_from_the_trained_weights(tmp_path, cifar10_dir, session_cache):
    """Fine-tuning the shipped resnet8 for one tiny epoch at a small learning rate keeps its accuracy;
    the same epoch from random weights is near chance."""
    from cifar_edge.train.training import TrainConfig, train

    accuracy = {}
    for name, init in (("scratch", None), ("init", str(REPO / "models" / "resnet8" / "best.keras"))):
        config = TrainConfig(model="resnet8", out=str(tmp_path / name), data=str(cifar10_dir), cache_dir=str(session_cache),
                             epochs=1, limit=256, batch_size=64, lr=1e-3, warmup_epochs=0, init_from=init)
        accuracy[name] = train(config)["val_accuracy"]
    assert accuracy["init"] > 0.7 > 0.3 > accuracy["scratch"], accuracy


def test_list_models_prints_params_and_macs(session_cache):
    proc = cli("train", "--list-models", "--json", cache=session_cache)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["models"]}
    assert set(rows) == {"ann", "seed-cnn", "resnet8", "resnet9", "airbench93", "airbench93-gelu", "airbench95", "default"}
    assert rows["default"]["params"] <= 2_100_000 and rows["default"]["macs"] > rows["resnet9"]["macs"]


def test_limit_caps_training_images_only_and_eval_limit_caps_the_test_split(cifar10_dir, session_cache):
    # --limit N used to shrink the test split to N images too, silently (issue 17).
    from cifar_edge.train.training import TrainConfig, load_splits

    base = dict(model="resnet8", out="x", data=str(cifar10_dir), cache_dir=str(session_cache), limit=400)
    splits = load_splits(TrainConfig(**base))
    assert len(splits.train) == 400 and len(splits.val) == 100  # validation beside them: a quarter of N
    assert len(splits.test) == 10_000
    assert np.bincount(splits.train.labels, minlength=10).tolist() == [40] * 10
    capped = load_splits(TrainConfig(**base, eval_limit=300))
    assert len(capped.test) == 300 and len(capped.train) == 400
    assert np.bincount(capped.test.labels, minlength=10).tolist() == [30] * 10  # stratified
