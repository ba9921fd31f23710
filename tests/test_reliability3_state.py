"""Resumable state and cluster config (issue 24, class 4): a damaged ``state.json`` or a malformed ``TF_CONFIG``
is one clear EdgeSDKError naming the field and the fix, never a traceback."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk.errors import EdgeSDKError
from train.errors import DistributedTrainingError, RunStateError
from train.run_state import MAX_DEPTH, check_state, load_state
from train.tf_config import parse_tf_config

REPO = Path(__file__).parents[1]
SHIPPED_STATES = sorted((REPO / "models").glob("*/state.json"))


@pytest.fixture(scope="module")
def train_config():
    pytest.importorskip("tensorflow")
    from train.training import TrainConfig

    return TrainConfig


@pytest.fixture(scope="module")
def good_state() -> dict:
    return json.loads(SHIPPED_STATES[0].read_text())


def test_the_shipped_runs_state_files_pass(train_config):
    assert SHIPPED_STATES
    for path in SHIPPED_STATES:
        assert load_state(path, train_config)["epochs_done"] >= 1


def _nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = {"a": value}
    return value


DAMAGE = {  # what is done to a good state -> the field the error must name
    "a string epoch count": (lambda s: s["config"].update(epochs="30"), "'config.epochs' must be an integer"),
    "a negative batch size": (lambda s: s["config"].update(batch_size=-4), "'config.batch_size' must lie in [1"),
    "a missing section": (lambda s: s.pop("history"), "'history' is missing"),
    "no config": (lambda s: s.pop("config"), "'config' is missing"),
    "config a list": (lambda s: s.update(config=[1]), "'config' must be an object"),
    "epochs_done negative": (lambda s: s.update(epochs_done=-1), "'epochs_done' must be an integer >= 0"),
    "epochs_done a float": (lambda s: s.update(epochs_done=2.5), "'epochs_done' must be an integer"),
    "a boolean seed": (lambda s: s["config"].update(seed=True), "'config.seed' must be an integer"),
    "a NaN learning rate": (lambda s: s["config"].update(lr=float("nan")), "'config.lr' must lie in (0, 100]"),
    "an unknown optimizer": (lambda s: s["config"].update(optimizer="rmsprop"), "'config.optimizer' must be one of"),
    "an unknown model": (lambda s: s["config"].update(model="vgg99"), "'config.model' must name a registered model"),
    "a text history value": (lambda s: s["history"].append({"loss": "low"}), ".loss' must be a number or null"),
    "distribution a string": (lambda s: s.update(distribution="gpu"), "'distribution' must be an object"),
    "a list dtype policy": (lambda s: s.update(distribution={"dtype_policy": ["x"]}),
                            "'distribution.dtype_policy' must be a string"),
    "deep nesting": (lambda s: s["config"].update(extra=_nested(MAX_DEPTH + 5)), "nested more than"),
    "best epoch past the end": (lambda s: s.update(best_epoch=10_000), "'best_epoch' must be an integer from 1"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_state_names_the_field_and_the_fix(train_config, good_state, tmp_path, case):
    damage, expected = DAMAGE[case]
    state = copy.deepcopy(good_state)
    damage(state)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    with pytest.raises(RunStateError, match="restore the file from a backup, or start a new run") as info:
        load_state(path, train_config)
    assert expected in str(info.value) and str(path) in str(info.value)
    assert isinstance(info.value, EdgeSDKError)


@pytest.mark.parametrize("text, expected", [
    ("{not json", "is not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested more than"),
    ("\xff\xfe", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
])
def test_a_state_that_is_not_a_json_object_is_refused(train_config, tmp_path, text, expected):
    path = tmp_path / "state.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(RunStateError, match=expected):
        load_state(path, train_config)


def test_check_state_needs_no_file(train_config, good_state):
    check_state(good_state, train_config)
    with pytest.raises(RunStateError, match="'epochs_done' is missing"):
        check_state({"config": good_state["config"], "history": []}, train_config)


def test_resuming_a_damaged_run_is_one_line_and_exit_2(tmp_path):
    pytest.importorskip("tensorflow")
    out = tmp_path / "run"
    out.mkdir()
    state = json.loads(SHIPPED_STATES[0].read_text())
    state["config"]["epochs"] = "thirty"
    (out / "state.json").write_text(json.dumps(state))
    (out / "last.keras").write_bytes(b"PK\x05\x06" + bytes(18))  # present; never reached
    run = subprocess.run([sys.executable, "-m", "cifar_edge.cli", "train", "--resume", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("cifar-edge")]
    assert len(lines) == 1 and "'config.epochs' must be an integer" in lines[0], run.stderr
    assert "Traceback" not in run.stderr


# --------------------------------------------------------------------------- TF_CONFIG
GOOD = {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}, "task": {"type": "worker", "index": 1}}


def _with(**changes) -> str:
    config = copy.deepcopy(GOOD)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        config[section][field] = value
    return json.dumps(config)


@pytest.mark.parametrize("text, expected", [
    (_with(task__type=["worker"]), '"type" must be a string'),
    (_with(task__type={"worker": 0}), '"type" must be a string'),
    (_with(task__index="1"), '"index" must be an integer'),
    (_with(task__index=True), '"index" must be an integer'),
    (_with(cluster__worker=["10.0.0.1:http", "10.0.0.2:1"]), 'is not "host:port"'),
    (_with(cluster__worker=["10.0.0.1:99999"]), 'is not "host:port"'),
    (_with(cluster__worker=["10.0.0.1:\u00b2"]), 'is not "host:port"'),
    (_with(cluster__worker=[["10.0.0.1", 1]]), 'is not "host:port"'),
    (_with(cluster__worker="10.0.0.1:1"), "must be a list"),
    ('{"cluster": ' * 50_000, "nested too deeply"),
    ("[" * 100_000, "nested too deeply"),
    (" " * (2 << 20), "environment variable"),
    ('"' + "x" * (2 << 20) + '"', "over the"),
])
def test_a_malformed_tf_config_names_the_field(text, expected):
    with pytest.raises(DistributedTrainingError, match=expected) as info:
        parse_tf_config(text)
    assert len(str(info.value)) < 400


def test_a_good_tf_config_still_parses():
    config = parse_tf_config(json.dumps(GOOD))
    assert (config.task_type, config.task_index, config.workers) == ("worker", 1, 2)
